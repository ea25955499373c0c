"""How a discrete model (z a grid of codes: --model vqvae) uses its codebook: the codes of images,
and how many of the K codes they use, how evenly (the perplexity of their frequencies) and how many
they never use (dead codes)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax import compiling
from vae_jax.latent import DiscreteModel, Params

TOP = 10  # the most used codes a usage report lists


def codes_of(vae: DiscreteModel, params: Params, x: np.ndarray, batch: int = 500) -> np.ndarray:
    """The codes of images under a discrete model: what a sampler of codes is fitted to.

    Args:
        vae: the model, its z discrete.
        params: its parameters.
        x: images (N, H, W, C), as the model reads them.
        batch: images quantised at once.

    Returns:
        (N, h, w) int32, h x w the model's grid of codes (its group's shape less the code's units).
    """
    grid = vae.group_shapes[0][:-1]
    parts = [np.asarray(_codes(vae, params, jnp.asarray(x[i : i + batch]))) for i in range(0, len(x), batch)]
    return np.concatenate(parts).reshape(len(x), *grid)


@compiling.jit(static_argnums=0)
def _codes(vae: DiscreteModel, params: Params, x: jax.Array) -> jax.Array:
    """The codes (B, h * w) of images x (B, H, W, C): compiled once per model and batch size."""
    return vae.quantize(params, x).codes


def usage(codes: np.ndarray, k: int) -> dict[str, Any]:
    """How a set of codes uses a codebook of k.

    Args:
        codes: int code indices (N, ...) of N images, each in 0..k-1.
        k: the codebook's size.

    Returns:
        'codes' (k), 'used' and 'dead' (codes chosen at least once and never), 'perplexity' (exp of
        the entropy of the codes' frequencies: 1 to k, k when all are used evenly), 'images' (N),
        'positions' (codes per image) and 'top' ([code, times chosen] of the TOP most used).
    """
    counts = np.bincount(np.asarray(codes).ravel(), minlength=k)
    frequency = counts[counts > 0] / counts.sum()
    used = int((counts > 0).sum())
    order = np.argsort(-counts, kind="stable")[: min(TOP, used)]
    return {
        "codes": k,
        "used": used,
        "dead": k - used,
        "perplexity": float(np.exp(-np.sum(frequency * np.log(frequency)))),
        "images": len(codes),
        "positions": int(np.prod(np.shape(codes)[1:])),
        "top": [[int(c), int(counts[c])] for c in order],
    }


def summary(u: dict[str, Any]) -> str:
    """One line of a usage report.

    Args:
        u: what `usage` gives.

    Returns:
        The codes used of all, the images, the dead codes and the perplexity, in words.
    """
    return (
        f"{u['used']} of {u['codes']} codes used by {u['images']:,} images ({u['dead']} dead), "
        f"perplexity {u['perplexity']:.1f}"
    )
