"""A VAE = encoder network + decoder network + likelihood head, used through pure functions of params.

A conditional VAE also passes a condition c: (B, n_conditions) one-hot labels to both networks.
"""

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
    n_conditions: int = 0  # 0: unconditional; else the number of classes of a conditional VAE

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
        return {
            "encoder": self.encoder.init(k_enc, x, c)["params"],
            "decoder": self.decoder.init(k_dec, z, c)["params"],
        }

    def encode(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """q(z|x[, c]): x (B, H, W, C) in [0, 1] -> (mean, log_var), each (B, latent_dim)."""
        out = self.encoder.apply({"params": params["encoder"]}, x, c).astype(jnp.float32)
        mean, log_var = jnp.split(out, 2, axis=-1)
        return mean, log_var

    def decode(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """p(x|z[, c]) parameters: z (B, latent_dim) -> raw output (B, H, W, C, P) for the likelihood,
        float32 whatever the networks compute in (log-likelihoods are always summed in float32)."""
        return self.decoder.apply({"params": params["decoder"]}, z, c).astype(jnp.float32)

    def decode_mean(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """Mean of p(x|z[, c]): z (B, latent_dim) -> (B, H, W, C)."""
        return self.likelihood.mean(self.decode(params, z, c))


def build(config: Config, image_shape: tuple[int, int, int], num_classes: int = 10) -> VAE:
    """The VAE that `config` describes, for images of `image_shape` (H, W, C); `num_classes`
    matters only for a conditional VAE."""
    likelihood = make_likelihood(config.likelihood, config.sigma, config.mixtures)
    encoder, decoder = make_networks(
        config.model,
        image_shape,
        config.latent_dim,
        likelihood.n_params,
        config.hidden,
        config.channels,
        config.depth,
        jnp.dtype(config.dtype),
    )
    n_conditions = num_classes if config.conditional else 0
    return VAE(encoder, decoder, likelihood, config.latent_dim, tuple(image_shape), n_conditions)
