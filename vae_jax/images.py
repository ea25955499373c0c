"""A folder of the user's own images (PNG and JPEG, any size and mode) -> uint8 arrays.

Layout: `train/` and `test/` subfolders are used as given; otherwise every image is found
recursively and a fixed fraction (HELD_OUT) is held out for testing, chosen by the seed. The first
folder level below the split's root names the classes (labels 0, 1, ... in sorted order); images
directly in the root form one class of their own. Grey images stay one channel when every image is
grey; otherwise all become RGB. Palette images are expanded, and transparency is composited onto
white. Images of different sizes are centre-cropped to squares and resized (area filter).
"""

from __future__ import annotations

import collections
import logging
import os
import warnings

import numpy as np

from vae_jax.errors import UserError

log = logging.getLogger("vae_jax")

SUFFIXES = (".png", ".jpg", ".jpeg")
HELD_OUT = 0.1  # the fraction of a folder without train/ and test/ that is held out for testing


def centre_crop_resize(image: np.ndarray, crop: int, size: int) -> np.ndarray:
    """The central crop x crop square of an (H, W, C) uint8 image, resized to size x size (area filter)."""
    from PIL import Image

    h, w = image.shape[:2]
    top, left = (h - crop) // 2, (w - crop) // 2
    square = image[max(top, 0) : max(top, 0) + crop, max(left, 0) : max(left, 0) + crop]
    resized = Image.fromarray(square.squeeze(-1) if square.shape[-1] == 1 else square).resize((size, size), Image.BOX)
    out = np.asarray(resized)
    return out[..., None] if out.ndim == 2 else out


def list_images(root: str) -> list[str]:
    """Image files below `root`, recursively, in sorted order (paths relative to `root`)."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        found += [os.path.relpath(os.path.join(folder, f), root) for f in sorted(files) if f.lower().endswith(SUFFIXES)]
    return found


def _open(path: str):
    """The first frame of an image file as a PIL image in mode 'L' (grey) or 'RGB'; palettes are
    expanded, transparency composited onto white, 16-bit grey scaled to 8 bits."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL warns about odd palettes and EXIF data
        image = Image.open(path)
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


def _grey(image) -> bool:
    """Whether an RGB image has no colour (its three channels are equal)."""
    a = np.asarray(image)
    return bool(np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2]))


def read(root: str, paths: list[str]) -> tuple[list[np.ndarray], list[str], list[str]]:
    """The images at `paths` (relative to `root`) as uint8 (H, W, 1|3) arrays, the paths read, and
    the paths that could not be read."""
    images, kept, skipped = [], [], []
    for path in paths:
        try:
            image = np.asarray(_open(os.path.join(root, path)))
        except Exception:  # PIL raises many kinds for files that are not images
            skipped.append(path)
            continue
        if image.ndim != 2 and image.ndim != 3 or min(image.shape[:2]) == 0:
            skipped.append(path)
            continue
        images.append(image[..., None] if image.ndim == 2 else image)
        kept.append(path)
    return images, kept, skipped


def _warn_skipped(skipped: list[str], where: str) -> None:
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


def to_array(images: list[np.ndarray], size: int, where: str) -> np.ndarray:
    """One uint8 (N, S, S, C) or (N, H, W, C) array: channels made alike (RGB if any image has
    colour), and sizes: `size` > 0 centre-crops and resizes every image to size x size; 0 keeps
    the images' own size when they all agree, else uses the most common shorter side, saying so."""
    if any(im.shape[-1] == 3 for im in images):
        images = [np.repeat(im, 3, axis=-1) if im.shape[-1] == 1 else im for im in images]
    shapes = collections.Counter(im.shape[:2] for im in images)
    if not size and len(shapes) == 1:
        return np.stack(images)
    if not size:
        size = collections.Counter(min(s) for s in shapes.elements()).most_common(1)[0][0]
        (h0, w0), (h1, w1) = min(shapes), max(shapes)
        log.warning(
            "data: %s holds images of %d sizes (%dx%d to %dx%d): each is centre-cropped to a square "
            "and resized to %dx%d (--image-size N chooses)",
            where,
            len(shapes),
            h0,
            w0,
            h1,
            w1,
            size,
            size,
        )
    return np.stack([centre_crop_resize(im, min(im.shape[:2]), size) for im in images])


def load_folder(root: str, size: int = 0, seed: int = 0) -> tuple[str, dict[str, np.ndarray], list[str]]:
    """(description, {train,test}_{images,labels}, class names) of an image folder (module docstring)."""
    if not os.path.isdir(root):
        raise UserError(f"--dataset {root}: no such folder")
    splits = [s for s in ("train", "test") if os.path.isdir(os.path.join(root, s))]
    if splits == ["train", "test"]:
        parts = {s: list_images(os.path.join(root, s)) for s in splits}
        roots = {s: os.path.join(root, s) for s in splits}
        how = "its train/ and test/ folders"
    else:
        every = list_images(root)
        order = np.random.default_rng(seed).permutation(len(every))
        n_test = max(1, round(HELD_OUT * len(every))) if len(every) > 1 else 0
        test = set(order[:n_test].tolist())
        parts = {
            "train": [p for i, p in enumerate(every) if i not in test],
            "test": [p for i, p in enumerate(every) if i in test],
        }
        roots = {"train": root, "test": root}
        how = f"{HELD_OUT:.0%} held out for testing, chosen by seed {seed}"
    read_parts, skipped = {}, []
    for split, paths in parts.items():
        images, kept, bad = read(roots[split], paths)
        read_parts[split] = (images, kept)
        skipped += [os.path.join(split, p) if splits == ["train", "test"] else p for p in bad]
    _warn_skipped(skipped, root)
    if not read_parts["train"][0] or not read_parts["test"][0]:
        raise UserError(
            f"--dataset {root}: no usable {'training' if not read_parts['train'][0] else 'test'} image "
            f"(PNG or JPEG, found {sum(len(k) for _, k in read_parts.values())} readable)"
        )
    classes = sorted({_class_of(p) for _, kept in read_parts.values() for p in kept})
    images = to_array(read_parts["train"][0] + read_parts["test"][0], size, root)
    n_train = len(read_parts["train"][0])
    labels = np.array([classes.index(_class_of(p)) for _, kept in read_parts.values() for p in kept], np.int32)
    arrays = {
        "train_images": images[:n_train],
        "train_labels": labels[:n_train],
        "test_images": images[n_train:],
        "test_labels": labels[n_train:],
    }
    shown = classes if len(classes) <= 5 else [*classes[:5], "..."]
    names = ", ".join(c or "(top level)" for c in shown)
    return f"image folder {root} ({how}; {len(classes)} class(es): {names})", arrays, classes


def _class_of(path: str) -> str:
    """The class of an image: the first folder of its path below the split's root ('' at the top)."""
    head = path.split(os.sep, 1)
    return head[0] if len(head) > 1 else ""


def fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The largest centred region of an (H, W, C) uint8 image with the aspect of height x width,
    resized to it (area filter): for a square target, the centre crop of training."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    crop_h, crop_w = (h, round(h * width / height)) if h * width <= w * height else (round(w * height / width), w)
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    region = image[top : top + crop_h, left : left + crop_w]
    from PIL import Image

    resized = np.asarray(
        Image.fromarray(region.squeeze(-1) if region.shape[-1] == 1 else region).resize((width, height), Image.BOX)
    )
    return resized[..., None] if resized.ndim == 2 else resized


def for_model(path: str, shape: tuple[int, int, int]) -> tuple[np.ndarray, list[str]]:
    """The image file at `path`, or every image below the folder `path`, brought to a model's
    (H, W, C) as in training (centre crop and resize; grey <-> RGB), saying so: uint8 (N, H, W, C)
    and the file names (relative to the folder)."""
    if os.path.isfile(path):
        root, paths = os.path.dirname(path) or ".", [os.path.basename(path)]
    elif os.path.isdir(path):
        root, paths = path, list_images(path)
    else:
        raise UserError(f"--images {path}: no such file or folder")
    images, names, skipped = read(root, paths)
    _warn_skipped(skipped, path)
    if not images:
        raise UserError(f"--images {path}: no readable PNG or JPEG image")
    height, width, channels = shape
    resized = sum(im.shape[:2] != (height, width) for im in images)
    if resized:
        log.warning(
            "data: %d of %d image(s) are not %dx%d like the model's: centre-cropped and resized to it, as in training",
            resized,
            len(images),
            height,
            width,
        )
    out = []
    for im in images:
        im = fit(im, height, width)
        if im.shape[-1] != channels:  # grey -> RGB by repeating; RGB -> grey by luma, as PIL does
            im = np.repeat(im, 3, -1) if channels == 3 else np.asarray(_grey_of(im))[..., None]
        out.append(im)
    return np.stack(out), names


def _grey_of(rgb: np.ndarray):
    from PIL import Image

    return Image.fromarray(rgb).convert("L")
