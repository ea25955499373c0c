"""The disentanglement scores of a trained model (evaluate.py --disentanglement): its representation,
the posterior means E_q[z|x] (as disentanglement_lib scores a Gaussian encoder), scored against the
known factors of the dataset it was trained on (datasets.Known.ground_truth) by vae_jax.disentanglement,
with disentanglement_lib's sample sizes unless told otherwise.

    result = factor_scores.measure(vae_jax.load("runs/dsprites"))   # {'scores': {'mig': ..., ...}, ...}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vae_jax import disentanglement, options, smoke
from vae_jax.api import Model
from vae_jax.data import datasets
from vae_jax.data.pixels import eval_images
from vae_jax.errors import UserError

BATCH = 512  # observations encoded at once: one compiled shape, the last batch padded
SMOKE_SIZES = {name: {k: 64 if k == "batch" else 200 for k in s} for name, s in disentanglement.SIZES.items()}


def ground_truth(dataset: str, data_dir: str = "") -> disentanglement.GroundTruth:
    """The ground truth of a dataset's factors; UserError for a dataset with none.

    Args:
        dataset: the dataset's name ('dsprites').
        data_dir: where the run's data came from, read from there too ("": generated).

    Returns:
        A `GroundTruth`.
    """
    entry = datasets.known(dataset)
    if entry is None or not entry.ground_truth:
        with_factors = ", ".join(d.name for d in datasets.TABLE.values() if d.ground_truth)
        raise UserError(
            f"--disentanglement needs a dataset with known factors ({with_factors}); this model was "
            f"trained on {dataset}"
        )
    return options.imported(entry.ground_truth)(data_dir)


def representation(model: Model) -> Any:
    """The model's representation, what the scores score.

    Args:
        model: the trained model.

    Returns:
        A function of uint8 observations (N, H, W, C) -> posterior means (N, latent_dim).
    """
    binary = model.vae.likelihood.binary

    def represent(pixels: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(pixels), BATCH):
            part = pixels[start : start + BATCH]
            padded = np.concatenate([part, np.zeros((BATCH - len(part), *part.shape[1:]), part.dtype)])
            out.append(np.asarray(model.encode(eval_images(padded, binary))[0])[: len(part)])
        return np.concatenate(out) if out else np.zeros((0, model.vae.latent_dim), np.float32)

    return represent


def measure(
    model: Model,
    seed: int = 0,
    which: tuple[str, ...] = disentanglement.NAMES,
    sizes: dict[str, dict[str, int]] | None = None,
) -> dict[str, Any]:
    """The disentanglement scores of a model trained on a dataset with factors (a smoke run: SMOKE_SIZES,
    every score's code path at a few hundred points).

    Args:
        model: the trained model.
        seed: the seed of every score's draws.
        which: the scores (vae_jax.disentanglement.NAMES).
        sizes: {score: {size name: points}} overriding the defaults.

    Returns:
        A report with 'scores' (each by name), 'factors', 'sizes', 'seed', 'representation', 'observations'.
    """
    truth = ground_truth(model.config.dataset, model.config.data_dir)
    sizes = {**disentanglement.SIZES, **(SMOKE_SIZES if smoke.on() else {}), **(sizes or {})}
    scores = disentanglement.scores(truth, representation(model), seed, which, sizes)
    return {
        "scores": scores,
        "factors": dict(zip(truth.factor_names, truth.factor_sizes)),
        "sizes": {name: sizes[name] for name in which},
        "seed": seed,
        "representation": "the posterior means E_q[z|x]",
        "observations": f"the published file in {model.config.data_dir}" if model.config.data_dir else "generated",
    }
