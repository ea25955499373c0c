"""A folder of the user's own images (PNG and JPEG, any size and mode) -> uint8 arrays.

Layout: `train/` and `test/` subfolders are used as given; otherwise every image is found
recursively and a fixed fraction (HELD_OUT, at most MAX_HELD_OUT images) is held out for testing,
chosen by the seed. The first folder level below the split's root names the classes (labels 0, 1,
... in sorted order); images directly in the root form one class of their own. Grey images stay one
channel when every image is grey; otherwise all become RGB. Palette images are expanded, and
transparency is composited onto white. Images of different sizes are centre-cropped to squares and
resized (area filter).
"""

from __future__ import annotations

import collections
import logging
import math
import os
import warnings
from dataclasses import dataclass

import numpy as np

from vae_jax.errors import UserError


class DataChanged(UserError):
    """A file of a training set left on disk was deleted or changed while a run was reading it."""


log = logging.getLogger("vae_jax")

SUFFIXES = (".png", ".jpg", ".jpeg")
HELD_OUT = 0.1  # the fraction of a folder without train/ and test/ that is held out for testing ...
MAX_HELD_OUT = 1000  # ... up to this many: enough for a test NLL, and memory that stays flat when streaming


def centre_crop_resize(image: np.ndarray, crop: int, size: int) -> np.ndarray:
    """The central crop x crop square of an (H, W, C) uint8 image, resized to size x size (area filter)."""
    h, w = image.shape[:2]
    top, left = (h - crop) // 2, (w - crop) // 2
    square = image[max(top, 0) : max(top, 0) + crop, max(left, 0) : max(left, 0) + crop]
    return box_resize(square, size, size)


def box_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """An (H, W, C) uint8 image resized to (height, width, C) with PIL's area (box) filter."""
    from PIL import Image

    resized = Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).resize((width, height), Image.BOX)
    return _with_channel_axis(np.asarray(resized))


def _with_channel_axis(image: np.ndarray) -> np.ndarray:
    """An (H, W) grey array as (H, W, 1); any other array as it is."""
    return image[..., None] if image.ndim == 2 else image


def list_images(root: str) -> list[str]:
    """Image files (regular files named .png, .jpg, .jpeg) below `root`, recursively, in sorted
    order (paths relative to `root`). Any other file that is not hidden is named in one warning:
    another format, or not a regular file (a FIFO would hang the reader)."""
    found, ignored = [], []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            if name.lower().endswith(SUFFIXES) and os.path.isfile(path):
                found.append(os.path.relpath(path, root))
            elif not name.startswith("."):
                kind = "" if os.path.isfile(path) else " (not a regular file)"
                ignored.append(os.path.relpath(path, root) + kind)
    if ignored:
        log.warning(
            "data: ignored %d file(s) of %s that are not PNG or JPEG image files: %s%s",
            *(len(ignored), root, ", ".join(ignored[:3]), ", ..." if len(ignored) > 3 else ""),
        )
    return found


class TooLarge(UserError):
    """An image whose header declares more pixels than the reader accepts (a decompression bomb)."""


def open_image(source, max_pixels: int | None = None):
    """The first frame of an image file (a path or a binary file object) as a PIL image in mode 'L'
    (grey) or 'RGB'; palettes are expanded, transparency composited onto white, 16-bit grey scaled to
    8 bits. With `max_pixels`, an image that declares more is refused (TooLarge) before it is decoded."""

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL warns about odd palettes and EXIF data
        image = Image.open(source)
        if max_pixels is not None and image.width * image.height > max_pixels:
            raise TooLarge(f"{image.width}x{image.height} pixels: at most {max_pixels:,} are read")
        image.load()
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "PA", "RGBA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image).astype(np.float64)
        return Image.fromarray(np.clip(values / 257 if values.max() > 255 else values, 0, 255).astype(np.uint8))
    image = image.convert("L" if image.mode in ("1", "L") else "RGB")
    if image.mode == "RGB" and _grey(image):
        image = image.convert("L")
    return image


def pixels_of(source, max_pixels: int | None = None) -> np.ndarray:
    """An image file (a path or a binary file object) as a uint8 (H, W, 1|3) array (see `open_image`)."""
    return _with_channel_axis(np.asarray(open_image(source, max_pixels)))


def _grey(image) -> bool:
    """Whether an RGB image has no colour (its three channels are equal)."""
    a = np.asarray(image)
    return bool(np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2]))


def read(root: str, paths: list[str], keep_pixels: bool = True) -> tuple[list, list[str], list[str]]:
    """The images at `paths` (relative to `root`) as uint8 (H, W, 1|3) arrays (or, without
    `keep_pixels`, only their shapes: every file is still decoded once), the paths read, and the
    paths that could not be read."""
    images, kept, skipped = [], [], []
    for path in paths:
        try:
            image = pixels_of(os.path.join(root, path))
        except Exception:  # PIL raises many kinds for files that are not images
            skipped.append(path)
            continue
        if image.ndim != 3 or min(image.shape[:2]) == 0:
            skipped.append(path)
            continue
        images.append(image if keep_pixels else image.shape)
        kept.append(path)
    return images, kept, skipped


def warn_skipped(skipped: list[str], where: str) -> None:
    """One warning for the files below `where` that are not readable images: the count and the first three."""
    if skipped:
        more = ", ..." if len(skipped) > 3 else ""
        log.warning(
            "data: skipped %d file(s) of %s that are not readable images: %s%s",
            len(skipped),
            where,
            ", ".join(skipped[:3]),
            more,
        )


def target(shapes: list[tuple[int, int, int]], size: int, where: str) -> tuple[int, int]:
    """(size, channels) every image of a folder is brought to, from their (H, W, C) shapes: RGB if
    any image has colour; `size` > 0 centre-crops and resizes every image to size x size, 0 keeps
    the images' own size when they all agree (returned as 0), else uses the most common shorter
    side, saying so."""
    channels = 3 if any(s[-1] == 3 for s in shapes) else 1
    sizes = collections.Counter(s[:2] for s in shapes)
    if size or len(sizes) == 1:
        return size, channels
    size = collections.Counter(min(s) for s in sizes.elements()).most_common(1)[0][0]
    (h0, w0), (h1, w1) = min(sizes), max(sizes)
    log.warning(
        "data: %s holds images of %d sizes (%dx%d to %dx%d): each is centre-cropped to a square "
        "and resized to %dx%d (--image-size N chooses)",
        *(where, len(sizes), h0, w0, h1, w1, size, size),
    )
    return size, channels


def convert(image: np.ndarray, size: int, channels: int) -> np.ndarray:
    """An (H, W, 1|3) uint8 image with `channels` channels (grey repeated to RGB) and, for `size` > 0,
    centre-cropped to a square and resized to size x size."""
    image = np.repeat(image, 3, axis=-1) if image.shape[-1] < channels else image
    return centre_crop_resize(image, min(image.shape[:2]), size) if size else image


def to_array(images: list[np.ndarray], size: int, where: str) -> np.ndarray:
    """One uint8 (N, S, S, C) or (N, H, W, C) array of images brought alike (see `target`)."""
    size, channels = target([im.shape for im in images], size, where)
    return np.stack([convert(im, size, channels) for im in images])


@dataclass(frozen=True)
class Files:
    """A split of an image folder left on disk: a read-only sequence of uint8 (H, W, C) images, each
    decoded when asked for and brought to the folder's shape as `load_folder` does in memory.
    `shape`, `dtype` and `nbytes` describe the whole split as an array would."""

    root: str
    paths: tuple[str, ...]
    shape: tuple[int, int, int, int]  # (N, H, W, C)
    size: int  # the centre-crop-and-resize target, 0: the images are already (H, W)
    stamps: tuple[tuple[int, int], ...] = ()  # (size, mtime_ns) of each file when it was listed
    dtype = np.dtype(np.uint8)
    ndim = 4

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        """Image i; a file deleted or changed since it was listed stops the run (DataChanged)
        rather than train on other data than the run's digest describes."""
        path = os.path.join(self.root, self.paths[int(i)])
        try:
            stat = os.stat(path)
        except OSError as e:
            raise DataChanged(f"{path}: {e.strerror.lower()} (it was there when the run started)") from None
        if self.stamps and (stat.st_size, stat.st_mtime_ns) != self.stamps[int(i)]:
            raise DataChanged(f"{path}: changed since the run started (its size or modification time)")
        return convert(pixels_of(path), self.size, self.shape[-1])

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape)


def estimated_bytes(root: str, paths: list[str], size: int = 0) -> int:
    """About how many bytes the images at `paths` (relative to `root`) take decoded: their number
    times the size of the first one (read from its header only), or of a size x size RGB image."""
    if not paths:
        return 0
    from PIL import Image

    try:
        with Image.open(os.path.join(root, paths[0])) as first:
            width, height, grey = first.width, first.height, first.mode in ("1", "L", "I", "I;16", "F")
    except Exception:  # an unreadable first file: load_folder reports the folder's files
        return 0
    return len(paths) * (size * size * 3 if size else width * height * (1 if grey else 3))


def _layout(root: str, seed: int) -> tuple[dict[str, list[str]], dict[str, str], str]:
    """The image paths of each split, the folder each is relative to, and how the split was made."""
    if os.path.isfile(root):
        raise UserError(f"--dataset {root}: is a file, not a folder of images (or an .npz)")
    if not os.path.isdir(root):
        raise UserError(f"--dataset {root}: no such folder")
    if all(os.path.isdir(os.path.join(root, s)) for s in ("train", "test")):
        roots = {s: os.path.join(root, s) for s in ("train", "test")}
        return {s: list_images(r) for s, r in roots.items()}, roots, "its train/ and test/ folders"
    every = list_images(root)
    order = np.random.default_rng(seed).permutation(len(every))
    n_test = min(MAX_HELD_OUT, max(1, round(HELD_OUT * len(every)))) if len(every) > 1 else 0
    test = set(order[:n_test].tolist())
    parts = {
        "train": [p for i, p in enumerate(every) if i not in test],
        "test": [p for i, p in enumerate(every) if i in test],
    }
    how = f"{n_test} ({HELD_OUT:.0%}, at most {MAX_HELD_OUT}) held out for testing, chosen by seed {seed}"
    return parts, {"train": root, "test": root}, how


def load_folder(
    root: str, size: int = 0, seed: int = 0, stream: bool = False, stream_above: float = math.inf
) -> tuple[str, dict[str, np.ndarray | Files], list[str]]:
    """(description, {train,test}_{images,labels}, class names) of an image folder (module
    docstring). With `stream`, or when its images would decode to more than `stream_above` bytes,
    the training images stay on disk (`Files`): every file is decoded once here, to find the
    readable ones and their shapes, and then again whenever a batch needs it."""
    parts, roots, how = _layout(root, seed)
    every = [os.path.relpath(os.path.join(roots[s], p), root) for s, paths in parts.items() for p in paths]
    estimate = estimated_bytes(root, every, size)
    if not stream and estimate > stream_above:
        log.info("data: %s decodes to about %.1f GB: streamed from its files (--stream)", root, estimate / 1e9)
        stream = True
    read_parts, skipped = {}, []
    for split, paths in parts.items():
        images, kept, bad = read(roots[split], paths, keep_pixels=not (stream and split == "train"))
        read_parts[split] = (images, kept)
        skipped += [os.path.relpath(os.path.join(roots[split], p), root) for p in bad]
    warn_skipped(skipped, root)
    if not read_parts["train"][0] or not read_parts["test"][0]:
        raise UserError(
            f"--dataset {root}: no usable {'training' if not read_parts['train'][0] else 'test'} image "
            f"(PNG or JPEG, found {sum(len(k) for _, k in read_parts.values())} readable); it needs images to train "
            f"on and {HELD_OUT:.0%} (at least 1) held out for testing: add images, or make train/ and test/ folders"
        )
    classes = sorted({_class_of(p) for _, kept in read_parts.values() for p in kept})
    (train, train_paths), (test, test_paths) = read_parts["train"], read_parts["test"]
    shapes = [im if isinstance(im, tuple) else im.shape for im in train + test]
    size, channels = target(shapes, size, root)
    test_images = np.stack([convert(im, size, channels) for im in test])
    if stream:
        stamps = tuple(_stamp(os.path.join(roots["train"], p)) for p in train_paths)
        train_images = Files(roots["train"], tuple(train_paths), (len(train), *test_images.shape[1:]), size, stamps)
    else:
        train_images = np.stack([convert(im, size, channels) for im in train])
    arrays = {
        "train_images": train_images,
        "train_labels": np.array([classes.index(_class_of(p)) for p in train_paths], np.int32),
        "test_images": test_images,
        "test_labels": np.array([classes.index(_class_of(p)) for p in test_paths], np.int32),
    }
    shown = classes if len(classes) <= 5 else [*classes[:5], "..."]
    names = ", ".join(c or "(top level)" for c in shown)
    return f"image folder {root} ({how}; {len(classes)} class(es): {names})", arrays, classes


def _stamp(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def _class_of(path: str) -> str:
    """The class of an image: the first folder of its path below the split's root ('' at the top)."""
    head = path.split(os.sep, 1)
    return head[0] if len(head) > 1 else ""
