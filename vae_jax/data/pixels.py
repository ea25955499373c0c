"""uint8 images -> what the networks see: intensities in [0, 1], or binary pixels for a Bernoulli
likelihood (a fresh draw per step in training, one fixed draw for evaluation)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vae_jax import compiling

EVAL_BINARIZATION_SEED = 0  # the same for every run, so test numbers compare across runs


def to_unit(images: jax.Array) -> jax.Array:
    """uint8 (..., H, W, C) -> float32 in [0, 1]."""
    return images.astype(jnp.float32) / 255.0


def binarize(key: jax.Array, images: jax.Array) -> jax.Array:
    """One Bernoulli draw per pixel with probability = intensity: uint8 -> float32 in {0, 1}."""
    return jax.random.bernoulli(key, to_unit(images)).astype(jnp.float32)


@compiling.jit
def binarize_u8(key: jax.Array, images: jax.Array) -> jax.Array:
    """One fixed binarization kept as uint8 {0, 255} (static binarization of a training set)."""
    return (binarize(key, images) * 255).astype(jnp.uint8)


@compiling.jit(static_argnums=1)
def eval_images(images: jax.Array, binary: bool) -> jax.Array:
    """Evaluation inputs from uint8 (N, H, W, C): binarized once with a fixed key for a likelihood of
    binary pixels (Likelihood.binary)."""
    if binary:
        return binarize(jax.random.key(EVAL_BINARIZATION_SEED), images)
    return to_unit(images)
