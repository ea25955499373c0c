"""Image grids as uint8 arrays and PNG files."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image


def grid(images: np.ndarray, ncols: int, pad: int = 2) -> np.ndarray:
    """Tile images (N, H, W, C) float in [0, 1] into one uint8 (rows*(H+pad)+pad, cols*(W+pad)+pad, C) image."""
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    n, h, w, c = images.shape
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    out = np.ones((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), np.float32)
    for i, img in enumerate(images):
        r, col = divmod(i, ncols)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + col * (w + pad) : pad + col * (w + pad) + w] = img
    return to_u8(out)


def to_u8(images: np.ndarray) -> np.ndarray:
    """Images in [0, 1] (values outside are clipped) -> uint8, any shape (..., H, W, C)."""
    return np.rint(np.clip(np.asarray(images, np.float32), 0.0, 1.0) * 255).astype(np.uint8)


def pairs_grid(originals: np.ndarray, reconstructions: np.ndarray, ncols: int) -> np.ndarray:
    """Rows of originals each followed by a row of their reconstructions; both (N, H, W, C) in [0, 1]."""
    n = len(originals)
    ncols = max(1, min(ncols, n))
    rows = []
    for start in range(0, n, ncols):
        rows += [originals[start : start + ncols], reconstructions[start : start + ncols]]
    padded = [np.concatenate([r, np.ones((ncols - len(r), *r.shape[1:]), r.dtype)]) for r in rows]
    return grid(np.concatenate(padded), ncols)


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 (H, W, C) image with C in {1, 3} as the bytes of a PNG file."""
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(path: str, image: np.ndarray) -> str:
    """Write a uint8 (H, W, C) image with C in {1, 3} as PNG; returns the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(png_bytes(image))
    return path


def interpolation_latents(z0: np.ndarray, z1: np.ndarray, steps: int, slerp: bool = False) -> np.ndarray:
    """`steps` points from z0 to z1 (both (L,)), endpoints included: (steps, L).

    Linear, or spherical (slerp: constant angular speed, norms interpolated linearly), which
    stays in the typical set of a high-dimensional Gaussian prior.
    """
    return interpolate_at(z0, z1, np.linspace(0.0, 1.0, steps), slerp)


def interpolate_at(z0: np.ndarray, z1: np.ndarray, t: np.ndarray, slerp: bool = False) -> np.ndarray:
    """The points at positions t: (T,) in [0, 1] on the way from z0 to z1 (both (L,)): (T, L), linear
    or spherical (see interpolation_latents)."""
    t = np.asarray(t, np.float64)[:, None]
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    if not slerp:
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    cos = np.clip(np.dot(z0, z1) / max(n0 * n1, 1e-12), -1.0, 1.0)
    omega = np.arccos(cos)
    if omega < 1e-6:  # (nearly) parallel: the great circle is the straight line
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    u0, u1 = z0 / n0, z1 / n1
    direction = (np.sin((1 - t) * omega) * u0 + np.sin(t * omega) * u1) / np.sin(omega)
    out = direction * ((1 - t) * n0 + t * n1)
    out[t[:, 0] == 0], out[t[:, 0] == 1] = z0, z1  # exact endpoints
    return out.astype(np.float32)


def traversal_latents(z: np.ndarray, dims: tuple[int, int], values: np.ndarray) -> np.ndarray:
    """A grid around z: (L,) that sets z[dims[0]] = values[r] and z[dims[1]] = values[c], the other
    dimensions fixed: (len(values)**2, L), row-major over (r, c)."""
    n = len(values)
    out = np.repeat(np.asarray(z, np.float32)[None], n * n, axis=0)
    out[:, dims[0]] = np.repeat(values, n)
    out[:, dims[1]] = np.tile(values, n)
    return out


def manifold_latents(n: int) -> np.ndarray:
    """A 2-D latent grid at the prior's quantiles 0.05 .. 0.95 (Kingma & Welling, Fig. 4): (n*n, 2)."""
    from scipy.stats import norm

    q = norm.ppf(np.linspace(0.05, 0.95, n)).astype(np.float32)
    return np.stack([np.repeat(q[::-1], n), np.tile(q, n)], axis=1)  # rows: z1 from high to low


def project_2d(points: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(N, L) -> (N, 2): the points themselves for L = 2, else PCA (or t-SNE with method='tsne')."""
    points = np.asarray(points, np.float64)
    if points.shape[1] <= 2:
        return np.pad(points, [(0, 0), (0, 2 - points.shape[1])])
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(2, init="pca", random_state=seed, perplexity=min(30.0, (len(points) - 1) / 3)).fit_transform(points)
    mean, basis = pca_basis(points)
    return (points - mean) @ basis.T


def pca_basis(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean (L,) of points (N, L) and their first two principal directions (2, L), orthonormal:
    a point's map position is (z - mean) @ basis.T, and a map position m decodes at mean + m @ basis."""
    points = np.asarray(points, np.float64)
    mean = points.mean(0)
    _, _, vt = np.linalg.svd(points - mean, full_matrices=False)
    return mean, vt[:2]


def latent_scatter(points: np.ndarray, labels: np.ndarray, title: str, axis_names: tuple[str, str]):
    """A matplotlib Figure: one scatter (one colour) per label, with a legend."""
    import matplotlib
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 6), dpi=100)
    ax = fig.subplots()
    classes = np.unique(labels)
    cmap = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
    for i, c in enumerate(classes):
        sel = labels == c
        ax.scatter(points[sel, 0], points[sel, 1], s=6, alpha=0.7, color=cmap(i % cmap.N), label=str(c))
    ax.legend(title="label", markerscale=2.5, loc="best", fontsize=8)
    ax.set_title(title)
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    fig.tight_layout()
    return fig


def save_figure(path: str, fig) -> str:
    """Write a matplotlib Figure as PNG (reproducible bytes: no timestamp metadata); returns the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})
    return path


def training_curves(records: list[dict]):
    """A matplotlib Figure of the per-epoch ELBO, reconstruction and KL (train and test)."""
    import matplotlib.ticker
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in records]
    fig = Figure(figsize=(13, 3.8), dpi=100)
    axes = fig.subplots(1, 3)
    for ax, name, title in zip(
        axes, ("elbo", "recon", "kl"), ("ELBO (nats)", "reconstruction log p(x|z) (nats)", "KL (nats)")
    ):
        for split, style in (("train", "-"), ("test", "--")):
            key = f"{split}_{name}"
            if all(key in r for r in records):
                ax.plot(epochs, [r[key] for r in records], style, marker=".", label=split)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig
