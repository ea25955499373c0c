"""The explorer's map: latents (N, L) placed in 2-D, and back. A 2-D latent is its own map; more
dimensions are projected by PCA (exactly invertible along the plane) or, on request, t-SNE (no
formula either way: a new latent is placed, and a point of the map decoded, by the inverse-distance
weighted mean of its NEIGHBOURS nearest neighbours')."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vae_jax.visualize import pca_basis, project_2d

NEIGHBOURS = 8


@dataclass(frozen=True)
class Projection:
    """kind: 'latent' (the latent's own axes), 'pca' or 'tsne'; points (N, 2): the map places of
    latents (N, L); for PCA its mean (L,) and orthonormal basis (2, L)."""

    kind: str
    points: np.ndarray
    latents: np.ndarray
    mean: np.ndarray | None = None
    basis: np.ndarray | None = None

    def place(self, z: np.ndarray) -> np.ndarray:
        """The map place (2,) of a latent z: (L,)."""
        z = np.asarray(z, np.float64)
        if self.kind == "latent":
            return np.pad(z, (0, 2 - len(z)))
        if self.kind == "pca":
            return (z - self.mean) @ self.basis.T
        return _weighted_neighbours(self.latents, self.points, z)

    def inverse(self, xy: np.ndarray) -> np.ndarray:
        """The latent (L,) a map place xy: (2,) stands for (with PCA: on the plane through the mean)."""
        xy = np.asarray(xy, np.float64)
        if self.kind == "latent":
            return xy[: self.latents.shape[1]]
        if self.kind == "pca":
            return self.mean + xy @ self.basis
        return _weighted_neighbours(self.points, self.latents, xy)


def project(latents: np.ndarray, method: str = "pca", seed: int = 0) -> Projection:
    """The map of latents (N, L): their own axes for L <= 2, else PCA or t-SNE (method 'tsne')."""
    latents = np.asarray(latents, np.float64)
    if latents.shape[1] <= 2:
        return Projection("latent", project_2d(latents), latents)
    if method == "tsne":
        return Projection("tsne", project_2d(latents, "tsne", seed), latents)
    mean, basis = pca_basis(latents)
    return Projection("pca", (latents - mean) @ basis.T, latents, mean, basis)


def _weighted_neighbours(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """The mean of the values (N, V) of the NEIGHBOURS keys (N, K) nearest to query (K,), weighted by
    1 / distance (a query on a key gives that key's value)."""
    distance = np.linalg.norm(keys - query, axis=1)
    nearest = np.argsort(distance)[:NEIGHBOURS]
    if distance[nearest[0]] < 1e-12:
        return values[nearest[0]].copy()
    weights = 1.0 / distance[nearest]
    return (weights[:, None] * values[nearest]).sum(0) / weights.sum()
