"""Flax linen networks. They map arrays to arrays and know nothing about probability.

Encoders: x (B, H, W, C) [, c (B, n_cond)] -> (B, n_out) raw numbers (a Gaussian q's: 2 * latent_dim [+ context]).
Decoders: z (B, latent_dim) [, c (B, n_cond)] -> (B, H, W, C, P) raw numbers, P per pixel.
`c` is an optional condition (a one-hot label for a conditional VAE), joined to the flat
features of the encoder and to z in the decoder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae_jax.errors import UserError

CONV_MODELS = ("conv", "resnet")  # the one-latent VAE's convolutional networks


def _join(h: jax.Array, c: jax.Array | None) -> jax.Array:
    """Flat features (B, F) with the condition appended: (B, F + n_cond)."""
    h = h.reshape(h.shape[0], -1)
    return h if c is None else jnp.concatenate([h, c.astype(h.dtype)], axis=-1)


class MLPEncoder(nn.Module):
    hidden: Sequence[int]
    n_out: int

    dtype: Any = jnp.float32  # computation; params stay float32

    @nn.compact
    def __call__(self, x: jax.Array, c: jax.Array | None = None) -> jax.Array:
        h = _join(x, c)
        for width in self.hidden:
            h = nn.relu(nn.Dense(width, dtype=self.dtype)(h))
        return nn.Dense(self.n_out, dtype=self.dtype)(h)


class MLPDecoder(nn.Module):
    hidden: Sequence[int]
    out_shape: tuple[int, int, int, int]  # (H, W, C, P)

    dtype: Any = jnp.float32  # computation; params stay float32

    @nn.compact
    def __call__(self, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        h = _join(z, c)
        for width in reversed(self.hidden):
            h = nn.relu(nn.Dense(width, dtype=self.dtype)(h))
        return nn.Dense(math.prod(self.out_shape), dtype=self.dtype)(h).reshape(z.shape[0], *self.out_shape)


class ConvEncoder(nn.Module):
    """Stride-2 3x3 convolutions, one per entry of `channels`, then a dense layer."""

    channels: Sequence[int]
    n_out: int

    dtype: Any = jnp.float32  # computation; params stay float32

    @nn.compact
    def __call__(self, x: jax.Array, c: jax.Array | None = None) -> jax.Array:
        h = x
        for width in self.channels:
            h = nn.relu(nn.Conv(width, (3, 3), strides=(2, 2), padding="SAME", dtype=self.dtype)(h))
        return nn.Dense(self.n_out, dtype=self.dtype)(_join(h, c))


def _feature_map(
    z: jax.Array, c: jax.Array | None, out_shape: tuple[int, ...], n_stages: int, width: int, dtype: Any
) -> jax.Array:
    """Dense layer from (z, c) to a (B, H / 2^n_stages, W / 2^n_stages, width) feature map."""
    scale = 2**n_stages
    h0, w0 = out_shape[0] // scale, out_shape[1] // scale
    return nn.Dense(h0 * w0 * width, dtype=dtype)(_join(z, c)).reshape(z.shape[0], h0, w0, width)


def subpixel_upsample(h: jax.Array, width: int, dtype: Any, name: str | None = None) -> jax.Array:
    """2x up-sampling by sub-pixel convolution (Shi et al. 2016): a 2x2 convolution to 4 * width
    channels whose groups of 4 become 2x2 output pixels: (B, H, W, C) -> (B, 2H, 2W, width).
    As in a stride-2 4x4 transposed convolution, each output pixel sees 2x2 input pixels through
    weights of its own phase; XLA:CPU takes a slow path for a transposed convolution's gradient
    (measured 18 GFLOP/s, against ~130 for this convolution)."""
    b, height, w, _ = h.shape
    h = nn.Conv(4 * width, (2, 2), padding="SAME", dtype=dtype, name=name)(h)
    h = h.reshape(b, height, w, 2, 2, width).transpose(0, 1, 3, 2, 4, 5)
    return h.reshape(b, 2 * height, 2 * w, width)


class ConvDecoder(nn.Module):
    """Dense layer to a (H/2^L, W/2^L) feature map, then one 2x sub-pixel up-sampling per stage."""

    channels: Sequence[int]
    out_shape: tuple[int, int, int, int]  # (H, W, C, P)

    dtype: Any = jnp.float32  # computation; params stay float32

    @nn.compact
    def __call__(self, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        _, _, c_out, p = self.out_shape
        h = nn.relu(_feature_map(z, c, self.out_shape, len(self.channels), self.channels[-1], self.dtype))
        for width in reversed(self.channels[:-1]):
            h = nn.relu(subpixel_upsample(h, width, self.dtype))
        h = subpixel_upsample(h, c_out * p, self.dtype)
        return h.reshape(z.shape[0], *self.out_shape)


class ResBlock(nn.Module):
    """Pre-activation residual block: h + conv(relu(conv(relu(h))))."""

    width: int

    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        r = nn.Conv(self.width, (3, 3), padding="SAME", dtype=self.dtype)(nn.relu(h))
        r = nn.Conv(self.width, (3, 3), padding="SAME", dtype=self.dtype)(nn.relu(r))
        return h + r


class ResNetEncoder(nn.Module):
    """Per stage: a stride-2 convolution (down-sampling) to the stage width, then `depth` residual blocks."""

    channels: Sequence[int]
    depth: int
    n_out: int

    dtype: Any = jnp.float32  # computation; params stay float32

    @nn.compact
    def __call__(self, x: jax.Array, c: jax.Array | None = None) -> jax.Array:
        h = x
        for width in self.channels:
            h = nn.Conv(width, (3, 3), strides=(2, 2), padding="SAME", dtype=self.dtype)(h)
            for _ in range(self.depth):
                h = ResBlock(width, self.dtype)(h)
        return nn.Dense(self.n_out, dtype=self.dtype)(_join(nn.relu(h), c))


class ResNetDecoder(nn.Module):
    """Per stage (widest first): `depth` residual blocks, nearest-neighbour 2x up-sampling and a convolution."""

    channels: Sequence[int]
    depth: int
    out_shape: tuple[int, int, int, int]  # (H, W, C, P)

    dtype: Any = jnp.float32  # computation; params stay float32

    @nn.compact
    def __call__(self, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        _, _, c_out, p = self.out_shape
        widths = list(reversed(self.channels))
        h = _feature_map(z, c, self.out_shape, len(widths), widths[0], self.dtype)
        for i, width in enumerate(widths):
            for _ in range(self.depth):
                h = ResBlock(width, self.dtype)(h)
            h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)  # nearest-neighbour up-sampling
            next_width = widths[i + 1] if i + 1 < len(widths) else widths[-1]
            h = nn.Conv(next_width, (3, 3), padding="SAME", dtype=self.dtype)(nn.relu(h))
        h = nn.Conv(c_out * p, (3, 3), padding="SAME", dtype=self.dtype)(nn.relu(h))
        return h.reshape(z.shape[0], *self.out_shape)


def check_stages(model: str, image_shape: tuple[int, int, int], channels: Sequence[int]) -> None:
    """Refuse images whose sides the len(channels) stride-2 stages of `model` cannot halve evenly."""
    scale = 2 ** len(channels)
    height, width, n_channels = image_shape
    if height % scale or width % scale:
        raise UserError(
            f"--model {model} with {len(channels)} stride-2 stages needs height and width divisible by {scale} "
            f"(supported with --channels of {len(channels)} entries: 28x28x1, 32x32x3, 64x64x3, or any HxWxC with "
            f"H and W multiples of {scale}); got {height}x{width}x{n_channels}: for an image folder, --image-size "
            f"{max(scale, round(min(height, width) / scale) * scale)} resizes its images to fit"
        )


def make_networks(
    model: str,
    image_shape: tuple[int, int, int],
    n_out: int,
    n_params: int,
    hidden: Sequence[int] = (500,),
    channels: Sequence[int] = (32, 64),
    depth: int = 1,
    dtype: Any = jnp.float32,
) -> tuple[nn.Module, nn.Module]:
    """Encoder and decoder of family `model` for images of `image_shape` (H, W, C), computing in
    `dtype` (their params are float32 whatever it is); the encoder gives n_out numbers (a Gaussian
    q: 2 * latent_dim, and the context a flow reads), the decoder reads z of any width."""
    out_shape = (*image_shape, n_params)
    if model == "mlp":
        return MLPEncoder(tuple(hidden), n_out, dtype), MLPDecoder(tuple(hidden), out_shape, dtype)
    if model not in CONV_MODELS:
        raise UserError(f"unknown model {model!r}")
    check_stages(model, image_shape, channels)
    if model == "conv":
        return ConvEncoder(tuple(channels), n_out, dtype), ConvDecoder(tuple(channels), out_shape, dtype)
    return ResNetEncoder(tuple(channels), depth, n_out, dtype), ResNetDecoder(tuple(channels), depth, out_shape, dtype)
