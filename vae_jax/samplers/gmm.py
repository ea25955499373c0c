"""The fitted sampler `gmm` (ex-post density estimation, Ghosh et al. 2020): a Gaussian mixture
with full covariances fitted by EM to the training set's posterior means. Pure functions in JAX.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from vae_jax import compiling
from vae_jax.distributions import LOG_2PI
from vae_jax.errors import UserError


class GMM(NamedTuple):
    """A Gaussian mixture: means (K, D), lower Cholesky factors of the covariances (K, D, D),
    normalised log-weights (K,)."""

    means: jax.Array
    chols: jax.Array
    log_weights: jax.Array

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(a) for name, a in self._asdict().items()}

    @classmethod
    def of(cls, arrays) -> GMM:
        return cls(*(jnp.asarray(arrays[name], jnp.float32) for name in cls._fields))


def component_log_probs(z: jax.Array, means: jax.Array, chols: jax.Array) -> jax.Array:
    """log N(z_n; mean_k, L_k L_k^T) of z (N, D) under each component -> (K, N)."""
    diff = z[None] - means[:, None]  # (K, N, D)
    solved = solve_triangular(chols, jnp.swapaxes(diff, 1, 2), lower=True)  # (K, D, N)
    log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chols, axis1=1, axis2=2)), axis=-1)  # (K,)
    return -0.5 * (z.shape[-1] * LOG_2PI + log_det[:, None] + jnp.sum(solved**2, axis=1))


def log_prob(state: dict, z: jax.Array, **_: int) -> jax.Array:
    """log p(z) under the mixture (its arrays, GMM's fields): z (N, D) -> (N,)."""
    gmm = GMM.of(state)
    return jax.nn.logsumexp(gmm.log_weights[:, None] + component_log_probs(z, gmm.means, gmm.chols), axis=0)


def sample(state: dict, key: jax.Array, n: int, temperature: float = 1.0, **_: int) -> jax.Array:
    """n draws (n, D) from the mixture (its arrays): a component k ~ weights, then mean_k + temperature * L_k eps."""
    gmm = GMM.of(state)
    k_pick, k_noise = jax.random.split(key)
    pick = jax.random.categorical(k_pick, gmm.log_weights, shape=(n,))
    eps = jax.random.normal(k_noise, (n, gmm.means.shape[-1]))
    return gmm.means[pick] + temperature * jnp.einsum("nij,nj->ni", gmm.chols[pick], eps)


def _em_step(gmm: GMM, z: jax.Array, ridge: jax.Array) -> tuple[GMM, jax.Array]:
    """One EM iteration on z (N, D) -> (the new mixture, the mean log-likelihood under the old one)."""
    log_joint = gmm.log_weights[:, None] + component_log_probs(z, gmm.means, gmm.chols)  # (K, N)
    log_lik = jax.nn.logsumexp(log_joint, axis=0)
    resp = jnp.exp(log_joint - log_lik)  # responsibilities (K, N)
    counts = jnp.sum(resp, axis=1) + 1e-10
    means = resp @ z / counts[:, None]
    diff = z[None] - means[:, None]
    covs = jnp.einsum("kn,kni,knj->kij", resp, diff, diff) / counts[:, None, None] + ridge
    return GMM(means, jnp.linalg.cholesky(covs), jnp.log(counts / z.shape[0])), jnp.mean(log_lik)


def fit(z: jax.Array, key: jax.Array, components: int = 10, iterations: int = 200) -> tuple[dict, jax.Array]:
    """The sampler's contract: em's mixture as arrays, and the mean log-likelihood before each step."""
    if components > len(z):
        raise UserError(f"--components {components}: more than the {len(z)} training images")
    gmm, log_lik = em(z, key, components, iterations)
    return gmm.arrays(), log_lik


@compiling.jit(static_argnames=("k", "iterations"))
def em(z: jax.Array, key: jax.Array, k: int = 10, iterations: int = 200) -> tuple[GMM, jax.Array]:
    """A k-component full-covariance mixture fitted to z (N, D) by `iterations` EM steps from means
    at k distinct points of z drawn from `key`, each covariance the data's -> (the mixture, the mean
    log-likelihood before each step (iterations,)). A ridge of 1e-4 times the data's mean variance
    keeps each covariance positive definite."""
    n, d = z.shape
    z = z.astype(jnp.float32)
    data_cov = jnp.cov(z, rowvar=False).reshape(d, d)
    ridge = 1e-4 * jnp.trace(data_cov) / d * jnp.eye(d)
    start = z[jax.random.choice(key, n, (k,), replace=False)]
    chol = jnp.linalg.cholesky(data_cov + ridge)
    gmm = GMM(start, jnp.broadcast_to(chol, (k, d, d)), jnp.full((k,), -math.log(k)))
    return jax.lax.scan(lambda g, _: _em_step(g, z, ridge), gmm, None, length=iterations)
