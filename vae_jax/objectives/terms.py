"""The terms objectives and evaluation are made of, each written for ONE example and batched with
jax.vmap over per-example keys: the ELBO's parts (Kingma & Welling), the importance weights and the
k-sample bound (IWAE, Burda et al. 2016): log (1/k) sum_i p(x, z_i) / q(z_i|x), and a plain
autoencoder's reconstruction log-likelihood at z = the posterior mean.
A condition c: (n_conditions,) (one-hot label) is passed to both networks of a conditional VAE.
They use the model only through `posterior`, `encode` and `decode`, so the same functions serve a
one-latent VAE and a hierarchical HVAE (any latent.LatentModel).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax.errors import UserError
from vae_jax.latent import Draw, LatentModel, Params


class ElboTerms(NamedTuple):
    """ELBO = recon - kl, in nats. Scalars for one example, (B,) arrays when batched."""

    elbo: jax.Array  # recon - kl
    recon: jax.Array  # E_q[log p(x|z)], one-sample estimate
    kl: jax.Array  # KL(q(z|x) || p(z)): closed form, or the one-sample estimate log q(z|x) - log p(z)


def kl_of(vae: LatentModel, draw: Draw) -> jax.Array:
    """The KL of each of n draws: per latent unit in closed form (n, latent_dim), the whole latent's in
    closed form (n, 1) where it does not split by unit, or where the model has none (a mixture prior, a
    flow) the estimate log q(z|x) - log p(z) of the drawn z, (n, 1)."""
    return draw.kl if vae.kl_analytic else (draw.log_q - draw.log_p)[:, None]


def kl_columns(vae: LatentModel, params: Params) -> int:
    """Columns of kl_of's result for `vae`: latent_dim where the KL is per unit, else 1; traces the
    model's shapes only."""
    c = jnp.zeros(vae.n_conditions) if vae.n_conditions else None
    draw = lambda p: vae.posterior(p, jnp.zeros(vae.image_shape), jax.random.key(0), 1, c)  # noqa: E731
    return jax.eval_shape(lambda p: kl_of(vae, draw(p)), params).shape[-1]


def corrected(f: jax.Array, draw: Draw) -> jax.Array:
    """f, a scalar function of the draws, with the gradient correction of a rejection sampler's
    proposals added (value unchanged; see Draw.score); f itself where the draws have none."""
    return f if draw.score is None else f + jax.lax.stop_gradient(f) * jnp.sum(draw.score)


def _batch(c: jax.Array | None) -> jax.Array | None:
    return None if c is None else c[None]


def elbo_parts(
    vae: LatentModel, params: Params, x: jax.Array, key: jax.Array, c: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """ONE example x: (H, W, C) -> (one-sample log p(x|z), KL per latent unit (latent_dim,), or (1,):
    see kl_of); for a hierarchy the KL of a group below the top is analytic given the drawn groups above it."""
    draw = vae.posterior(params, x, key, 1, c)
    return corrected(vae.likelihood.log_prob(draw.out[0], x), draw), kl_of(vae, draw)[0]


def elbo(vae: LatentModel, params: Params, x: jax.Array, key: jax.Array, c: jax.Array | None = None) -> ElboTerms:
    """The single-sample ELBO of ONE example (batch it with jax.vmap, or `batch_elbo`).

    Args:
        vae: the model's functions (a LatentModel).
        params: its parameters.
        x: one image (H, W, C) in [0, 1] (binary for a Bernoulli model).
        key: the PRNG key of the noise of z.
        c: the one-hot condition (n_conditions,) of a conditional model; None otherwise.

    Returns:
        `ElboTerms` of scalars, in nats.
    """
    return assemble(*elbo_parts(vae, params, x, key, c))


def assemble(recon, kl_per_unit) -> ElboTerms:
    """The ELBO from its parts, the one place they are put together: recon (...) and the KL per
    latent unit (..., D) -> ElboTerms, each (...). A numpy array (on the host) is summed in float64."""
    if isinstance(kl_per_unit, np.ndarray):
        kl = kl_per_unit.sum(-1, dtype=np.float64)
    else:
        kl = jnp.sum(kl_per_unit, axis=-1)
    return ElboTerms(recon - kl, recon, kl)


def log_importance_weights(
    vae: LatentModel, params: Params, x: jax.Array, key: jax.Array, k: int, c: jax.Array | None = None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """For ONE example x: (H, W, C), k samples z_i ~ q(z|x) (every group of a hierarchy drawn from q)
    -> (log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), log p(x|z_i)), each (k,), and the
    KL of each draw, (k, latent_dim) per unit or (k, 1) (see kl_of)."""
    draw = vae.posterior(params, x, key, k, c)
    return (*_log_weights(vae, draw, x), kl_of(vae, draw))


def _log_weights(vae: LatentModel, draw: Draw, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(log w_i, log p(x|z_i)) of the k draws of ONE example x, each (k,)."""
    log_lik = jax.vmap(vae.likelihood.log_prob, in_axes=(0, None))(draw.out, x)
    return log_lik + draw.log_p - draw.log_q, log_lik


def iwae_bound(
    vae: LatentModel, params: Params, x: jax.Array, key: jax.Array, k: int, c: jax.Array | None = None
) -> jax.Array:
    """The k-sample importance-weighted bound of ONE example (Burda et al. 2016); k = 1 is the ELBO, and it
    grows with k. Draws from a rejection sampler add the gradient correction of all k (Draw.score).

    Args:
        vae: the model's functions (a LatentModel).
        params: its parameters.
        x: one image (H, W, C) in [0, 1].
        key: the PRNG key of the k draws.
        k: importance samples.
        c: the one-hot condition (n_conditions,) of a conditional model; None otherwise.

    Returns:
        A scalar, in nats.
    """
    draw = vae.posterior(params, x, key, k, c)
    return corrected(log_mean_exp(_log_weights(vae, draw, x)[0]), draw)


def log_mean_exp(log_w: jax.Array, axis: int = -1) -> jax.Array:
    """log (1/n) sum_i exp(log_w_i) over `axis` (of size n), without overflow."""
    return jax.nn.logsumexp(log_w, axis=axis) - math.log(log_w.shape[axis])


def batch_log_weights(
    vae: LatentModel, params: Params, xs: jax.Array, key: jax.Array, cs: jax.Array | None, n: int
) -> jax.Array:
    """log w = log p(x, z_i) - log q(z_i|x) of n draws z_i ~ q(z|x) per example of xs: (B, H, W, C) -> (B, n)."""
    one = lambda vae, params, x, key, n, c=None: log_importance_weights(vae, params, x, key, n, c)[0]  # noqa: E731
    return per_example(one, vae, params, xs, key, cs, n)


def ae_recon(vae: LatentModel, params: Params, x: jax.Array, key: jax.Array, c: jax.Array | None = None) -> jax.Array:
    """Autoencoder: log p(x|z) at z = the encoder's mean, no noise and no KL, for ONE example
    (`key` is unused: it takes one only to have the signature of the other objectives)."""
    return at_mean(vae, params, x, key, c)[0]


def at_mean(
    vae: LatentModel, params: Params, x: jax.Array, key: jax.Array, c: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """ONE example, a deterministic encoder: (log p(x|z), z: (latent_dim,)) at z = the encoder's mean
    (`key` is unused)."""
    mean, _ = vae.encode(params, x[None], _batch(c))
    return vae.likelihood.log_prob(vae.decode(params, mean, _batch(c))[0], x), mean[0]


def drawn(
    vae: LatentModel, params: Params, x: jax.Array, key: jax.Array, c: jax.Array | None = None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """ONE example, one draw z ~ q(z|x): (log p(x|z) (with a rejection sampler's gradient correction,
    Draw.score), its KL per latent unit (see kl_of), z)."""
    draw = vae.posterior(params, x, key, 1, c)
    return corrected(vae.likelihood.log_prob(draw.out[0], x), draw), kl_of(vae, draw)[0], draw.z[0]


def gaussian_drawn(
    vae: LatentModel, params: Params, x: jax.Array, key: jax.Array, c: jax.Array | None = None
) -> tuple[jax.Array, ...]:
    """ONE example, one draw z ~ q(z|x) of a diagonal Gaussian q (see diagonal_gaussian): (log p(x|z),
    its KL per latent unit (see kl_of), log p(z), z, mean, log_var), the last three (latent_dim,)."""
    draw = vae.posterior(params, x, key, 1, c)
    mean, log_var = draw.gaussian
    return vae.likelihood.log_prob(draw.out[0], x), kl_of(vae, draw)[0], draw.log_p[0], draw.z[0], mean, log_var


def diagonal_gaussian(vae: LatentModel, params: Params, key: jax.Array, objective: str) -> None:
    """Refuse (UserError) a model whose q(z|x) is not one diagonal Gaussian (a flow, a hierarchy),
    for an objective that reads its means and variances; traces the model's shapes only."""
    c = jnp.zeros(vae.n_conditions) if vae.n_conditions else None
    draw = jax.eval_shape(lambda p: vae.posterior(p, jnp.zeros(vae.image_shape), key, 1, c), params)
    if draw.gaussian is None:
        raise UserError(
            f"--objective {objective} needs q(z|x) to be one diagonal Gaussian: no --flow, one latent group, no "
            "--latent-space other than euclidean"
        )


class ReadsGaussian:
    """Mixed into an Objective that reads q(z|x)'s means and variances: its init refuses a model whose
    q(z|x) is not one diagonal Gaussian (see diagonal_gaussian)."""

    name: str

    def init(self, model: LatentModel, params: Params, key: jax.Array) -> dict:
        diagonal_gaussian(model, params, key, self.name)
        return {}


INFERENCE = ("encoder", "flow")  # the parameters of q(z|x); the rest (decoder, prior) are p's


def inference_from(inference: Params, generative: Params) -> Params:
    """The parameters of q(z|x) (INFERENCE) from `inference`, the others from `generative`: with one
    of them under stop_gradient, a loss's gradient reaches one side of the model only."""
    return {name: (inference if name in INFERENCE else generative)[name] for name in generative}


def per_example(
    fn: Callable, vae: LatentModel, params: Params, xs: jax.Array, key: jax.Array, cs: jax.Array | None = None, *args
):
    """vmap `fn(vae, params, x, key, *args, c)` over a batch xs: (B, H, W, C) with keys split(key, B)."""
    return per_example_keys(fn, vae, params, xs, jax.random.split(key, xs.shape[0]), cs, *args)


def per_example_keys(
    fn: Callable, vae: LatentModel, params: Params, xs: jax.Array, keys: jax.Array, cs: jax.Array | None = None, *args
):
    """vmap `fn(vae, params, x, key, *args, c)` over a batch xs: (B, H, W, C) and its keys: (B,)."""
    if cs is None:
        return jax.vmap(lambda x, k: fn(vae, params, x, k, *args))(xs, keys)
    return jax.vmap(lambda x, k, c: fn(vae, params, x, k, *args, c))(xs, keys, cs)


def batch_elbo(
    vae: LatentModel, params: Params, xs: jax.Array, key: jax.Array, cs: jax.Array | None = None
) -> ElboTerms:
    """The ELBO terms of a batch, one independent key per example (split from `key`).

    Args:
        vae: the model's functions (a LatentModel).
        params: its parameters.
        xs: images (B, H, W, C) in [0, 1].
        key: the PRNG key the examples' keys are split from.
        cs: one-hot conditions (B, n_conditions) of a conditional model; None otherwise.

    Returns:
        `ElboTerms`, each (B,).
    """
    return per_example(elbo, vae, params, xs, key, cs)


def group_sums(per_unit, groups: tuple[int, ...]):
    """A number per latent unit (..., latent_dim) -> its sum over each latent group (..., len(groups));
    a jax array (traced or not) stays one, a numpy array (e.g. float64 on the host) stays numpy."""
    ends = np.cumsum(groups)
    parts = [per_unit[..., end - size : end].sum(axis=-1) for end, size in zip(ends, groups)]
    return (jnp if isinstance(per_unit, jax.Array) else np).stack(parts, axis=-1)
