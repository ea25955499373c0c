"""Your images through a trained model: any image file or folder brought to the model's (H, W, C)
the way training brings a folder to its size (centre crop, area-filter resize, grey <-> RGB)."""

from __future__ import annotations

import logging
import os
import re
import warnings

import numpy as np

from vae_jax.data import images
from vae_jax.errors import UserError

log = logging.getLogger("vae_jax")


def fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The largest centred region of an (H, W, C) uint8 image with the aspect of height x width,
    resized to it (area filter): for a square target, the centre crop of training."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    crop_h, crop_w = (h, round(h * width / height)) if h * width <= w * height else (round(w * height / width), w)
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    return images.box_resize(image[top : top + crop_h, left : left + crop_w], height, width)


def for_model(path: str, shape: tuple[int, int, int]) -> tuple[np.ndarray, list[str]]:
    """The image file at `path`, or every image below the folder `path`, brought to a model's
    (H, W, C) as in training (centre crop and resize; grey <-> RGB), saying so: uint8 (N, H, W, C)
    and the file names (relative to the folder)."""
    if os.path.isfile(path):
        root, paths = os.path.dirname(path) or ".", [os.path.basename(path)]
    elif os.path.isdir(path):
        root, paths = path, images.list_images(path)
    else:
        raise UserError(f"--images {path}: no such file or folder")
    pixels, names, skipped = images.read(root, paths)
    images.warn_skipped(skipped, path)
    if not pixels:
        raise UserError(f"--images {path}: no readable PNG or JPEG image")
    height, width, channels = shape
    resized = sum(im.shape[:2] != (height, width) for im in pixels)
    if resized:
        log.warning(
            "data: %d of %d image(s) are not %dx%d like the model's: centre-cropped and resized to it, as in training",
            resized,
            len(pixels),
            height,
            width,
        )
    converted = sum(im.shape[-1] != channels for im in pixels)
    if converted:
        how = "grey to RGB (the grey channel repeated)" if channels == 3 else "RGB to grey (luma, as PIL converts)"
        log.warning("data: %d of %d image(s) converted from %s, as the model's are", converted, len(pixels), how)
    return np.stack([bring(im, shape) for im in pixels]), names


def bring(image: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """One uint8 (h, w, 1|3) image as a model with inputs `shape` (H, W, C) sees it: centre crop and
    resize (`fit`), grey -> RGB by repeating the channel, RGB -> grey by luma as PIL converts."""
    height, width, channels = shape
    image = fit(image, height, width)
    if image.shape[-1] != channels:
        image = np.repeat(image, 3, -1) if channels == 3 else np.asarray(_grey_of(image))[..., None]
    return image


def backgrounds(images: np.ndarray) -> np.ndarray:
    """The mean of each image's outermost ring of pixels, in [0, 1]: uint8 (N, H, W, C) -> (N,)."""
    x = np.asarray(images, np.float32) / 255.0
    n = len(x)
    ring = [x[:, 0].reshape(n, -1), x[:, -1].reshape(n, -1), x[:, :, 0].reshape(n, -1), x[:, :, -1].reshape(n, -1)]
    return np.concatenate(ring, axis=1).mean(axis=1)


def polarity(images: np.ndarray, reference: float) -> str | None:
    """What to tell of images (uint8 (N, H, W, C)) whose background is the opposite of `reference`'s
    (the model's images' background, in [0, 1]: a dark digit on white where the model drew light
    on dark, say); None where none is."""
    seen = backgrounds(images)
    flipped = np.abs(seen - reference) > 0.5
    if not flipped.any():
        return None
    shade = lambda v: "light" if v > 0.5 else "dark"  # noqa: E731
    which = "the image has" if len(images) == 1 else f"{int(flipped.sum())} of {len(images)} images have"
    return (
        f"{which} a {shade(float(seen[flipped].mean()))} background where the model's images have a "
        f"{shade(reference)} one: the model does not reconstruct such images"
    )


def _grey_of(rgb: np.ndarray):
    from PIL import Image

    return Image.fromarray(rgb).convert("L")


def decode(data: bytes, max_pixels: int) -> np.ndarray:
    """An image file's bytes, decoded in memory, as a uint8 (H, W, 1|3) array (see images.open_image).
    Raises images.TooLarge past `max_pixels`, UserError when the bytes are not a PNG or JPEG image."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a large image is refused below, not warned about
            with Image.open(io.BytesIO(data)) as probe:
                kind = probe.format
        if kind not in ("PNG", "JPEG"):
            raise UserError(f"a {kind} image: PNG and JPEG are read")
        image = images.pixels_of(io.BytesIO(data), max_pixels)
    except Image.DecompressionBombError as e:  # PIL's own limit, past twice Image.MAX_IMAGE_PIXELS
        declared = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(declared.group(1)):,} pixels" if declared else f"more than {max_pixels:,} pixels"
        raise images.TooLarge(f"{size}: at most {max_pixels:,} are read") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise UserError(f"not a readable PNG or JPEG image ({type(e).__name__})") from None
    if image.ndim != 3 or min(image.shape[:2]) == 0:
        raise UserError("an image without pixels")
    return image
