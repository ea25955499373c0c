"""The wrapped normal prior at the origin of the Poincaré ball of the Poincaré VAE (families.poincare,
--latent-space poincare; Mathieu et al. 2019): z = exp_0(v / 2), v ~ N(0, I). It is the latent
space's own prior, not a --prior choice."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax import poincare
from vae_jax.priors.base import Encode, Prior


@dataclass(frozen=True)
class WrappedNormal(Prior):
    """p(z) = N_W(0, I), the wrapped normal at the origin of the Poincaré ball (Mathieu et al. 2019)."""

    latent_dim: int  # units of z (the ball's dimension)
    curvature: float  # c: the ball has curvature -c (--curvature)

    @property
    def text(self) -> str:
        return f"wrapped normal N_W(0, I) on the Poincaré ball of curvature -{self.curvature:g}"

    def log_prob(self, params, z: jax.Array, c, encode: Encode) -> jax.Array:
        return poincare.log_prob(z, jnp.zeros_like(z), jnp.zeros_like(z), self.curvature)

    def to_standard(self, params, z: jax.Array, c, encode: Encode) -> jax.Array:
        """The tangent Gaussian's coordinates, lambda_0 log_0(z): N(0, I) under the prior."""
        return 2 * poincare.logmap0(z, self.curvature)

    def from_standard(self, params, u: jax.Array, c, encode: Encode) -> jax.Array:
        return poincare.expmap0(u / 2, self.curvature)
