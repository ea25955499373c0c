"""Disentanglement scores: how well a representation's codes line up with the known factors that
generated the data, the six scores of Locatello et al. 2019 ("Challenging Common Assumptions in the
Unsupervised Learning of Disentangled Representations") as disentanglement_lib defines them, with its
default sample sizes (SIZES).

A ground truth is any object with `factor_sizes` (the number of values of each of its K factors),
`factor_names`, and `observations(factors)`: factors (N, K) integer indices -> N observations;
factors are drawn independently and uniformly over each factor's values (`sample_factors`). A
representation is a function observations -> codes (N, D) (a model's posterior means).

    scores(truth, represent, seed) -> {'beta_vae': ..., 'factor_vae': ..., 'mig': ...,
                                       'dci_disentanglement': ..., 'modularity': ..., 'sap': ..., ...}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

from vae_jax.disentanglement import informational, intervened

# disentanglement_lib's unsupervised study: points drawn for each score
SIZES = {
    "beta_vae": {"batch": 64, "n_train": 10_000, "n_eval": 5_000},
    "factor_vae": {"batch": 64, "n_train": 10_000, "n_eval": 5_000, "n_variance": 10_000},
    "mig": {"n_train": 10_000},
    "dci": {"n_train": 10_000, "n_test": 5_000},
    "modularity": {"n_train": 10_000, "n_test": 5_000},
    "sap": {"n_train": 10_000, "n_test": 5_000},
}
NAMES = ("beta_vae", "factor_vae", "mig", "dci", "modularity", "sap")


class GroundTruth(Protocol):
    factor_sizes: tuple[int, ...]
    factor_names: tuple[str, ...]

    @property
    def num_factors(self) -> int: ...

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray: ...

    def observations(self, factors: np.ndarray) -> np.ndarray: ...


class Factors:
    """Shared by ground truths: `factor_sizes`, and uniform independent draws of factor indices."""

    factor_sizes: tuple[int, ...] = ()

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Factor indices, each factor uniform over its values, independently.

        Args:
            n: how many draws.
            rng: the NumPy generator they come from.

        Returns:
            (n, K) ints.
        """
        return np.stack([rng.integers(size, size=n) for size in self.factor_sizes], axis=1)


def codes_and_factors(
    truth: GroundTruth, represent: Callable[[Any], np.ndarray], n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The codes of n observations of factors drawn from `truth`, with those factors.

    Args:
        truth: the dataset's factors and observations (a `GroundTruth`).
        represent: observations (N, ...) -> codes (N, D), the representation scored.
        n: how many observations.
        rng: the NumPy generator of the draws.

    Returns:
        (codes (n, D) float64, factors (n, K)).
    """
    factors = truth.sample_factors(n, rng)
    return np.asarray(represent(truth.observations(factors)), np.float64), factors


def scores(
    truth: GroundTruth,
    represent: Callable[[Any], np.ndarray],
    seed: int = 0,
    which: tuple[str, ...] = NAMES,
    sizes: dict[str, dict[str, int]] | None = None,
) -> dict[str, float]:
    """The disentanglement scores of a representation.

    Args:
        truth: the dataset's factors and observations (a `GroundTruth`).
        represent: observations (N, ...) -> codes (N, D), the representation scored.
        seed: each score draws its own points from a generator seeded with it (as disentanglement_lib gives
            each its own random state).
        which: the scores: any of NAMES ('beta_vae', 'factor_vae', 'mig', 'dci', 'modularity', 'sap').
        sizes: {score: {size name: points}} overriding SIZES, the sizes disentanglement_lib uses.

    Returns:
        Each score by name, with its training-side numbers where it has them
        ('beta_vae_train', 'dci_informativeness_test', 'explicitness_train', ...).
    """
    sizes = {**SIZES, **(sizes or {})}
    out: dict[str, float] = {}

    def pairs(name: str, rng: np.random.Generator) -> tuple[tuple, tuple]:
        size = sizes[name]
        return codes_and_factors(truth, represent, size["n_train"], rng), codes_and_factors(
            truth, represent, size["n_test"], rng
        )

    for name in which:
        rng = np.random.default_rng(seed)
        if name == "beta_vae":
            result = intervened.beta_vae_score(truth, represent, rng, **sizes[name])
            out |= {"beta_vae": result["eval_accuracy"], "beta_vae_train": result["train_accuracy"]}
        elif name == "factor_vae":
            result = intervened.factor_vae_score(truth, represent, rng, **sizes[name])
            out |= {"factor_vae": result["eval_accuracy"], "factor_vae_train": result["train_accuracy"]}
            out["factor_vae_active_codes"] = result["active_codes"]
        elif name == "mig":
            out["mig"] = informational.mig(*codes_and_factors(truth, represent, sizes[name]["n_train"], rng))
        elif name == "dci":
            out |= {f"dci_{k}": v for k, v in informational.dci(*pairs(name, rng), seed=seed).items()}
        elif name == "modularity":
            train, test = pairs(name, rng)
            information = informational.mutual_information(informational.discretised(train[0]), train[1])
            out["modularity"] = informational.modularity(information)
            out["explicitness_train"], out["explicitness"] = informational.explicitness(train, test)
        elif name == "sap":
            out["sap"] = informational.sap(*pairs(name, rng))
        else:
            raise ValueError(f"unknown score {name!r}: one of {', '.join(NAMES)}")
    return out
