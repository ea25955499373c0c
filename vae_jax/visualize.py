"""Image grids as uint8 arrays and PNG files."""

from __future__ import annotations

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
    return np.rint(out * 255).astype(np.uint8)


def pairs_grid(originals: np.ndarray, reconstructions: np.ndarray, ncols: int) -> np.ndarray:
    """Rows of originals each followed by a row of their reconstructions; both (N, H, W, C) in [0, 1]."""
    n = len(originals)
    ncols = max(1, min(ncols, n))
    rows = []
    for start in range(0, n, ncols):
        rows += [originals[start : start + ncols], reconstructions[start : start + ncols]]
    padded = [np.concatenate([r, np.ones((ncols - len(r), *r.shape[1:]), r.dtype)]) for r in rows]
    return grid(np.concatenate(padded), ncols)


def save_png(path: str, image: np.ndarray) -> str:
    """Write a uint8 (H, W, C) image with C in {1, 3} as PNG; returns the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)
    return path
