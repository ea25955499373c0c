"""The uniform prior on the unit sphere S^{m-1} in R^m of the hyperspherical VAE (families.sphere,
--latent-space sphere; Davidson et al. 2018). It is the latent space's own prior, not a --prior
choice: a Gaussian prior does not live on the sphere."""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax import vmf
from vae_jax.errors import UserError
from vae_jax.priors.base import Encode, Prior


@dataclass(frozen=True)
class UniformSphere(Prior):
    """p(z) uniform on the unit sphere S^{m-1} (the hyperspherical VAE's prior, Davidson et al. 2018)."""

    latent_dim: int  # m: the sphere is S^{m-1}
    analytic = True  # KL(vMF || uniform) in closed form, for the whole latent (vmf.kl_to_uniform)

    @property
    def text(self) -> str:
        return f"uniform on the unit sphere S^{self.latent_dim - 1}"

    def log_prob(self, params, z: jax.Array, c, encode: Encode) -> jax.Array:
        return jnp.full(z.shape[:-1], -vmf.log_sphere_area(self.latent_dim), jnp.float32)

    def moments(self, params, c, encode: Encode) -> tuple[float, float]:
        """Per unit: mean 0, variance 1 / m."""
        return 0.0, -math.log(self.latent_dim)

    def from_standard(self, params, u: jax.Array, c, encode: Encode) -> jax.Array:
        """The point of the sphere nearest to u / sqrt(m) (u itself where it is on the sphere scaled by
        sqrt(m), as to_standard gives it): u's direction; the first axis where u is 0."""
        norm = jnp.linalg.norm(u, axis=-1, keepdims=True)
        e1 = jnp.zeros(u.shape[-1], u.dtype).at[0].set(1)
        return jnp.where(norm > 0, u / jnp.where(norm > 0, norm, 1), e1)

    def sample(self, params, key: jax.Array, n: int, c, temperature: float, encode: Encode) -> jax.Array:
        if temperature != 1:
            raise UserError(f"temperature {temperature:g}: the uniform prior on the sphere has none (give 1)")
        return vmf.uniform(key, (n,), self.latent_dim)
