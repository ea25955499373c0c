"""The data layer: what a dataset is and where its images come from, down to what the networks see.

    datasets.py      the table of datasets known by name (shape, classes, files, ...)
    sources.py       a run's data from its config, trying the sources in a fixed order
    download.py      the official files, verified; tfds_source.py: prepared or downloaded TFDS copies
    formats.py       IDX, CIFAR binary and .amat files -> arrays
    images.py        folders of PNG/JPEG images, read whole or left on disk
    stream.py        batches of images left on disk, read on the host (Grain)
    model_inputs.py  a user's own images brought to a model's shape
    pixels.py        uint8 images -> the network's inputs (scaled or binarized)

`from vae_jax import data; data.load(...)` reaches sources.py's names; they are imported when first
used, so that reading flags (which needs only the table) does not pay for NumPy and the readers.
"""

from __future__ import annotations

import importlib
from typing import Any

_FROM_SOURCES = ("Dataset", "load", "of_run")


def __getattr__(name: str) -> Any:
    if name not in _FROM_SOURCES:
        raise AttributeError(f"module 'vae_jax.data' has no attribute {name!r}")
    value = getattr(importlib.import_module("vae_jax.data.sources"), name)
    globals()[name] = value
    return value
