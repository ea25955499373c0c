"""A VAE = encoder network + decoder network + likelihood head, used through pure functions of params."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae_jax.config import Config
from vae_jax.distributions import Likelihood, make_likelihood
from vae_jax.models import make_networks

Params = Any  # {'encoder': pytree, 'decoder': pytree}


@dataclass(frozen=True, eq=False)
class VAE:
    """Static description of a model; parameters live outside, in a plain pytree."""

    encoder: nn.Module
    decoder: nn.Module
    likelihood: Likelihood
    latent_dim: int
    image_shape: tuple[int, int, int]

    def init(self, key: jax.Array) -> Params:
        """Fresh parameters drawn from `key`."""
        k_enc, k_dec = jax.random.split(key)
        x = jnp.zeros((1, *self.image_shape), jnp.float32)
        z = jnp.zeros((1, self.latent_dim), jnp.float32)
        return {
            "encoder": self.encoder.init(k_enc, x)["params"],
            "decoder": self.decoder.init(k_dec, z)["params"],
        }

    def encode(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """q(z|x): x (B, H, W, C) in [0, 1] -> (mean, log_var), each (B, latent_dim)."""
        out = self.encoder.apply({"params": params["encoder"]}, x)
        mean, log_var = jnp.split(out, 2, axis=-1)
        return mean, log_var

    def decode(self, params: Params, z: jax.Array) -> jax.Array:
        """p(x|z) parameters: z (B, latent_dim) -> raw output (B, H, W, C, P) for the likelihood."""
        return self.decoder.apply({"params": params["decoder"]}, z)

    def decode_mean(self, params: Params, z: jax.Array) -> jax.Array:
        """Mean of p(x|z): z (B, latent_dim) -> (B, H, W, C)."""
        return self.likelihood.mean(self.decode(params, z))


def build(config: Config, image_shape: tuple[int, int, int]) -> VAE:
    """The VAE that `config` describes, for images of `image_shape` (H, W, C)."""
    likelihood = make_likelihood(config.likelihood, config.sigma)
    encoder, decoder = make_networks(
        config.model, image_shape, config.latent_dim, likelihood.n_params, config.hidden, config.channels
    )
    return VAE(encoder, decoder, likelihood, config.latent_dim, tuple(image_shape))
