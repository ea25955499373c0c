"""The ELBO, written for one example and batched with jax.vmap over per-example keys."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from vae_jax.distributions import kl_standard_normal, reparameterize
from vae_jax.vae import VAE, Params


class ElboTerms(NamedTuple):
    """ELBO = recon - kl, in nats. Scalars for one example, (B,) arrays when batched."""

    elbo: jax.Array
    recon: jax.Array  # E_q[log p(x|z)], one-sample estimate
    kl: jax.Array  # KL(q(z|x) || N(0, I)), closed form


def elbo(vae: VAE, params: Params, x: jax.Array, key: jax.Array) -> ElboTerms:
    """Single-sample ELBO of ONE example x: (H, W, C) in [0, 1]; `key` draws the noise of z."""
    mean, log_var = vae.encode(params, x[None])
    z = reparameterize(key, mean, log_var)
    recon = vae.likelihood.log_prob(vae.decode(params, z)[0], x)
    kl = jnp.sum(kl_standard_normal(mean[0], log_var[0]).astype(jnp.float32))
    return ElboTerms(recon - kl, recon, kl)


def batch_elbo(vae: VAE, params: Params, xs: jax.Array, key: jax.Array) -> ElboTerms:
    """ELBO terms of a batch xs: (B, H, W, C), one independent key per example -> (B,) each."""
    keys = jax.random.split(key, xs.shape[0])
    return jax.vmap(elbo, in_axes=(None, None, 0, 0))(vae, params, xs, keys)


def loss(vae: VAE, params: Params, xs: jax.Array, key: jax.Array, beta: float = 1.0) -> tuple[jax.Array, ElboTerms]:
    """Mean over the batch of -(recon - beta * kl): beta = 1 is the negative ELBO."""
    terms = batch_elbo(vae, params, xs, key)
    return -jnp.mean(terms.recon - beta * terms.kl), terms
