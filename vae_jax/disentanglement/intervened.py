"""The disentanglement scores that hold a factor fixed across a batch, as disentanglement_lib computes
them (Locatello et al. 2019):

- BetaVAE score (Higgins et al. 2017): a point is a factor k drawn uniformly and two batches of
  `batch` factor draws that agree on k; its feature is the mean absolute difference of their codes
  (D,); a logistic regression (scikit-learn's defaults) predicts k; the score is its accuracy on
  `n_eval` fresh points;
- FactorVAE score (Kim & Mnih 2018): the codes are divided by their standard deviation over
  `n_variance` draws, codes whose deviation is below 0.05 are left out; a point is a factor k and a
  batch of `batch` draws that share k's value; it votes for the code of least variance in the
  batch; each code is assigned the factor it has most votes for (majority vote), and the score is
  the share of `n_eval` fresh points whose vote names a code of their own factor.

`represent`: observations -> codes (N, D); `truth`: a GroundTruth (vae_jax.disentanglement). The
points are drawn `CHUNK` at a time, their observations represented in one call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

CHUNK = 64  # points drawn and represented together


def _codes(truth: Any, represent: Callable, factors: np.ndarray) -> np.ndarray:
    """Codes of the observations of factors (P, B, K) -> (P, B, D)."""
    p, b, k = factors.shape
    return np.asarray(represent(truth.observations(factors.reshape(p * b, k)))).reshape(p, b, -1)


def beta_vae_points(
    truth: Any, represent: Callable, n: int, batch: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """n points of the BetaVAE score.

    Args:
        truth: the dataset's factors and observations (a vae_jax.disentanglement.GroundTruth).
        represent: observations (N, ...) -> codes (N, D), the representation scored.
        n: how many points.
        batch: draws per point.
        rng: the NumPy generator every draw comes from.

    Returns:
        (features (n, D), the factor held fixed in each (n,)).
    """
    features, fixed = [], []
    for start in range(0, n, CHUNK):
        p = min(CHUNK, n - start)
        k = rng.integers(truth.num_factors, size=p)
        first, second = truth.sample_factors(p * batch, rng), truth.sample_factors(p * batch, rng)
        first, second = first.reshape(p, batch, -1), second.reshape(p, batch, -1)
        second[np.arange(p), :, k] = first[np.arange(p), :, k]
        codes = _codes(truth, represent, np.concatenate([first, second]))  # both batches in one call
        features.append(np.mean(np.abs(codes[:p] - codes[p:]), axis=1))
        fixed.append(k)
    return np.concatenate(features), np.concatenate(fixed)


def beta_vae_score(
    truth: Any,
    represent: Callable,
    rng: np.random.Generator,
    batch: int = 64,
    n_train: int = 10_000,
    n_eval: int = 5_000,
) -> dict[str, float]:
    """The BetaVAE score.

    Args:
        truth: the dataset's factors and observations (a vae_jax.disentanglement.GroundTruth).
        represent: observations (N, ...) -> codes (N, D), the representation scored.
        rng: the NumPy generator every draw comes from.
        batch: draws per point.
        n_train: points the classifier is trained on.
        n_eval: points it is scored on.

    Returns:
        {'train_accuracy', 'eval_accuracy'} of the score's classifier.
    """
    from sklearn.linear_model import LogisticRegression

    x, y = beta_vae_points(truth, represent, n_train, batch, rng)
    model = LogisticRegression(max_iter=1000).fit(x, y)
    x_eval, y_eval = beta_vae_points(truth, represent, n_eval, batch, rng)
    return {"train_accuracy": float(model.score(x, y)), "eval_accuracy": float(model.score(x_eval, y_eval))}


def factor_vae_votes(
    truth: Any, represent: Callable, n: int, batch: int, rng: np.random.Generator, scale: np.ndarray, active: np.ndarray
) -> np.ndarray:
    """The FactorVAE score's votes.

    Args:
        truth: the dataset's factors and observations (a vae_jax.disentanglement.GroundTruth).
        represent: observations (N, ...) -> codes (N, D), the representation scored.
        n: how many points.
        batch: draws per point.
        rng: the NumPy generator every draw comes from.
        scale: each code's standard deviation (D,), what the codes are divided by.
        active: which codes take part (D,) booleans.

    Returns:
        (K, D) votes, how many of n points with factor k fixed had code d as their least-varying active code.
    """
    votes = np.zeros((truth.num_factors, len(scale)), np.int64)
    columns = np.flatnonzero(active)
    for start in range(0, n, CHUNK):
        p = min(CHUNK, n - start)
        k = rng.integers(truth.num_factors, size=p)
        factors = truth.sample_factors(p * batch, rng).reshape(p, batch, -1)
        factors[np.arange(p), :, k] = factors[np.arange(p), :1, k]
        local = np.var(_codes(truth, represent, factors), axis=1, ddof=1)  # (p, D)
        least = columns[np.argmin(local[:, columns] / scale[columns] ** 2, axis=1)]
        np.add.at(votes, (k, least), 1)
    return votes


def majority_accuracy(votes: np.ndarray, assigned: np.ndarray) -> float:
    """The share of votes cast for a code whose assigned factor is the voter's.

    Args:
        votes: (K, D) votes (`factor_vae_votes`).
        assigned: the factor assigned to each code (D,).

    Returns:
        A float in [0, 1].
    """
    return float(votes[assigned, np.arange(votes.shape[1])].sum() / votes.sum())


def factor_vae_score(
    truth: Any,
    represent: Callable,
    rng: np.random.Generator,
    batch: int = 64,
    n_train: int = 10_000,
    n_eval: int = 5_000,
    n_variance: int = 10_000,
    threshold: float = 0.05,
) -> dict[str, float]:
    """The FactorVAE score (0 with no active code).

    Args:
        truth: the dataset's factors and observations (a vae_jax.disentanglement.GroundTruth).
        represent: observations (N, ...) -> codes (N, D), the representation scored.
        rng: the NumPy generator every draw comes from.
        batch: draws per point.
        n_train: points the majority vote is taken over.
        n_eval: points it is scored on.
        n_variance: draws the codes' standard deviations are measured on.
        threshold: codes whose standard deviation is below it are left out.

    Returns:
        {'train_accuracy', 'eval_accuracy', 'active_codes'}.
    """
    observations = truth.observations(truth.sample_factors(n_variance, rng))
    scale = np.sqrt(np.var(np.asarray(represent(observations)), axis=0, ddof=1))
    active = scale >= threshold
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "active_codes": 0}
    votes = factor_vae_votes(truth, represent, n_train, batch, rng, scale, active)
    assigned = np.argmax(votes, axis=0)
    eval_votes = factor_vae_votes(truth, represent, n_eval, batch, rng, scale, active)
    return {
        "train_accuracy": majority_accuracy(votes, assigned),
        "eval_accuracy": majority_accuracy(eval_votes, assigned),
        "active_codes": int(active.sum()),
    }
