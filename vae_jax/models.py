"""Flax linen networks. They map arrays to arrays and know nothing about probability.

Encoders: x (B, H, W, C) -> (B, 2 * latent_dim) raw numbers.
Decoders: z (B, latent_dim) -> (B, H, W, C, P) raw numbers, P per pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax

from vae_jax.errors import UserError


class MLPEncoder(nn.Module):
    hidden: Sequence[int]
    n_out: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = x.reshape(x.shape[0], -1)
        for width in self.hidden:
            h = nn.relu(nn.Dense(width)(h))
        return nn.Dense(self.n_out)(h)


class MLPDecoder(nn.Module):
    hidden: Sequence[int]
    out_shape: tuple[int, int, int, int]  # (H, W, C, P)

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        h = z
        for width in reversed(self.hidden):
            h = nn.relu(nn.Dense(width)(h))
        size = 1
        for d in self.out_shape:
            size *= d
        return nn.Dense(size)(h).reshape(z.shape[0], *self.out_shape)


class ConvEncoder(nn.Module):
    """Stride-2 3x3 convolutions, one per entry of `channels`, then a dense layer."""

    channels: Sequence[int]
    n_out: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = x
        for c in self.channels:
            h = nn.relu(nn.Conv(c, (3, 3), strides=(2, 2), padding="SAME")(h))
        return nn.Dense(self.n_out)(h.reshape(h.shape[0], -1))


class ConvDecoder(nn.Module):
    """Dense layer to a (H/2^L, W/2^L) feature map, then stride-2 transposed convolutions."""

    channels: Sequence[int]
    out_shape: tuple[int, int, int, int]  # (H, W, C, P)

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        height, width, c_out, p = self.out_shape
        scale = 2 ** len(self.channels)
        h0, w0 = height // scale, width // scale
        h = nn.relu(nn.Dense(h0 * w0 * self.channels[-1])(z)).reshape(z.shape[0], h0, w0, self.channels[-1])
        for c in reversed(self.channels[:-1]):
            h = nn.relu(nn.ConvTranspose(c, (3, 3), strides=(2, 2), padding="SAME")(h))
        h = nn.ConvTranspose(c_out * p, (3, 3), strides=(2, 2), padding="SAME")(h)
        return h.reshape(z.shape[0], height, width, c_out, p)


def make_networks(
    model: str,
    image_shape: tuple[int, int, int],
    latent_dim: int,
    n_params: int,
    hidden: Sequence[int] = (500,),
    channels: Sequence[int] = (32, 64),
) -> tuple[nn.Module, nn.Module]:
    """Encoder and decoder of family `model` for images of `image_shape` (H, W, C)."""
    out_shape = (*image_shape, n_params)
    if model == "mlp":
        return MLPEncoder(tuple(hidden), 2 * latent_dim), MLPDecoder(tuple(hidden), out_shape)
    if model == "conv":
        scale = 2 ** len(channels)
        height, width, _ = image_shape
        if height % scale or width % scale:
            raise UserError(
                f"--model conv with {len(channels)} stride-2 layers needs height and width divisible "
                f"by {scale} (e.g. 28x28x1 or 32x32x3 with 2 layers), got {height}x{width}x{image_shape[2]}"
            )
        return ConvEncoder(tuple(channels), 2 * latent_dim), ConvDecoder(tuple(channels), out_shape)
    raise UserError(f"unknown model {model!r}")


