"""The pictures people look at, built from a loaded Model. Each returns a uint8 (H, W, C) image
or a matplotlib Figure; all randomness comes from the `seed` argument."""

from __future__ import annotations

import os

import jax
import numpy as np
from PIL import Image

from vae_jax.api import Model
from vae_jax.errors import UserError
from vae_jax.outputs import HISTORY_DIR
from vae_jax.visualize import (
    grid, interpolation_latents, latent_scatter, manifold_latents, pairs_grid, project_2d, traversal_latents,
)


def _pick(seed: int, n_total: int, n: int) -> np.ndarray:
    """n distinct indices of 0..n_total-1, sorted, drawn from `seed`."""
    return np.sort(np.asarray(jax.random.choice(jax.random.key(seed), n_total, (min(n, n_total),), replace=False)))


def samples(model: Model, n: int = 64, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
    """Means of p(x|z) for z ~ N(0, temperature^2 I)."""
    return grid(np.asarray(model.sample(jax.random.key(seed), n, temperature)), int(np.ceil(np.sqrt(n))))


def reconstructions(model: Model, x: np.ndarray, n: int = 32, seed: int = 0) -> np.ndarray:
    """Rows of test images x: (N, H, W, C), each followed by a row of their reconstructions."""
    chosen = np.asarray(x[_pick(seed, len(x), n)])
    return pairs_grid(chosen, np.clip(np.asarray(model.reconstruct(chosen)), 0, 1), 8)


def interpolation_rows(model: Model, x: np.ndarray, rows: int = 8, steps: int = 10, seed: int = 0, slerp: bool = False) -> np.ndarray:
    """(rows * steps, H, W, C): each row decodes a walk between the posterior means of two test images."""
    idx = np.asarray(jax.random.permutation(jax.random.key(seed), len(x))[: 2 * rows]).reshape(rows, 2)
    means = np.asarray(model.encode(x[idx.ravel()])[0]).reshape(rows, 2, -1)
    z = np.concatenate([interpolation_latents(a, b, steps, slerp) for a, b in means])
    return np.clip(np.asarray(model.decode(z)), 0, 1)


def interpolations(model: Model, x: np.ndarray, rows: int = 8, steps: int = 10, seed: int = 0, slerp: bool = False) -> np.ndarray:
    return grid(interpolation_rows(model, x, rows, steps, seed, slerp), steps)


def most_active_dims(model: Model, x: np.ndarray, n: int = 2) -> tuple[int, ...]:
    """The n latent dimensions whose posterior means vary most over x."""
    variance = np.asarray(model.encode(x)[0]).var(0)
    return tuple(int(d) for d in np.argsort(-variance)[:n])


def traversal(
    model: Model, x: np.ndarray, seed: int = 0, dims: tuple[int, int] | None = None, n: int = 9, span: float = 3.0
) -> tuple[np.ndarray, tuple[int, int]]:
    """A grid decoding one encoded test image with latent dims (i, j) set to values in [-span, span]
    (rows: i, columns: j); the other dimensions keep the image's posterior mean."""
    latent_dim = model.config.latent_dim
    if latent_dim < 2:
        raise UserError("traverse needs a latent of at least 2 dimensions")
    dims = dims or most_active_dims(model, x)
    if len(set(dims)) != 2 or not all(0 <= d < latent_dim for d in dims):
        raise UserError(f"--dims needs two different dimensions in 0..{latent_dim - 1}, got {dims}")
    z = np.asarray(model.encode(x[_pick(seed, len(x), 1)])[0])[0]
    latents = traversal_latents(z, dims, np.linspace(-span, span, n).astype(np.float32))
    return grid(np.clip(np.asarray(model.decode(latents)), 0, 1), n), dims


def latents(model: Model, x: np.ndarray, labels: np.ndarray, projection: str = "pca", seed: int = 0):
    """Scatter of the posterior means of x coloured by label (PCA or t-SNE beyond 2 dimensions)."""
    means = np.concatenate([np.asarray(model.encode(x[i : i + 500])[0]) for i in range(0, len(x), 500)])
    points = project_2d(means, projection, seed)
    if means.shape[1] <= 2:
        names, how = ("z[0]", "z[1]"), "posterior means"
    else:
        names = ("PC 1", "PC 2") if projection == "pca" else ("t-SNE 1", "t-SNE 2")
        how = f"posterior means, {projection.upper() if projection == 'pca' else 't-SNE'} of {means.shape[1]} dims"
    return latent_scatter(points, labels, f"{model.config.dataset}: {how}", names)


def manifold(model: Model, n: int = 20) -> np.ndarray:
    """Decoded means over a grid of the prior's quantiles; only for a 2-D latent."""
    if model.config.latent_dim != 2:
        raise UserError(f"manifold needs a 2-D latent (train with --latent-dim 2); this model has {model.config.latent_dim}")
    return grid(np.clip(np.asarray(model.decode(manifold_latents(n))), 0, 1), n, pad=0)


def history(workdir: str) -> np.ndarray:
    """The test images followed through training (top row), then their reconstructions after each epoch."""
    folder = os.path.join(workdir, HISTORY_DIR)
    files = sorted(f for f in os.listdir(folder) if f.startswith("epoch_")) if os.path.isdir(folder) else []
    if not files:
        raise UserError(f"{workdir}: no per-epoch reconstructions in {HISTORY_DIR}/ (written by train.py)")
    rows = [np.asarray(Image.open(os.path.join(folder, f))) for f in ["originals.png", *files]]
    rows = [r[..., None] if r.ndim == 2 else r for r in rows]
    return np.concatenate(rows, axis=0)
