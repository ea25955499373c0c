"""Datasets through tensorflow-datasets: a prepared copy read with `tfds.data_source` (no
TensorFlow needed to read), or a TFDS download when its host answers. Images are cropped
and resized here to what we train on where the datasets table says so (CelebA)."""

from __future__ import annotations

import logging
import os

import numpy as np

from vae_jax.data import datasets, download
from vae_jax.data.images import centre_crop_resize
from vae_jax.errors import UserError, first_line

log = logging.getLogger("vae_jax")

TFDS_HOST = ("storage.googleapis.com", 443)
READ_CHUNK = 1024  # records per bulk read: 1,024 CelebA examples decode to about 120 MB before their crop

Found = tuple[str, dict[str, np.ndarray]]  # (source, {train_images, train_labels, test_images, test_labels})


def reachable(timeout: float = download.PROBE_TIMEOUT_S) -> bool:
    """Whether the TFDS download host accepts a connection within `timeout` seconds (DNS included)."""
    return download.reachable(*TFDS_HOST, timeout)


def read_if_reachable(name: str) -> Found | None:
    if not reachable():
        log.debug("data: TFDS download host %s unreachable, no download tried", TFDS_HOST[0])  # load() says it once
        return None
    return read(name, download=True)


def _absent(e: Exception) -> bool:
    """Whether a TFDS error means 'no prepared copy here' rather than 'a copy that fails to read'."""
    return type(e).__name__ == "DatasetNotFoundError" or "has not been generated" in str(e)


def may_be_prepared(name: str) -> bool:
    """Whether a prepared copy of `name` can exist: its folder is in the TFDS data dir
    ($TFDS_DATA_DIR or ~/tensorflow_datasets; a remote one, gs://..., is always asked). Saves
    importing TFDS (about 0.3 s) on every run that has no prepared copy."""
    data_dir = os.environ.get("TFDS_DATA_DIR") or os.path.join(os.path.expanduser("~"), "tensorflow_datasets")
    return "://" in data_dir or os.path.isdir(os.path.join(data_dir, name))


def read(name: str, download: bool) -> Found | None:
    """The train and test splits of `name`, prepared (or downloaded, with `download`), as uint8
    (N, H, W, C) images and (N,) labels; None where there is no copy. A copy that exists but
    cannot be read is a UserError."""
    if not download and not may_be_prepared(name):
        return None
    try:
        import tensorflow_datasets as tfds
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)  # TFDS warns about every absent folder
    except ImportError:
        return None
    where = "downloaded" if download else "prepared"
    try:
        splits = tfds.data_source(name, split=["train", "test"], download=download)
    except Exception as e:  # TFDS raises many kinds when data is absent or cannot be prepared
        if download:
            log.warning("data: TFDS download of %s failed: %s", name, first_line(e))
            return None
        if _absent(e):
            return None
        raise UserError(
            f"data: the prepared TFDS copy of {name} cannot be read ({first_line(e)}); "
            "repair or remove it, or pass --data-dir"
        ) from None
    arrays = {}
    try:
        for split_name, split in zip(("train", "test"), splits):
            arrays[f"{split_name}_images"], arrays[f"{split_name}_labels"] = _read_split(name, split)
    except Exception as e:
        raise UserError(
            f"data: the {where} TFDS copy of {name} cannot be read ({first_line(e)}); "
            "repair or remove it, or pass --data-dir"
        ) from None
    return ("TFDS download" if download else "prepared TFDS copy"), arrays


def _read_split(name: str, split) -> tuple[np.ndarray, np.ndarray]:
    """A TFDS data source -> (N, H, W, C) uint8 images and (N,) labels, read READ_CHUNK records at
    a time with the source's bulk `__getitems__` (ArrayRecord reads a chunk's records in parallel)
    into arrays allocated once."""
    n = len(split)
    images = labels = None
    for start in range(0, n, READ_CHUNK):
        examples = split.__getitems__(list(range(start, min(start + READ_CHUNK, n))))
        for i, e in enumerate(examples, start):
            image = _image(name, np.asarray(e["image"]))
            if images is None:
                images, labels = np.empty((n, *image.shape), np.uint8), np.zeros(n, np.int64)
            images[i] = image
            labels[i] = e.get("label", 0)  # celeb_a: no label
    if images is None:
        raise ValueError("the split has no examples")
    return images, labels


def _image(name: str, image: np.ndarray) -> np.ndarray:
    """TFDS image -> the (H, W, C) uint8 image we train on (CelebA: the central 140x140 face region,
    resized to 64x64, as most VAE papers: the table's crop and image shape)."""
    entry = datasets.known(name)
    if entry is None or not entry.crop:
        return image
    return centre_crop_resize(image, entry.crop, entry.image_shape[0])
