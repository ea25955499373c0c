"""How close a set of samples is to a set of data, in a feature space (vae_jax.classifier's):

- the Fréchet distance between the two sets' Gaussians (FID's formula, Heusel et al. 2017, in
  these features: not Inception's FID), ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))``;
- precision and recall (Kynkäänniemi et al. 2019, k = 3): the share of samples inside the data's
  manifold (the union of balls around each data point reaching its k-th nearest data neighbour), and
  of data inside the samples' manifold;
- density and coverage (Naeem et al. 2020, k = 5): the mean number of data balls a sample falls in,
  over k, and the share of data balls that hold at least one sample.

Features are (N, F) arrays on the host; distances are computed in float64, a block of rows at a time.
"""

from __future__ import annotations

import numpy as np

BLOCK = 1024


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to the real and the generated features (FID's formula).

    Args:
        real: features of real images (N, F).
        fake: features of generated images (M, F).

    Returns:
        A float.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    mu_r, mu_g = real.mean(0), fake.mean(0)
    s_r, s_g = (np.atleast_2d(np.cov(x, rowvar=False)) for x in (real, fake))
    values, vectors = np.linalg.eigh(s_r)
    root_r = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    # Tr (S_r S_g)^(1/2) = Tr (S_r^(1/2) S_g S_r^(1/2))^(1/2), a symmetric matrix's eigenvalues
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root_r @ s_g @ root_r), 0, None)))
    return float(np.sum((mu_r - mu_g) ** 2) + np.trace(s_r) + np.trace(s_g) - 2.0 * cross)


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between rows.

    Args:
        a: (n, F).
        b: (m, F).

    Returns:
        (n, m) float64.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    squared = np.sum(a * a, 1)[:, None] + np.sum(b * b, 1)[None] - 2.0 * a @ b.T
    return np.sqrt(np.clip(squared, 0, None))


def kth_neighbour_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Each row's distance to its k-th nearest other row.

    Args:
        x: (n, F).
        k: which neighbour.

    Returns:
        (n,).
    """
    radii = []
    for start in range(0, len(x), BLOCK):
        d = distances(x[start : start + BLOCK], x)
        radii.append(np.partition(d, k, axis=1)[:, k])  # position 0 is the row itself (distance 0)
    return np.concatenate(radii)


def _inside_counts(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(for each point: how many balls B(centre, radius) hold it, for each centre: whether any point
    falls in its ball)."""
    counts, covered = [], np.zeros(len(centres), bool)
    for start in range(0, len(points), BLOCK):
        inside = distances(points[start : start + BLOCK], centres) <= radii[None]
        counts.append(inside.sum(1))
        covered |= inside.any(0)
    return np.concatenate(counts), covered


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019), manifolds of k-th-neighbour balls.

    Args:
        real: features of real images (N, F).
        fake: features of generated images (M, F).
        k: the neighbour whose distance is each ball's radius.

    Returns:
        (precision, recall), each in [0, 1].
    """
    in_real, _ = _inside_counts(fake, real, kth_neighbour_radii(real, k))
    in_fake, _ = _inside_counts(real, fake, kth_neighbour_radii(fake, k))
    return float(np.mean(in_real > 0)), float(np.mean(in_fake > 0))


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) against the k-th-neighbour balls of the real features.

    Args:
        real: features of real images (N, F).
        fake: features of generated images (M, F).
        k: the neighbour whose distance is each ball's radius.

    Returns:
        (density, coverage).
    """
    counts, covered = _inside_counts(fake, real, kth_neighbour_radii(real, k))
    return float(np.sum(counts) / (k * len(fake))), float(np.mean(covered))


def all_metrics(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    """Every measure above, at its default k.

    Args:
        real: features of real images (N, F).
        fake: features of generated images (M, F).

    Returns:
        {'frechet_distance', 'precision', 'recall', 'density', 'coverage'}.
    """
    precision, recall = precision_recall(real, fake)
    density, coverage = density_coverage(real, fake)
    return {
        "frechet_distance": frechet_distance(real, fake),
        "precision": precision,
        "recall": recall,
        "density": density,
        "coverage": coverage,
    }
