"""--prior vamp: the VampPrior (Tomczak & Welling 2018), p(z) = (1/K) sum_k q(z | u_k), the encoder's
Gaussians at K learned pseudo-inputs u_k, each an image clipped to [0, 1]."""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax.priors.base import Encode
from vae_jax.priors.mixture import Components, MixturePrior

PSEUDO_MEAN, PSEUDO_STD = 0.05, 0.01  # pseudo-inputs start as near-black noise (Tomczak & Welling's code)


@dataclass(frozen=True)
class VampPrior(MixturePrior):
    """The VampPrior (Tomczak & Welling 2018): p(z) = (1/K) sum_k q(z|u_k), K pseudo-inputs u_k learned."""

    k: int  # K, the pseudo-inputs (--pseudo-inputs)
    latent_dim: int = 0  # units of z

    @property
    def text(self) -> str:
        return f"VampPrior, {self.k} learned pseudo-inputs: (1/K) sum_k q(z|u_k)"

    def init(self, key: jax.Array, image_shape: tuple[int, int, int]) -> dict[str, jax.Array]:
        """Pseudo-inputs (K, H, W, C) drawn from N(PSEUDO_MEAN, PSEUDO_STD^2): noise, not training images."""
        return {"pseudo_inputs": PSEUDO_MEAN + PSEUDO_STD * jax.random.normal(key, (self.k, *image_shape), jnp.float32)}

    def pseudo_inputs(self, params: dict[str, jax.Array]) -> jax.Array:
        """The pseudo-inputs as images (K, H, W, C) in [0, 1]."""
        return jnp.clip(params["pseudo_inputs"], 0.0, 1.0)

    def components(self, params: dict[str, jax.Array], encode: Encode) -> Components:
        means, log_vars = encode(self.pseudo_inputs(params))
        return means, log_vars, jnp.full((self.k,), -math.log(self.k), jnp.float32)


def build(config, n_conditions: int) -> VampPrior:
    return VampPrior(config.pseudo_inputs, config.latent_dim)
