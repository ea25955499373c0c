"""The maximum mean discrepancy (Gretton et al. 2012) between two samples, with the kernels of the
autoencoders that match q(z) to p(z) by it (WAE, Tolstikhin et al. 2018 §4; InfoVAE, Zhao et al. 2019):

    MMD^2(P, Q) = E k(x, x') + E k(y, y') - 2 E k(x, y),   x, x' ~ P,  y, y' ~ Q.

Kernels, with C = 2 D sigma^2 for z in R^D under a prior of variance sigma^2 = 1 (WAE §4):
inverse multiquadratics summed over scales s, ``k(x, y) = sum_s sC / (sC + |x - y|^2)`` (WAE's code),
and the Gaussian (RBF) kernel ``exp(-|x - y|^2 / C)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

KERNELS = ("imq", "rbf")
IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def squared_distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """The squared distances ``|a_i - b_j|^2``.

    Args:
        a: (n, D).
        b: (m, D).

    Returns:
        (n, m).
    """
    return jnp.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)


def kernel_matrix(a: jax.Array, b: jax.Array, kernel: str = "imq", variance: float = 1.0) -> jax.Array:
    """The kernel k(a_i, b_j) of every pair.

    Args:
        a: (n, D).
        b: (m, D).
        kernel: one of KERNELS: 'imq' (a sum over IMQ_SCALES) or 'rbf'.
        variance: the prior's per-unit variance sigma^2, which sets the scale C = 2 D sigma^2.

    Returns:
        (n, m).
    """
    c = 2.0 * a.shape[-1] * variance
    d2 = squared_distances(a, b)
    if kernel == "rbf":
        return jnp.exp(-d2 / c)
    if kernel == "imq":
        return sum(s * c / (s * c + d2) for s in IMQ_SCALES)
    raise ValueError(f"unknown kernel {kernel!r}: one of {', '.join(KERNELS)}")


def _off_diagonal_mean(k: jax.Array) -> jax.Array:
    n = k.shape[0]
    return (jnp.sum(k) - jnp.sum(jnp.diagonal(k))) / (n * (n - 1))


def mmd(a: jax.Array, b: jax.Array, kernel: str = "imq", unbiased: bool = True, variance: float = 1.0) -> jax.Array:
    """The squared MMD between two samples.

    Args:
        a: (n, D).
        b: (m, D).
        kernel: one of KERNELS: 'imq' (a sum over IMQ_SCALES) or 'rbf'.
        unbiased: the U-statistic (the pairs i != j within a sample: what WAE trains on; it can be below 0);
            else the V-statistic (every pair, >= 0, biased upwards by the kernel's diagonal).
        variance: the prior's per-unit variance sigma^2, which sets the scale C = 2 D sigma^2.

    Returns:
        A scalar.
    """
    k_aa, k_bb, k_ab = (kernel_matrix(u, v, kernel, variance) for u, v in ((a, a), (b, b), (a, b)))
    if unbiased:
        return _off_diagonal_mean(k_aa) + _off_diagonal_mean(k_bb) - 2.0 * jnp.mean(k_ab)
    return jnp.mean(k_aa) + jnp.mean(k_bb) - 2.0 * jnp.mean(k_ab)
