"""$VAE_JAX_SMOKE=1: every command at the smallest settings that still go through all of its code,
for the test that runs the commands of the README and the docs as written (the explorer stops by itself once it has
answered its own request for /api/info). Each command says so in a log line; nothing changes
without the variable."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

log = logging.getLogger("vae_jax")

ENV = "VAE_JAX_SMOKE"
TRAIN_IMAGES, TEST_IMAGES, EPOCHS, K, SAMPLES, FIT_EPOCHS = 1024, 256, 1, 2, 256, 2


def on() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def config(cfg: Any) -> Any:
    """A Config with at most EPOCHS epochs and K importance samples in its final evaluation."""
    if not on():
        return cfg
    log.warning("smoke run ($%s): at most %d epoch(s), --eval-k at most %d", ENV, EPOCHS, K)
    return dataclasses.replace(cfg, epochs=min(cfg.epochs, EPOCHS), eval_k=min(cfg.eval_k, K))


def k(value: int) -> int:
    """An evaluation's importance samples: at most K in a smoke run."""
    return min(value, K) if on() else value


def samples(value: int) -> int:
    """Samples judged by the sample yardstick (evaluate.py --samples): at most SAMPLES in a smoke run."""
    return min(value, SAMPLES) if on() else value


def fit_options(options: dict[str, int]) -> dict[str, int]:
    """A fitted sampler's options with at most FIT_EPOCHS epochs in a smoke run (a fit by gradient)."""
    if not on() or options.get("epochs", 0) <= FIT_EPOCHS:
        return options
    log.warning("smoke run ($%s): the sampler's fit takes at most %d epochs", ENV, FIT_EPOCHS)
    return options | {"epochs": FIT_EPOCHS}


def dataset(d: Any) -> Any:
    """A data.Dataset cut to about TRAIN_IMAGES training and TEST_IMAGES test images, spread evenly
    over each split (a split sorted by class keeps every class); a training set left on disk is kept,
    one rendered when read (dSprites') is cut."""
    if not on():
        return d
    step = lambda n, keep: slice(None, None, max(1, -(-n // keep)))  # noqa: E731
    train, test = step(len(d.train_images), TRAIN_IMAGES), step(len(d.test_images), TEST_IMAGES)
    keep = {"test_images": d.test_images[test], "test_labels": d.test_labels[test]}
    if isinstance(d.train_images, type(d.test_images)) or getattr(d.train_images, "rendered", False):
        keep |= {"train_images": d.train_images[train], "train_labels": d.train_labels[train]}
    log.warning("smoke run ($%s): every %d-th training and %d-th test image", ENV, train.step, test.step)
    return dataclasses.replace(d, **keep)
