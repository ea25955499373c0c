"""The networks of the hierarchical VAE (families/hvae.py): a bottom-up pass of residual blocks over
the stages, and a top-down pass that, per latent group, computes a prior head and a posterior head
and takes the group's z from a `choose` function the family passes in. Raw numbers only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae_jax.families.networks import ResBlock, subpixel_upsample

# choose(g, prior, posterior) -> z of group g, (n, h, w, latent); prior and posterior are the raw
# head outputs (n, h, w, 2 * latent), None for the top group's prior (N(0, I)) and without features
Choose = Callable[[int, jax.Array | None, jax.Array | None], jax.Array]


class BottomUp(nn.Module):
    """Per stage: a stride-2 convolution to the stage width, then `depth` residual blocks."""

    channels: Sequence[int]
    depth: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> list[jax.Array]:
        """x (B, H, W, C) -> the features of each stage, finest first: (B, H/2^(s+1), W/2^(s+1), channels[s])."""
        feats, h = [], x
        for width in self.channels:
            h = nn.Conv(width, (3, 3), strides=(2, 2), padding="SAME", dtype=self.dtype)(h)
            for _ in range(self.depth):
                h = ResBlock(width, self.dtype)(h)
            feats.append(h)
        return feats


class TopDown(nn.Module):
    """From a zero state at the coarsest stage: per latent group a prior head, a posterior head,
    z added back through a 1x1 convolution and a residual block; per stage `depth` more blocks and
    a 2x up-sampling; the last one up-samples to the raw output (n, H, W, C, P)."""

    channels: Sequence[int]  # stage widths, finest first (as BottomUp's)
    depth: int
    per_stage: Sequence[int]  # latent groups of each stage, coarsest first
    latent: int  # channels of each group's z
    out_shape: tuple[int, int, int, int]  # (H, W, C, P)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, n: int, feats: Sequence[jax.Array] | None, choose: Choose) -> jax.Array:
        """n rows; feats: BottomUp's features (1 or n rows) or None (no posterior needed)."""
        height, width_px, c_out, p = self.out_shape
        widths = list(reversed(self.channels))
        scale = 2 ** len(widths)
        h = jnp.zeros((n, height // scale, width_px // scale, widths[0]), self.dtype)
        # every module is named: without a posterior (sampling) its heads are skipped, and the names
        # keep the parameters of the others where they are. The heads start at zero: at
        # initialisation every prior is N(0, I) and every posterior its prior.
        head = _head(2 * self.latent, self.dtype)
        g = 0
        for s, (width, count) in enumerate(zip(widths, self.per_stage)):
            feat = None if feats is None else jnp.broadcast_to(feats[-1 - s], h.shape).astype(self.dtype)
            for _ in range(count):
                prior = None if g == 0 else head(f"prior_{g}")(nn.relu(h))
                post = None if feat is None else head(f"posterior_{g}")(nn.relu(jnp.concatenate([h, feat], -1)))
                z = choose(g, prior, post)
                h = h + nn.Conv(width, (1, 1), dtype=self.dtype, name=f"z_in_{g}")(z.astype(self.dtype))
                h = ResBlock(width, self.dtype, name=f"group_block_{g}")(h)
                g += 1
            for d in range(self.depth):
                h = ResBlock(width, self.dtype, name=f"stage_{s}_block_{d}")(h)
            next_width = widths[s + 1] if s + 1 < len(widths) else c_out * p
            h = subpixel_upsample(nn.relu(h), next_width, self.dtype, name=f"up_{s}")
        return h.reshape(n, height, width_px, c_out, p)


def _head(features: int, dtype: Any) -> Callable[[str], nn.Conv]:
    """A named 3x3 head convolution to `features` channels whose weights start at zero."""
    return lambda name: nn.Conv(
        features, (3, 3), padding="SAME", dtype=dtype, kernel_init=nn.initializers.zeros, name=name
    )
