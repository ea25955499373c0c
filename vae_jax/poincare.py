"""The Poincaré ball of curvature -c and the wrapped normal distribution on it (Mathieu et al. 2019,
"Continuous Hierarchical Representations with Poincaré Variational Auto-Encoders", arXiv:1901.06033;
the maps are Ganea et al. 2018's).

The ball is {z in R^d : c norm(z)^2 < 1} with the metric lambda_z^2 I, lambda_z = 2 / (1 - c norm(z)^2).
A wrapped normal N_W(mu, sigma^2) draws v ~ N(0, diag sigma^2) in the tangent space at the origin,
carries it to mu by parallel transport and maps it onto the ball by the exponential map at mu:

    z = exp_mu(PT_{0 -> mu}(v / lambda_0)),    log N_W(z) = log N(v; 0, sigma^2) - (d - 1) log(sinh(r) / r),
    r = sqrt(c) d_c(mu, z),  v = lambda_0 PT_{mu -> 0}(log_mu(z)),

a density with respect to the ball's Riemannian volume (lambda_z^d dz). Shapes: points and
tangent vectors (..., d); c a positive Python number.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vae_jax.distributions import gaussian_log_prob

BALL_EPS = 4e-3  # points are kept within (1 - BALL_EPS) / sqrt(c) of the origin (float32), as geoopt does
MIN_NORM = 1e-15


def _norm(x: jax.Array) -> jax.Array:
    return jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), MIN_NORM)


def _artanh(x: jax.Array) -> jax.Array:
    return jnp.arctanh(jnp.clip(x, -1 + 1e-7, 1 - 1e-7))


def project(x: jax.Array, c: float) -> jax.Array:
    """x moved radially inside the ball, to at most (1 - BALL_EPS) / sqrt(c) from the origin.

    Args:
        x: points (..., d).
        c: the curvature's magnitude (the ball has curvature -c, radius 1 / sqrt(c)).

    Returns:
        (..., d).
    """
    limit = (1 - BALL_EPS) / c**0.5
    norm = _norm(x)
    return jnp.where(norm > limit, x / norm * limit, x)


def conformal_factor(x: jax.Array, c: float) -> jax.Array:
    """The conformal factor lambda_x = 2 / (1 - c norm(x)^2).

    Args:
        x: points of the ball (..., d).
        c: the curvature's magnitude (the ball has curvature -c, radius 1 / sqrt(c)).

    Returns:
        (..., 1).
    """
    return 2 / (1 - c * jnp.sum(x * x, axis=-1, keepdims=True))


def mobius_add(x: jax.Array, y: jax.Array, c: float) -> jax.Array:
    """Möbius addition x (+)_c y.

    Args:
        x: points of the ball (..., d).
        y: points of the ball, broadcast against x.
        c: the curvature's magnitude (the ball has curvature -c, radius 1 / sqrt(c)).

    Returns:
        (..., d).
    """
    xy = jnp.sum(x * y, axis=-1, keepdims=True)
    x2, y2 = jnp.sum(x * x, axis=-1, keepdims=True), jnp.sum(y * y, axis=-1, keepdims=True)
    numerator = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    return numerator / jnp.maximum(1 + 2 * c * xy + c**2 * x2 * y2, MIN_NORM)


def expmap0(v: jax.Array, c: float) -> jax.Array:
    """The exponential map at the origin: tanh(sqrt(c) norm(v)) v / (sqrt(c) norm(v)), onto the ball.

    Args:
        v: tangent vectors at the origin (..., d).
        c: the curvature's magnitude (the ball has curvature -c, radius 1 / sqrt(c)).

    Returns:
        Points of the ball (..., d).
    """
    norm = _norm(v)
    return project(jnp.tanh(c**0.5 * norm) * v / (c**0.5 * norm), c)


def logmap0(z: jax.Array, c: float) -> jax.Array:
    """The logarithmic map at the origin (the inverse of expmap0): artanh(sqrt(c) norm(z)) z / (sqrt(c) norm(z)).

    Args:
        z: points of the ball (..., d).
        c: the curvature's magnitude (the ball has curvature -c, radius 1 / sqrt(c)).

    Returns:
        Tangent vectors at the origin (..., d).
    """
    norm = _norm(z)
    return _artanh(c**0.5 * norm) * z / (c**0.5 * norm)


def expmap(x: jax.Array, v: jax.Array, c: float) -> jax.Array:
    """The exponential map at x of the tangent vector v.

    Args:
        x: points of the ball (..., d).
        v: tangent vectors at x (..., d).
        c: the curvature's magnitude (the ball has curvature -c, radius 1 / sqrt(c)).

    Returns:
        Points of the ball (..., d).
    """
    norm = _norm(v)
    step = jnp.tanh(c**0.5 * conformal_factor(x, c) * norm / 2) * v / (c**0.5 * norm)
    return project(mobius_add(x, step, c), c)


def logmap(x: jax.Array, z: jax.Array, c: float) -> jax.Array:
    """The logarithmic map at x of the point z (the inverse of expmap at x).

    Args:
        x: points of the ball (..., d).
        z: points of the ball (..., d).
        c: the curvature's magnitude (the ball has curvature -c, radius 1 / sqrt(c)).

    Returns:
        Tangent vectors at x (..., d).
    """
    u = mobius_add(-x, z, c)
    norm = _norm(u)
    return 2 / (c**0.5 * conformal_factor(x, c)) * _artanh(c**0.5 * norm) * u / norm


def distance(x: jax.Array, z: jax.Array, c: float) -> jax.Array:
    """The geodesic distance d_c(x, z) = (2 / sqrt(c)) artanh(sqrt(c) norm(-x (+)_c z)).

    Args:
        x: points of the ball (..., d).
        z: points of the ball (..., d).
        c: the curvature's magnitude (the ball has curvature -c, radius 1 / sqrt(c)).

    Returns:
        (...,).
    """
    return 2 / c**0.5 * _artanh(c**0.5 * _norm(mobius_add(-x, z, c))[..., 0])


def wrap(mu: jax.Array, v: jax.Array, c: float) -> jax.Array:
    """The point of the ball that a draw v of the tangent Gaussian at the origin becomes:
    exp_mu(PT_{0 -> mu}(v / lambda_0)), where PT_{0 -> mu} multiplies by lambda_0 / lambda_mu.

    Args:
        mu: the wrapped normal's mean, on the ball (..., d).
        v: draws of N(0, Sigma) in the tangent space at the origin (..., d).
        c: the curvature's magnitude (the ball has curvature -c, radius 1 / sqrt(c)).

    Returns:
        Points of the ball (..., d).
    """
    return expmap(mu, v / conformal_factor(mu, c), c)


def sample(key: jax.Array, mu: jax.Array, log_var: jax.Array, c: float) -> jax.Array:
    """Reparameterised draws z ~ N_W(mu, diag exp(log_var)), the wrapped normal.

    Args:
        key: the PRNG key of the draws.
        mu: the means, on the ball (..., d).
        log_var: the tangent Gaussian's log-variances (..., d).
        c: the curvature's magnitude (the ball has curvature -c, radius 1 / sqrt(c)).

    Returns:
        Points of the ball (..., d).
    """
    return wrap(mu, jnp.exp(0.5 * log_var) * jax.random.normal(key, mu.shape, mu.dtype), c)


def log_prob(z: jax.Array, mu: jax.Array, log_var: jax.Array, c: float) -> jax.Array:
    """log N_W(z; mu, diag exp(log_var)) with respect to the ball's Riemannian volume.

    Args:
        z: points of the ball (..., d).
        mu: the means, on the ball (..., d).
        log_var: the tangent Gaussian's log-variances (..., d).
        c: the curvature's magnitude (the ball has curvature -c, radius 1 / sqrt(c)).

    Returns:
        (...,) log-densities in nats.
    """
    d = z.shape[-1]
    v = logmap(mu, z, c) * conformal_factor(mu, c)  # PT_{mu -> 0} (times lambda_mu / lambda_0), then times lambda_0
    r = c**0.5 * distance(mu, z, c)
    log_sinh_over_r = jnp.where(r > 1e-4, jnp.log(jnp.sinh(jnp.maximum(r, 1e-4)) / jnp.maximum(r, 1e-4)), r**2 / 6)
    return jnp.sum(gaussian_log_prob(v, 0.0, log_var), axis=-1) - (d - 1) * log_sinh_over_r
