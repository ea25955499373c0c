"""Evaluation numbers on a whole split: the ELBO and its parts, averaged over examples."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from vae_jax.objectives import ElboTerms, batch_elbo
from vae_jax.vae import VAE, Params


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
