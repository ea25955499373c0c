"""Evaluation numbers on a whole split: the ELBO and its parts, the importance-sampled
log-likelihood (Burda et al. 2016; Doersch §4.4), bits/dim, active units and KL per dimension.

All log-likelihoods are in nats per example. Importance samples are drawn in chunks and
reduced with a running logsumexp, so memory does not grow with k.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax.distributions import gaussian_log_prob, kl_standard_normal
from vae_jax.objectives import ElboTerms, batch_elbo
from vae_jax.vae import VAE, Params

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al.: Var_x(E_q[z_d]) above this makes dimension d active


def log_importance_weights(vae: VAE, params: Params, x: jax.Array, key: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """For ONE example x: (H, W, C), k samples z_i ~ q(z|x) ->
    (log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), log p(x|z_i)), each (k,)."""
    mean, log_var = vae.encode(params, x[None])
    eps = jax.random.normal(key, (k, vae.latent_dim), mean.dtype)
    z = mean + jnp.exp(0.5 * log_var) * eps
    log_q = jnp.sum(gaussian_log_prob(z, mean, log_var), axis=-1)
    log_prior = jnp.sum(gaussian_log_prob(z, 0.0, 0.0), axis=-1)
    log_lik = jax.vmap(vae.likelihood.log_prob, in_axes=(0, None))(vae.decode(params, z), x)
    return log_lik + log_prior - log_q, log_lik


def importance_sampled(vae: VAE, params: Params, x: jax.Array, key: jax.Array, k: int, chunk: int) -> tuple[jax.Array, jax.Array]:
    """For ONE example: (log (1/k) sum_i w_i, mean_i log p(x|z_i)) from k = n * chunk samples,
    drawn `chunk` at a time (key fold_in(key, j) for chunk j) with a running logsumexp."""
    n_chunks = k // chunk

    def body(carry, j):
        lse, lik_sum = carry
        log_w, log_lik = log_importance_weights(vae, params, x, jax.random.fold_in(key, j), chunk)
        return (jnp.logaddexp(lse, jax.nn.logsumexp(log_w)), lik_sum + jnp.sum(log_lik)), None

    init = (jnp.array(-jnp.inf, jnp.float32), jnp.array(0.0, jnp.float32))
    (lse, lik_sum), _ = jax.lax.scan(body, init, jnp.arange(n_chunks))
    return lse - math.log(k), lik_sum / k


@partial(jax.jit, static_argnames=("vae", "k", "chunk"))
def _evaluate_batch(vae: VAE, params: Params, xs: jax.Array, key: jax.Array, k: int, chunk: int) -> dict[str, jax.Array]:
    keys = jax.random.split(key, xs.shape[0])
    log_px, recon = jax.vmap(importance_sampled, in_axes=(None, None, 0, 0, None, None))(vae, params, xs, keys, k, chunk)
    mean, log_var = vae.encode(params, xs)
    kl_dims = kl_standard_normal(mean, log_var)
    return {"log_px": log_px, "recon": recon, "kl_dims": kl_dims, "post_mean": mean}


def evaluate(
    vae: VAE, params: Params, x: jax.Array, key: jax.Array, k: int = 1000, batch_size: int = 100, chunk: int = 100
) -> dict:
    """Importance-sampled log p(x), the ELBO, active units and KL per dimension over x: (N, H, W, C).

    `k` importance samples per example (rounded up to a multiple of `chunk`); the ELBO's
    reconstruction term averages log p(x|z) over the same samples, its KL is in closed form.
    """
    if k <= 0 or batch_size <= 0:
        raise ValueError("k and batch_size must be positive")
    chunk = min(chunk, k)
    k = -(-k // chunk) * chunk
    batch_size = min(batch_size, len(x))
    parts = []
    for i, start in enumerate(range(0, len(x), batch_size)):
        xs = jnp.asarray(x[start : start + batch_size])
        real = xs.shape[0]
        xs = jnp.pad(xs, [(0, batch_size - real)] + [(0, 0)] * (xs.ndim - 1))  # one shape, one compilation
        out = _evaluate_batch(vae, params, xs, jax.random.fold_in(key, i), k, chunk)
        parts.append(jax.tree.map(lambda a: np.asarray(a)[:real], out))
    out = {name: np.concatenate([p[name] for p in parts]).astype(np.float64) for name in parts[0]}
    n, dims = len(x), int(np.prod(x.shape[1:]))
    nll = -out["log_px"]
    kl = out["kl_dims"].sum(1)
    elbo = out["recon"] - kl
    variances = out["post_mean"].var(0)
    return {
        "n": n,
        "k": k,
        "nll": float(nll.mean()),
        "nll_se": float(nll.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
        "bits_per_dim": float(nll.mean() / (dims * math.log(2))),
        "elbo": float(elbo.mean()),
        "elbo_se": float(elbo.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
        "recon": float(out["recon"].mean()),
        "kl": float(kl.mean()),
        "active_units": int(np.sum(variances > ACTIVE_UNIT_THRESHOLD)),
        "latent_dim": int(variances.shape[0]),
        "posterior_mean_variance": variances.tolist(),
        "kl_per_dim": out["kl_dims"].mean(0).tolist(),
    }


@partial(jax.jit, static_argnames=("vae", "batch_size"))
def _elbo_sums(vae: VAE, params: Params, x: jax.Array, key: jax.Array, batch_size: int) -> ElboTerms:
    n = x.shape[0]
    n_batches = -(-n // batch_size)
    pad = n_batches * batch_size - n
    xb = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)).reshape(n_batches, batch_size, *x.shape[1:])
    mask = (jnp.arange(n_batches * batch_size) < n).reshape(n_batches, batch_size)

    def one(args):
        i, batch, m = args
        terms = batch_elbo(vae, params, batch, jax.random.fold_in(key, i))
        return jax.tree.map(lambda t: jnp.sum(jnp.where(m, t, 0.0)), terms)

    sums = jax.lax.map(one, (jnp.arange(n_batches), xb, mask))
    return jax.tree.map(jnp.sum, sums)


def mean_elbo(vae: VAE, params: Params, x: jax.Array, key: jax.Array, batch_size: int = 500) -> dict[str, float]:
    """Mean single-sample ELBO, reconstruction and KL over x: (N, H, W, C) in [0, 1], in nats."""
    sums = _elbo_sums(vae, params, x, key, min(batch_size, x.shape[0]))
    return {name: float(v) / x.shape[0] for name, v in sums._asdict().items()}
