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

`--dataset dsprites` trains on the grid less a held-out test split of TEST_SIZE images drawn once
(the same for every run and seed); the training images are a `Grid`, rendered when read, so that
memory stays flat however long the run. The published file (Matthey et al.'s
dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz), given as --data-dir, is read instead: its images
need not be these pixels (another program drew them), its factors are the same grid.
"""

from __future__ import annotations

import functools
import hashlib
import os
import zipfile

import numpy as np

from vae_jax.disentanglement import Factors
from vae_jax.errors import UserError

FACTORS = ("shape", "scale", "orientation", "position_x", "position_y")
SIZES = (3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = 2 * np.pi * np.arange(40) / 40
IMAGE, OFFSET, SPRITE = 64, 16, 33  # the image's side, the first centre's pixel, a sprite's side (centre 16)
SQUARE, ELLIPSE, HEART = 9.05, (14.05, 7.05), 10.05  # px at scale 1
HEART_MIDDLE = 0.118  # the heart curve spans y in [-1, 1.236] (x in [-1.139, 1.139]): its box's middle
TOTAL = int(np.prod(SIZES))
TEST_SIZE, TEST_SEED = 10_000, 0  # the held-out split: drawn once, uniformly, without replacement
PUBLISHED = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"


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
    """Every shape at every scale and orientation, centred on pixel (16, 16).

    Returns:
        (3, 6, 40, 33, 33) uint8 0/1.
    """
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
    """The images of factors, rendered.

    Args:
        factors: integer factor indices (N, 5): shape, scale, orientation, position_x, position_y.

    Returns:
        (N, 64, 64) uint8 0/1.
    """
    factors = np.asarray(factors, np.int64).reshape(-1, len(SIZES))
    if factors.size and ((factors < 0).any() or (factors >= np.asarray(SIZES)).any()):
        raise ValueError(f"dSprites factor indices must be in 0..{tuple(n - 1 for n in SIZES)}")
    table, out = sprites(), np.zeros((len(factors), IMAGE, IMAGE), np.uint8)
    corner = OFFSET - SPRITE // 2  # of a sprite at position 0 (0: a sprite at position 31 ends on the last pixel)
    for i, (s, k, o, x, y) in enumerate(factors):
        out[i, corner + y : corner + y + SPRITE, corner + x : corner + x + SPRITE] = table[s, k, o]
    return out


def stored(factors: np.ndarray) -> np.ndarray:
    """The images of factors as the data layer stores binary pixels.

    Args:
        factors: integer factor indices (N, 5): shape, scale, orientation, position_x, position_y.

    Returns:
        (N, 64, 64, 1) uint8, 0 or 255.
    """
    return render(factors)[..., None] * np.uint8(255)


def factors_of(index: np.ndarray) -> np.ndarray:
    """The factor indices of grid indices (shape slowest, position_y fastest).

    Args:
        index: grid indices (N,).

    Returns:
        (N, 5).
    """
    return np.stack(np.unravel_index(np.asarray(index, np.int64), SIZES), axis=1)


def index_of(factors: np.ndarray) -> np.ndarray:
    """The grid indices of factor indices.

    Args:
        factors: integer factor indices (N, 5): shape, scale, orientation, position_x, position_y.

    Returns:
        (N,).
    """
    return np.ravel_multi_index(tuple(np.asarray(factors, np.int64).T), SIZES)


def digest() -> str:
    """The sprite table's digest: equal exactly when every image of the grid is.

    Returns:
        The sha256, hex.
    """
    return hashlib.sha256(np.ascontiguousarray(sprites()).tobytes()).hexdigest()


class DSprites(Factors):
    """The grid as a ground truth for vae_jax.disentanglement: observations are uint8 0/255 images
    (N, 64, 64, 1), as the data layer stores binary pixels; generated, or with `data_dir` the
    published file's images (those a model trained with that --data-dir saw).

    Args:
        data_dir: where the published .npz is (a folder holding it, or its path); "": generated.
    """

    factor_sizes = SIZES
    factor_names = FACTORS

    def __init__(self, data_dir: str = ""):
        self.images = published(data_dir) if data_dir else None

    def observations(self, factors: np.ndarray) -> np.ndarray:
        """The observations of factors.

        Args:
            factors: integer factor indices (N, 5): shape, scale, orientation, position_x, position_y.

        Returns:
            Images (N, 64, 64, 1) uint8, 0 or 255.
        """
        if self.images is not None:
            return self.images[index_of(factors)]
        return stored(factors)


class Grid:
    """Images of the grid at `indices` (N,), each rendered when read: a read-only sequence of uint8
    (64, 64, 1) 0/255 images, whose `shape`, `dtype` and `nbytes` describe it as an array would; a
    slice or an index array gives the Grid of those images. `factors`: (N, 5), beside each image.

    Args:
        indices: grid indices (N,) of its images.
    """

    dtype = np.dtype(np.uint8)
    ndim = 4
    rendered = True  # made when read: cut, not copied, by a smoke run

    def __init__(self, indices: np.ndarray):
        self.indices = np.asarray(indices, np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        if isinstance(i, (slice, np.ndarray, list)):
            return Grid(self.indices[i])
        i = int(i)
        return stored(factors_of(self.indices[i : i + 1 or None]))[0]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self), IMAGE, IMAGE, 1)

    @property
    def nbytes(self) -> int:
        return len(self) * IMAGE * IMAGE

    @property
    def factors(self) -> np.ndarray:
        return factors_of(self.indices)

    def array(self) -> np.ndarray:
        """All its images at once.

        Returns:
            (N, 64, 64, 1) uint8 0/255.
        """
        return stored(self.factors)

    def identity(self) -> bytes:
        """What its images are a function of.

        Returns:
            The sprites' digest and the indices, as bytes.
        """
        return digest().encode() + np.ascontiguousarray(self.indices).tobytes()


def split() -> tuple[np.ndarray, np.ndarray]:
    """The grid's split: TEST_SIZE images drawn once, the rest in grid order.

    Returns:
        (train indices, test indices).
    """
    test = np.sort(np.random.default_rng(TEST_SEED).choice(TOTAL, TEST_SIZE, replace=False))
    return np.setdiff1d(np.arange(TOTAL), test), test


def load(data_dir: str = "") -> tuple[str, dict]:
    """The splits of `--dataset dsprites`: the generated grid (training images a Grid, test images in
    memory), or the published .npz. Labels are 0: the factors are not classes.

    Args:
        data_dir: a folder holding the published .npz, or its path; "": the generated grid.

    Returns:
        (source, {'train_images', 'train_labels', 'test_images', 'test_labels'}).
    """
    train, test = split()
    labels = {"train_labels": np.zeros(len(train), np.int32), "test_labels": np.zeros(len(test), np.int32)}
    if not data_dir:
        grid = {"train_images": Grid(train), "test_images": Grid(test).array()}
        return f"generated (sprites sha256 {digest()[:12]}, test split of {TEST_SIZE})", grid | labels
    images = published(data_dir)
    return f"published file in {data_dir} (test split of {TEST_SIZE})", labels | {
        "train_images": images[train],
        "test_images": images[test],
    }


def published(data_dir: str) -> np.ndarray:
    """The images of the published .npz, checked to hold the grid in its order (no digest of the file is
    published: its arrays are checked instead).

    Args:
        data_dir: a folder holding the published ``dsprites_ndarray_...npz``, or its path.

    Returns:
        (737,280, 64, 64, 1) uint8 0/255.
    """
    path = data_dir if data_dir.endswith(".npz") else os.path.join(data_dir, PUBLISHED)
    if not os.path.isfile(path) or not zipfile.is_zipfile(path):
        raise UserError(f"--data-dir {data_dir}: no {PUBLISHED} there (dSprites is generated without --data-dir)")
    try:
        with np.load(path, allow_pickle=False) as f:
            imgs, classes = f["imgs"], f["latents_classes"]
    except (KeyError, ValueError, OSError) as e:
        raise UserError(f"{path}: not the published dSprites file (no imgs and latents_classes: {e})") from None
    grid = np.concatenate([np.zeros((TOTAL, 1), np.int64), factors_of(np.arange(TOTAL))], axis=1)
    if imgs.shape != (TOTAL, IMAGE, IMAGE) or classes.shape != grid.shape or not np.array_equal(classes, grid):
        raise UserError(f"{path}: not the published dSprites file (its images or factors are not the grid in order)")
    if imgs.max() > 1:
        raise UserError(f"{path}: not the published dSprites file (its pixels are not 0 or 1)")
    imgs = imgs.astype(np.uint8, copy=False)
    imgs *= np.uint8(255)  # in place: the file's 3 GB are not copied
    return imgs[..., None]
