"""dSprites (Matthey et al. 2017), generated here: 64 x 64 binary images of one white shape on black,
made from five independent factors, every combination once (3 x 6 x 40 x 32 x 32 = 737,280 images)::

    shape        square, ellipse, heart
    scale        6 values, 0.5 .. 1 evenly
    orientation  40 values, 2 pi k / 40 for k = 0 .. 39 (over [0, 2 pi): the published files repeat
                 0 as 2 pi)
    position_x   32 values: the shape's centre at the centre of pixel column 16 + x
    position_y   32 values: likewise for rows 16 + y (rows grow downwards)

A shape is the set of pixels whose centres fall inside it: a square of half-side 9.05 px, an ellipse
of semi-axes 14.05 and 7.05 px (its long axis horizontal at orientation 0) and the heart
(x^2 + y^2 - 1)^3 <= x^2 y^3 (upright at orientation 0, its bounding box centred, 10.05 px a unit),
each times the scale, turned anticlockwise by the orientation. The sizes keep pixel centres off
the outlines, and the rotation's cosines and sines are rounded to 12 decimals, so the images are
the same on every machine. Positions move a shape by whole pixels, so each image is one of the 720
sprites (shape x scale x orientation) drawn once and placed: rendering costs nothing to speak of and
nothing needs caching.

Factors are integer indices (N, 5) into the values above, in the order of FACTORS; an image's index
in the grid orders them as the published files do (shape slowest, position_y fastest).
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from vae_jax.disentanglement import Factors

FACTORS = ("shape", "scale", "orientation", "position_x", "position_y")
SIZES = (3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = 2 * np.pi * np.arange(40) / 40
IMAGE, OFFSET, SPRITE = 64, 16, 33  # the image's side, the first centre's pixel, a sprite's side (centre 16)
SQUARE, ELLIPSE, HEART = 9.05, (14.05, 7.05), 10.05  # px at scale 1
HEART_MIDDLE = 0.118  # the heart curve spans y in [-1, 1.236] (x in [-1.139, 1.139]): its box's middle
TOTAL = int(np.prod(SIZES))


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether points (u, v) in px (u right, v up, the shape's own axes at scale 1 units) are inside shape."""
    if shape == 0:
        return np.maximum(np.abs(u), np.abs(v)) <= SQUARE
    if shape == 1:
        a, b = u / ELLIPSE[0], v / ELLIPSE[1]
        return a * a + b * b <= 1.0
    x, y = u / HEART, v / HEART + HEART_MIDDLE
    r = x * x + y * y - 1.0  # products only, no pow(): exactly rounded on every machine
    return r * r * r <= x * x * y * y * y


@functools.lru_cache(maxsize=1)
def sprites() -> np.ndarray:
    """(3, 6, 40, 33, 33) uint8 0/1: every shape at every scale and orientation, centred on pixel (16, 16)."""
    offsets = np.arange(SPRITE, dtype=np.float64) - SPRITE // 2
    cols, rows = np.meshgrid(offsets, offsets)  # (33, 33): x right, y down
    out = np.zeros((*SIZES[:3], SPRITE, SPRITE), np.uint8)
    cos = np.round(np.cos(ORIENTATIONS), 12) + 0.0  # + 0.0: no negative zeros
    sin = np.round(np.sin(ORIENTATIONS), 12) + 0.0
    for s in range(3):
        for k, scale in enumerate(SCALES):
            for o in range(len(ORIENTATIONS)):
                # the point's coordinates in the shape's frame: turned back by the orientation, y up
                u = (cos[o] * cols - sin[o] * rows) / scale
                v = (-sin[o] * cols - cos[o] * rows) / scale
                out[s, k, o] = _inside(s, u, v)
    return out


def render(factors: np.ndarray) -> np.ndarray:
    """Images (N, 64, 64) uint8 0/1 of factors (N, 5) integer indices."""
    factors = np.asarray(factors, np.int64).reshape(-1, len(SIZES))
    if factors.size and ((factors < 0).any() or (factors >= np.asarray(SIZES)).any()):
        raise ValueError(f"dSprites factor indices must be in 0..{tuple(n - 1 for n in SIZES)}")
    table, out = sprites(), np.zeros((len(factors), IMAGE, IMAGE), np.uint8)
    corner = OFFSET - SPRITE // 2  # of a sprite at position 0 (0: a sprite at position 31 ends on the last pixel)
    for i, (s, k, o, x, y) in enumerate(factors):
        out[i, corner + y : corner + y + SPRITE, corner + x : corner + x + SPRITE] = table[s, k, o]
    return out


def factors_of(index: np.ndarray) -> np.ndarray:
    """The factor indices (N, 5) of grid indices (N,) (shape slowest, position_y fastest)."""
    return np.stack(np.unravel_index(np.asarray(index, np.int64), SIZES), axis=1)


def index_of(factors: np.ndarray) -> np.ndarray:
    """The grid indices (N,) of factor indices (N, 5)."""
    return np.ravel_multi_index(tuple(np.asarray(factors, np.int64).T), SIZES)


def digest() -> str:
    """The sha256 of the sprite table: equal exactly when every image of the grid is."""
    return hashlib.sha256(np.ascontiguousarray(sprites()).tobytes()).hexdigest()


class DSprites(Factors):
    """The generated grid as a ground truth for vae_jax.disentanglement: observations are uint8 0/255
    images (N, 64, 64, 1), as the data layer stores binary pixels."""

    factor_sizes = SIZES
    factor_names = FACTORS

    def observations(self, factors: np.ndarray) -> np.ndarray:
        """Images (N, 64, 64, 1) uint8, 0 or 255, of factors (N, 5) integer indices."""
        return render(factors)[..., None] * np.uint8(255)
