"""The pictures people look at, built from a loaded Model. Each returns a uint8 (H, W, C) image
or a matplotlib Figure; all randomness comes from the `seed` argument. For a conditional model
the test `labels` are passed to the networks with their images."""

from __future__ import annotations

import os

import jax
import numpy as np
from PIL import Image

from vae_jax.api import Model
from vae_jax.errors import UserError
from vae_jax.outputs import HISTORY_DIR
from vae_jax.visualize import (
    grid,
    interpolation_latents,
    latent_scatter,
    manifold_latents,
    pairs_grid,
    project_2d,
    traversal_latents,
)


def _pick(seed: int, n_total: int, n: int) -> np.ndarray:
    """n distinct indices of 0..n_total-1, sorted, drawn from `seed`."""
    return np.sort(np.asarray(jax.random.choice(jax.random.key(seed), n_total, (min(n, n_total),), replace=False)))


def _cond(model: Model, labels: np.ndarray | None, idx) -> np.ndarray | None:
    """The labels of the chosen examples, for a conditional model; None otherwise."""
    return None if not model.vae.n_conditions or labels is None else np.asarray(labels)[idx]


def samples(
    model: Model, n: int = 64, seed: int = 0, temperature: float | tuple[float, ...] = 1.0, label: int | None = None
) -> np.ndarray:
    """Means of p(x|z[, y]) for z from the prior at `temperature` (see Model.sample). A conditional
    model draws class `label`, or, without one, a row of 8 for each class."""
    classes = model.vae.n_conditions
    if classes and label is None:
        labels = np.repeat(np.arange(classes), 8)
        return grid(np.asarray(model.sample(jax.random.key(seed), len(labels), temperature, labels)), 8)
    return grid(np.asarray(model.sample(jax.random.key(seed), n, temperature, label)), int(np.ceil(np.sqrt(n))))


def own_background(model: Model) -> float:
    """The background of a model's own images, in [0, 1]: the outer ring of 16 of its prior samples."""
    from vae_jax.data import model_inputs

    labels = [0] * 16 if model.vae.n_conditions else None
    drawn = np.rint(np.asarray(model.sample(jax.random.key(0), 16, labels=labels)) * 255).astype(np.uint8)
    return float(model_inputs.backgrounds(drawn).mean())


def beside_prior(model: Model, sampler, n: int = 64, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
    """Two grids side by side: n samples from the prior (left) and n from a fitted sampler
    (fitted.Fitted, right), the same key for both."""
    cols = int(np.ceil(np.sqrt(n)))
    left = grid(np.asarray(model.sample(jax.random.key(seed), n, temperature)), cols)
    right = grid(np.asarray(sampler.sample(model, jax.random.key(seed), n, temperature)), cols)
    gap = np.full((left.shape[0], 8, left.shape[2]), 255, left.dtype)
    return np.concatenate([left, gap, right], axis=1)


def reconstructions(
    model: Model, x: np.ndarray, n: int = 32, seed: int = 0, labels: np.ndarray | None = None
) -> np.ndarray:
    """Rows of test images x: (N, H, W, C), each followed by a row of their reconstructions."""
    idx = _pick(seed, len(x), n)
    chosen = np.asarray(x[idx])
    return pairs_grid(chosen, np.clip(np.asarray(model.reconstruct(chosen, _cond(model, labels, idx))), 0, 1), 8)


def _pairs(seed: int, n_total: int, rows: int, labels: np.ndarray | None) -> np.ndarray:
    """(rows, 2) indices of test images to interpolate between; of the same class when `labels` is given."""
    order = np.asarray(jax.random.permutation(jax.random.key(seed), n_total))
    if labels is None:
        return order[: 2 * rows].reshape(rows, 2)
    pairs = []
    for i in order:
        partner = next((j for j in order if j != i and labels[j] == labels[i] and j not in np.ravel(pairs)), None)
        if i not in np.ravel(pairs) and partner is not None:
            pairs.append((i, partner))
        if len(pairs) == rows:
            break
    return np.array(pairs)


def interpolation_rows(
    model: Model,
    x: np.ndarray,
    rows: int = 8,
    steps: int = 10,
    seed: int = 0,
    slerp: bool = False,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """(rows * steps, H, W, C): each row decodes a walk between the posterior means of two test
    images (for a conditional model two of the same class, decoded with that label); of a
    hierarchy, a walk of the top group (Model.decode_top)."""
    cond_labels = _cond(model, labels, slice(None))
    idx = _pairs(seed, len(x), rows, cond_labels)
    means = _top(model, model.encode(x[idx.ravel()], _cond(model, labels, idx.ravel()))[0]).reshape(len(idx), 2, -1)
    z = np.concatenate([interpolation_latents(a, b, steps, slerp) for a, b in means])
    row_labels = None if cond_labels is None else np.repeat(cond_labels[idx[:, 0]], steps)
    return np.clip(np.asarray(model.decode_top(z, row_labels)), 0, 1)


def _top(model: Model, z: np.ndarray) -> np.ndarray:
    """The top latent group of latents z: (B, latent_dim) -> (B, groups[0]) (all of a one-latent model's)."""
    return np.asarray(z)[:, : model.vae.groups[0]]


def interpolations(model: Model, x: np.ndarray, rows: int = 8, steps: int = 10, **options) -> np.ndarray:
    """interpolation_rows (same options: seed, slerp, labels) as one grid, a walk per row."""
    return grid(interpolation_rows(model, x, rows, steps, **options), steps)


def encode_all(model: Model, x: np.ndarray, labels: np.ndarray | None = None, batch: int = 500) -> np.ndarray:
    """Posterior means of all of x, `batch` at a time: (N, latent_dim)."""
    parts = [
        model.encode(x[i : i + batch], _cond(model, labels, slice(i, i + batch)))[0] for i in range(0, len(x), batch)
    ]
    return np.concatenate([np.asarray(p) for p in parts])


def most_active_dims(model: Model, x: np.ndarray, labels: np.ndarray | None = None, n: int = 2) -> tuple[int, ...]:
    """The n latent dimensions (of a hierarchy: of its top group) whose posterior means vary most over x."""
    variance = _top(model, encode_all(model, x, labels)).var(0)
    return tuple(int(d) for d in np.argsort(-variance)[:n])


def traversal(
    model: Model,
    x: np.ndarray,
    seed: int = 0,
    dims: tuple[int, int] | None = None,
    n: int = 9,
    span: float = 3.0,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[int, int]]:
    """A grid decoding one encoded test image with latent dims (i, j) set to values in [-span, span]
    prior standard deviations from the prior's mean (rows: i, columns: j); the other dimensions keep
    the image's posterior mean. A hierarchy traverses its top group (the groups below at their prior
    means, Model.decode_top)."""
    latent_dim = model.vae.groups[0]
    if latent_dim < 2:
        raise UserError("traverse needs a latent of at least 2 dimensions")
    dims = dims or most_active_dims(model, x, labels)
    if len(set(dims)) != 2 or not all(0 <= d < latent_dim for d in dims):
        raise UserError(f"--dims needs two different dimensions in 0..{latent_dim - 1}, got {dims}")
    idx = _pick(seed, len(x), 1)
    label = _cond(model, labels, idx)
    u = np.asarray(model.to_standard(_top(model, model.encode(x[idx], label)[0]), label))[0]
    latents = traversal_latents(u, dims, np.linspace(-span, span, n).astype(np.float32))
    grid_labels = None if label is None else np.repeat(label, len(latents))
    z = model.from_standard(latents, grid_labels)
    return grid(np.clip(np.asarray(model.decode_top(z, grid_labels)), 0, 1), n), dims


def latents(model: Model, x: np.ndarray, labels: np.ndarray, projection: str = "pca", seed: int = 0):
    """Scatter of the posterior means of x coloured by label (PCA or t-SNE beyond 2 dimensions)."""
    means = encode_all(model, x, labels)
    points = project_2d(means, projection, seed)
    if means.shape[1] <= 2:
        names, how = ("z[0]", "z[1]"), "posterior means"
    else:
        names = ("PC 1", "PC 2") if projection == "pca" else ("t-SNE 1", "t-SNE 2")
        how = f"posterior means, {projection.upper() if projection == 'pca' else 't-SNE'} of {means.shape[1]} dims"
    return latent_scatter(points, labels, f"{model.config.dataset}: {how}", names)


def manifold(model: Model, n: int = 20, label: int | None = None) -> np.ndarray:
    """Decoded means over a grid of the prior's quantiles; only for a 2-D latent (a conditional
    model draws class `label`, default 0)."""
    top = model.vae.groups[0]
    if top != 2:
        what = "a 2-D latent (train with --latent-dim 2)" if len(model.vae.groups) == 1 else "a 2-D top latent group"
        raise UserError(f"manifold needs {what}; this model's has {top} dimensions")
    labels = np.full(n * n, label or 0) if model.vae.n_conditions else None
    z = model.from_standard(manifold_latents(n), labels)
    return grid(np.clip(np.asarray(model.decode_top(z, labels)), 0, 1), n, pad=0)


def history(workdir: str) -> np.ndarray:
    """The test images followed through training (top row), then their reconstructions after each epoch."""
    folder = os.path.join(workdir, HISTORY_DIR)
    files = sorted(f for f in os.listdir(folder) if f.startswith("epoch_")) if os.path.isdir(folder) else []
    if not files:
        raise UserError(f"{workdir}: no per-epoch reconstructions in {HISTORY_DIR}/ (written by train.py)")
    rows = [np.asarray(Image.open(os.path.join(folder, f))) for f in ["originals.png", *files]]
    rows = [r[..., None] if r.ndim == 2 else r for r in rows]
    return np.concatenate(rows, axis=0)
