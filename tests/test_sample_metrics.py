"""The sample yardstick's measures against their definitions: the Fréchet distance against scipy's
matrix square root and the closed form of two 1-D Gaussians, precision/recall and density/coverage
against brute-force loops over every pair."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from vae_jax import sample_metrics


def test_the_frechet_distance_is_its_formula():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4))
    fake = rng.normal(0.5, 1.0, size=(200, 4)) @ rng.normal(size=(4, 4))
    s_r, s_g = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = linalg.sqrtm(s_r @ s_g).real
    expected = np.sum((real.mean(0) - fake.mean(0)) ** 2) + np.trace(s_r + s_g - 2 * root)
    assert sample_metrics.frechet_distance(real, fake) == pytest.approx(expected, rel=1e-6)
    # one dimension: (mu_1 - mu_2)^2 + (sigma_1 - sigma_2)^2
    a, b = rng.normal(size=(1000, 1)), rng.normal(size=(1000, 1))
    one_d = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert sample_metrics.frechet_distance(a, b) == pytest.approx(one_d, rel=1e-6)
    assert sample_metrics.frechet_distance(real, real) == pytest.approx(0.0, abs=1e-6)


def brute(real: np.ndarray, fake: np.ndarray, k_pr: int = 3, k_dc: int = 5) -> dict[str, float]:
    """The four measures, one pair at a time, from the papers' definitions."""
    dist = lambda u, v: float(np.sqrt(np.sum((u - v) ** 2)))  # noqa: E731

    def radius(points, i, k):
        return sorted(dist(points[i], p) for j, p in enumerate(points) if j != i)[k - 1]

    def in_manifold(y, points, k):
        return any(dist(y, p) <= radius(points, i, k) for i, p in enumerate(points))

    precision = np.mean([in_manifold(y, real, k_pr) for y in fake])
    recall = np.mean([in_manifold(x, fake, k_pr) for x in real])
    radii = [radius(real, i, k_dc) for i in range(len(real))]
    inside = [[dist(y, x) <= r for x, r in zip(real, radii)] for y in fake]
    density = np.sum(inside) / (k_dc * len(fake))
    coverage = np.mean(np.any(inside, axis=0))
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


def test_precision_recall_density_and_coverage_are_their_definitions(monkeypatch):
    monkeypatch.setattr(sample_metrics, "BLOCK", 7)  # several blocks, a short last one
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(30, 3)), rng.normal(0.7, 1.3, size=(25, 3))
    got = sample_metrics.all_metrics(real, fake)
    for name, value in brute(real, fake).items():
        assert got[name] == pytest.approx(value), name
    assert 0 < got["precision"] < 1 and 0 < got["coverage"] < 1  # neither trivially 0 nor 1
