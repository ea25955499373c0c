"""--prior normal: p(z) = N(0, I), the prior of Kingma & Welling (2014)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax.distributions import gaussian_log_prob, kl_standard_normal
from vae_jax.priors.base import Encode, Prior


@dataclass(frozen=True)
class Normal(Prior):
    """p(z) = N(0, I): no parameters, the KL in closed form."""

    latent_dim: int  # units of z
    text = "N(0, I)"
    analytic = True

    def log_prob(self, params, z: jax.Array, c, encode: Encode) -> jax.Array:
        return jnp.sum(gaussian_log_prob(z, 0.0, 0.0), axis=-1)

    def moments(self, params, c, encode: Encode) -> tuple[float, float]:
        return 0.0, 0.0

    def kl(self, params, mean: jax.Array, log_var: jax.Array, c) -> jax.Array:
        return kl_standard_normal(mean, log_var)

    def to_standard(self, params, z: jax.Array, c, encode: Encode) -> jax.Array:
        return z  # already in standard deviations from the mean

    def from_standard(self, params, u: jax.Array, c, encode: Encode) -> jax.Array:
        return u


def build(config, n_conditions: int) -> Normal:
    return Normal(config.latent_dim)
