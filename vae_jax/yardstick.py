"""The same numbers for every model, likelihood or not (evaluate.py --samples N): its samples
against the test images in the feature space of the dataset's shipped classifier (vae_jax.classifier;
the measures: vae_jax.sample_metrics), and its reconstructions' error per image.

Samples are the means of p(x|z) for z from the model's sampler: the prior, or a density
fitted to the training set's codes (vae_jax.fitted: gmm is what RAE's paper samples with).
A conditional model draws its N samples over the classes in turn. The test images are the dataset's
pixels in [0, 1] as they are (not binarized); the reconstructions are the means of p(x|z) at the
encoder's mean of the model's own input (binarized for a Bernoulli model, as it sees it), and their
error is measured against that input: the squared error averaged over an image's sub-pixels, and the
binary cross-entropy summed over them (the means clipped to [1e-6, 1 - 1e-6]).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from vae_jax import classifier, sample_metrics
from vae_jax.api import Model
from vae_jax.errors import UserError

BATCH = 500
EPS = 1e-6


def samples(model: Model, key: jax.Array, n: int, draw=None) -> np.ndarray:
    """n sample images, BATCH at a time (a conditional model's labels cycling through its classes).

    Args:
        model: the trained model.
        key: the PRNG key of the draws.
        n: how many images.
        draw: draw(key, m) -> m images of a fitted sampler (Fitted.sample bound to the model); None: the prior's.

    Returns:
        (n, H, W, C) in [0, 1].
    """
    classes = model.vae.n_conditions
    out = []
    for i, start in enumerate(range(0, n, BATCH)):
        m, k = min(BATCH, n - start), jax.random.fold_in(key, i)
        labels = (np.arange(start, start + m) % classes).tolist() if classes else None
        out.append(np.asarray(draw(k, m) if draw else model.sample(k, m, labels=labels)))
    return np.concatenate(out)


def reconstruction_errors(reconstruct, x: np.ndarray, labels: np.ndarray | None = None) -> dict[str, float]:
    """The reconstruction error of any library's model, BATCH images at a time: each image's squared error
    per sub-pixel and binary cross-entropy summed over sub-pixels.

    Args:
        reconstruct: reconstruct(images, labels) -> the reconstructions' means in [0, 1].
        x: the images (N, H, W, C) in [0, 1].
        labels: their labels (N,), passed on to `reconstruct`; None for an unconditional model.

    Returns:
        The means 'mse' and 'bce' and their standard errors over images, 'mse_se' and 'bce_se'.
    """
    mse, bce = [], []
    for start in range(0, len(x), BATCH):
        part = x[start : start + BATCH]
        given = None if labels is None else labels[start : start + BATCH]
        mean = np.clip(np.asarray(reconstruct(part, given), np.float64), EPS, 1 - EPS)
        mse.append(np.mean((mean - part) ** 2, axis=(1, 2, 3)))
        bce.append(-np.sum(part * np.log(mean) + (1 - part) * np.log1p(-mean), axis=(1, 2, 3)))
    mse, bce = np.concatenate(mse), np.concatenate(bce)
    se = lambda v: float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")  # noqa: E731
    return {"mse": float(mse.mean()), "mse_se": se(mse), "bce": float(bce.mean()), "bce_se": se(bce)}


def features_of(dataset: str, image_shape: tuple[int, ...], *image_sets: np.ndarray) -> tuple[list[np.ndarray], dict]:
    """The features of the classifier shipped for `dataset`, loaded and compiled once.

    Args:
        dataset: the dataset the classifier was trained on ('mnist', 'fashion_mnist').
        image_shape: (H, W, C) of the images; refused (UserError) unless the classifier reads them.
        *image_sets: sets of images, each (N, H, W, C) in [0, 1].

    Returns:
        ([the features of each set, each (N, F)], the classifier's record).
    """
    record = classifier.record(dataset)
    if tuple(record["image_shape"]) != tuple(image_shape):
        raise UserError(
            f"the yardstick classifier of {dataset} reads {record['image_shape']} images, not {image_shape}"
        )
    apply = classifier.batched(*classifier.load(dataset))
    return [apply(images)[1] for images in image_sets], record


def compare(dataset: str, test_images: np.ndarray, sample_images: np.ndarray) -> dict[str, Any]:
    """The measures of any library's samples against test images, in the features of the classifier
    shipped for `dataset`.

    Args:
        dataset: the dataset the classifier was trained on.
        test_images: (N, H, W, C) in [0, 1].
        sample_images: (M, H, W, C) in [0, 1].

    Returns:
        {'n', 'test_images', 'features', 'frechet_distance', 'precision', 'recall', 'density', 'coverage'}.
    """
    (real, fake), record = features_of(dataset, test_images.shape[1:], test_images, sample_images)
    return {
        "n": len(fake),
        "test_images": len(real),
        "features": f"the penultimate layer of the {dataset} classifier (test accuracy "
        f"{record['test']['accuracy']:.4f}): not Inception's",
        **sample_metrics.all_metrics(real, fake),
    }


def measure(
    model: Model,
    test_pixels: np.ndarray,
    model_inputs: np.ndarray,
    labels,
    n: int,
    key: jax.Array,
    draw=None,
    sampler: str = "gmm",
) -> dict[str, Any]:
    """A model's samples measured against the test images, and its reconstruction error.

    Args:
        model: the trained model.
        test_pixels: the test images (N, H, W, C) uint8.
        model_inputs: the same images as the model sees them (binarized for a Bernoulli model).
        labels: their labels (N,), read for a conditional model.
        n: how many samples.
        key: the PRNG key of the samples.
        draw: draw(key, m) -> m images of a fitted sampler (Fitted.sample bound to the model); None: the prior's.
        sampler: the fitted sampler's name, for the report.

    Returns:
        The samples' measures (`compare`'s, with the sampler) under 'samples', `reconstruction_errors` under
        'reconstruction'.
    """
    test_images = np.asarray(test_pixels, np.float32) / 255.0
    measured = compare(model.config.dataset, test_images, samples(model, key, n, draw))
    return {
        "samples": {**measured, "sampler": sampler if draw else "prior"},
        "reconstruction": reconstruction_errors(
            model.reconstruct, np.asarray(model_inputs, np.float32), labels if model.vae.n_conditions else None
        ),
    }
