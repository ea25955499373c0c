"""A VAE = encoder network + decoder network + likelihood head, used through pure functions of params.

A conditional VAE also passes a condition c: (B, n_conditions) one-hot labels to both networks. The
prior p(z) is its own small contract (vae_jax.priors: N(0, I), a Gaussian per class, VampPrior, a
mixture of Gaussians), and so is a flow that carries the encoder's Gaussian (vae_jax.flows: IAF):
this module asks them for log p(z), moments and draws, and for z_T and log det, and never which
one it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae_jax import flows, priors
from vae_jax.distributions import Likelihood, gaussian_log_prob, reparameterize
from vae_jax.families.networks import CONV_MODELS, make_networks
from vae_jax.latent import Draw, Params, temperatures
from vae_jax.priors.base import Encode, Prior
from vae_jax.priors.normal import Normal

# Params: {'encoder': pytree, 'decoder': pytree[, 'prior': the prior's own (vae_jax.priors)][, 'flow': the flow's]}


@dataclass(frozen=True, eq=False)
class VAE:
    """Static description of a model; parameters live outside, in a plain pytree."""

    encoder: nn.Module  # x (B, H, W, C) -> q(z|x)'s mean and log-variance (and a flow's context)
    decoder: nn.Module  # z (B, latent_dim) -> the raw output (B, H, W, C, P) the likelihood reads
    likelihood: Likelihood  # p(x|z)
    latent_dim: int  # units of z
    image_shape: tuple[int, int, int]  # (H, W, C)
    n_conditions: int = 0  # 0: unconditional; else the number of classes of a conditional VAE
    prior: Prior | None = None  # p(z) (None: N(0, I))
    convolutional: bool = False  # its networks are convolutions
    flow: Any = None  # q(z|x) is the encoder's Gaussian carried through this flow (vae_jax.flows); None: no flow
    flow_target: bool = False  # the flow reads the image's log p(x, z) and a key (flows.Spec.target)
    discrete = False  # z is continuous

    def __post_init__(self):
        if self.prior is None:
            object.__setattr__(self, "prior", Normal(self.latent_dim))

    @property
    def kl_analytic(self) -> bool:
        """KL(q || p) per unit in closed form: both Gaussian; else the ELBO uses log q(z|x) - log p(z)."""
        return self.prior.analytic and self.flow is None

    @property
    def description(self) -> dict[str, str]:
        posterior = self.flow.text if self.flow else "diagonal Gaussian"
        kl = "closed form" if self.kl_analytic else "estimated: log q(z|x) - log p(z) of the drawn z"
        return {"prior": self.prior.text, "posterior": posterior, "kl": kl}

    def condition(self, labels: jax.Array | None) -> jax.Array | None:
        """One-hot conditions (B, n_conditions) for int labels (B,), or None for an unconditional VAE."""
        if not self.n_conditions:
            return None
        if labels is None:
            raise ValueError("a conditional VAE needs labels")
        return jax.nn.one_hot(labels, self.n_conditions, dtype=jnp.float32)

    def init(self, key: jax.Array) -> Params:
        """Fresh parameters drawn from `key`."""
        k_enc, k_dec = jax.random.split(key)
        x = jnp.zeros((1, *self.image_shape), jnp.float32)
        z = jnp.zeros((1, self.latent_dim), jnp.float32)
        c = jnp.zeros((1, self.n_conditions), jnp.float32) if self.n_conditions else None
        params = {
            "encoder": self.encoder.init(k_enc, x, c)["params"],
            "decoder": self.decoder.init(k_dec, z, c)["params"],
        }
        prior = self.prior.init(jax.random.fold_in(key, 1), self.image_shape)
        if prior is not None:
            params["prior"] = prior
        if self.flow:
            params["flow"] = self.flow.init(jax.random.fold_in(key, 2))
        return params

    def _encode_fn(self, params: Params) -> Encode:
        """The encoder's Gaussian (before any flow), as a prior that needs it (the VampPrior) is given it."""
        return lambda u: self.gaussian(params, u)[:2]

    def log_prior(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """log p(z) (or log p(z | c)) of z (n, latent_dim) -> (n,)."""
        return self.prior.log_prob(params.get("prior"), z, c, self._encode_fn(params))

    def to_standard(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """z (B, latent_dim) in the prior's standard deviations from its mean: (z - mean) / std (of a
        mixture: its mean and standard deviation per unit)."""
        return self.prior.to_standard(params.get("prior"), z, c, self._encode_fn(params))

    def from_standard(self, params: Params, u: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """The inverse of to_standard: mean + std * u, (B, latent_dim)."""
        return self.prior.from_standard(params.get("prior"), u, c, self._encode_fn(params))

    def gaussian(self, params: Params, x: jax.Array, c: jax.Array | None = None):
        """The encoder's Gaussian and flow context: x (B, H, W, C) -> (mean, log_var (B, latent_dim),
        context (B, flow.context) or None)."""
        out = self.encoder.apply({"params": params["encoder"]}, x, c).astype(jnp.float32)
        if not self.flow:
            mean, log_var = jnp.split(out, 2, axis=-1)
            return mean, log_var, None
        d = self.latent_dim
        return out[:, :d], out[:, d : 2 * d], out[:, 2 * d :]

    def encode(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """q(z|x[, c]) along its mean path: x (B, H, W, C) in [0, 1] -> (mean, log_var), each
        (B, latent_dim). With a flow: the Gaussian's mean carried through it, and a log-variance from
        the diagonal of the flow's Jacobian there (a linearisation)."""
        mean, log_var, context = self.gaussian(params, x, c)
        if not self.flow:
            return mean, log_var
        z, log_s = self.flow.diagonal(params["flow"], mean, context)
        return z, log_var if log_s is None else log_var + 2.0 * log_s

    def decode(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """p(x|z[, c]) parameters: z (B, latent_dim) -> raw output (B, H, W, C, P) for the likelihood,
        float32 whatever the networks compute in (log-likelihoods are always summed in float32)."""
        return self.decoder.apply({"params": params["decoder"]}, z, c).astype(jnp.float32)

    def decode_mean(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """Mean of p(x|z[, c]): z (B, latent_dim) -> (B, H, W, C)."""
        return self.likelihood.mean(self.decode(params, z, c))

    def mean_shift(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """(E_q[z] - E_p[z]) / std_p[z] (with N(0, I): the posterior mean): x (B, H, W, C) -> (B, latent_dim)."""
        return self.to_standard(params, self.encode(params, x, c)[0], c)

    def decode_top(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """decode_mean: the top latent group is the whole latent."""
        return self.decode_mean(params, z, c)

    @property
    def groups(self) -> tuple[int, ...]:
        """Sizes of the latent groups: one group of latent_dim units."""
        return (self.latent_dim,)

    @property
    def group_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.latent_dim,),)

    def posterior(self, params: Params, x: jax.Array, key: jax.Array, n: int, c: jax.Array | None = None) -> Draw:
        """n draws z ~ q(z|x[, c]) for ONE example x: (H, W, C); the encoder runs once."""
        cs = None if c is None else c[None]
        mean, log_var, context = self.gaussian(params, x[None], cs)
        shape = (n, self.latent_dim)
        z = reparameterize(key, jnp.broadcast_to(mean, shape), jnp.broadcast_to(log_var, shape))
        log_q = jnp.sum(gaussian_log_prob(z, mean, log_var), axis=-1)
        if self.flow:
            h = jnp.broadcast_to(context, (n, context.shape[-1]))
            if self.flow_target:  # it reads the image's log p(x, z) and draws its own noise
                z, log_det = self.flow(params["flow"], z, h, jax.random.fold_in(key, 1), self._log_joint(params, x, c))
            else:
                z, log_det = self.flow(params["flow"], z, h)
            log_q = log_q - log_det
        log_p = self.log_prior(params, z, cs)
        kl = None
        if self.kl_analytic:
            kl = self.prior.kl(params.get("prior"), mean, log_var, cs)
            kl = jnp.broadcast_to(kl.astype(jnp.float32), z.shape)
        out = self.decode(params, z, None if c is None else jnp.broadcast_to(c, (n, *c.shape)))
        return Draw(out, kl, log_q, log_p, z, None if self.flow else (mean[0], log_var[0]))

    def _log_joint(self, params: Params, x: jax.Array, c: jax.Array | None):
        """z (n, latent_dim) -> log p(x, z) (n,) of ONE example x: (H, W, C) (and its condition c)."""

        def log_joint(z: jax.Array) -> jax.Array:
            cs = None if c is None else jnp.broadcast_to(c, (z.shape[0], *c.shape))
            out = self.decode(params, z, cs)
            return jax.vmap(self.likelihood.log_prob, in_axes=(0, None))(out, x) + self.log_prior(params, z, cs)

        return log_joint

    def generate(
        self, params: Params, key: jax.Array, n: int, c: jax.Array | None = None, temperature: float = 1.0
    ) -> jax.Array:
        """Raw decoder output (n, H, W, C, P) of n draws z from the prior, its standard deviation times
        `temperature`; c: (n, n_conditions)."""
        return self.decode(params, self.sample_prior(params, key, n, c, temperature), c)

    def sample_prior(
        self, params: Params, key: jax.Array, n: int, c: jax.Array | None = None, temperature: float = 1.0
    ) -> jax.Array:
        """n draws z from the prior (given c, for a conditional VAE): (n, latent_dim), its standard
        deviation times `temperature`."""
        (t,) = temperatures(temperature, 1)
        return self.prior.sample(params.get("prior"), key, n, c, t, self._encode_fn(params))


def networks(config, likelihood: Likelihood, image_shape: tuple[int, int, int], n_out: int):
    """The encoder (n_out numbers per image) and decoder of --model mlp, conv or resnet as `config` sizes them."""
    dtype = jnp.dtype(config.dtype)
    widths = (config.hidden, config.channels, config.depth, dtype)
    return make_networks(config.model, image_shape, n_out, likelihood.n_params, *widths)


def build(config, likelihood: Likelihood, image_shape: tuple[int, int, int], n_conditions: int) -> VAE:
    """The one-latent VAE that `config` describes (families.Builder): --model mlp (dense layers of
    --hidden widths), conv (stride-2 convolutions of --channels widths, sub-pixel up-sampling) or
    resnet (--depth residual blocks per stage); its --prior and --flow."""
    flow = flows.build(config)
    encoder, decoder = networks(config, likelihood, image_shape, 2 * config.latent_dim + (flow.context if flow else 0))
    prior = priors.build(config, n_conditions)
    convolutional = config.model in CONV_MODELS
    shape = (config.latent_dim, image_shape, n_conditions)
    return VAE(encoder, decoder, likelihood, *shape, prior, convolutional, flow, flows.reads_target(config))
