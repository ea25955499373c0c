"""Diagonal Gaussian posterior and the likelihood heads p(x|z).

Nothing here knows about networks: a likelihood reads the raw decoder output
`out: (H, W, C, P)` (P = `n_params` numbers per pixel) and the data `x: (H, W, C)`.
Every log-probability is a normalised log-mass or log-density summed over pixels, in nats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(x: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """Elementwise log N(x; mean, exp(log_var)); all arguments broadcast."""
    return -0.5 * (LOG_2PI + log_var + (x - mean) ** 2 * jnp.exp(-log_var))


def kl_standard_normal(mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """Per-dimension KL(N(mean, exp(log_var)) || N(0, 1)) in closed form. Shapes: (..., D) -> (..., D)."""
    return 0.5 * (jnp.exp(log_var) + mean**2 - 1.0 - log_var)


def reparameterize(key: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """z = mean + sigma * eps with eps ~ N(0, I) drawn from `key`; differentiable in mean, log_var."""
    eps = jax.random.normal(key, mean.shape, mean.dtype)
    return mean + jnp.exp(0.5 * log_var) * eps


def bernoulli_log_prob(x: jax.Array, logits: jax.Array) -> jax.Array:
    """Elementwise log Bernoulli(x; sigmoid(logits)) = x*l - softplus(l); finite for any logit."""
    return x * logits - jax.nn.softplus(logits)


@dataclass(frozen=True)
class Bernoulli:
    """Independent Bernoulli pixels parameterised by logits; data must be in {0, 1}."""

    n_params: int = 1

    def log_prob(self, out: jax.Array, x: jax.Array) -> jax.Array:
        return jnp.sum(bernoulli_log_prob(x, out[..., 0]).astype(jnp.float32))

    def mean(self, out: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(out[..., 0])

    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        return jax.random.bernoulli(key, self.mean(out)).astype(out.dtype)


@dataclass(frozen=True)
class Gaussian:
    """Independent Gaussian pixels with the decoder's mean and a fixed standard deviation."""

    sigma: float
    n_params: int = 1

    def log_prob(self, out: jax.Array, x: jax.Array) -> jax.Array:
        log_var = 2.0 * math.log(self.sigma)
        return jnp.sum(gaussian_log_prob(x, out[..., 0], log_var).astype(jnp.float32))

    def mean(self, out: jax.Array) -> jax.Array:
        return out[..., 0]

    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        return out[..., 0] + self.sigma * jax.random.normal(key, out.shape[:-1], out.dtype)


@dataclass(frozen=True)
class GaussianLearned:
    """Independent Gaussian pixels; the decoder outputs (mean, raw log sigma) per pixel.

    log sigma is kept softly above `min_log_sigma`: pixels that are exactly constant in the data
    (MNIST borders) would otherwise drive sigma to 0 and the density to infinity.
    """

    min_log_sigma: float = math.log(1e-3)
    n_params: int = 2

    def log_sigma(self, out: jax.Array) -> jax.Array:
        return self.min_log_sigma + jax.nn.softplus(out[..., 1] - self.min_log_sigma)

    def log_prob(self, out: jax.Array, x: jax.Array) -> jax.Array:
        lp = gaussian_log_prob(x, out[..., 0], 2.0 * self.log_sigma(out))
        return jnp.sum(lp.astype(jnp.float32))

    def mean(self, out: jax.Array) -> jax.Array:
        return out[..., 0]

    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        eps = jax.random.normal(key, out.shape[:-1], out.dtype)
        return out[..., 0] + jnp.exp(self.log_sigma(out)) * eps


Likelihood = Bernoulli | Gaussian | GaussianLearned


def make_likelihood(name: str, sigma: float = 0.1) -> Likelihood:
    """The likelihood head called `name` ('bernoulli', 'gaussian', 'gaussian-learned')."""
    if name == "bernoulli":
        return Bernoulli()
    if name == "gaussian":
        return Gaussian(sigma)
    if name == "gaussian-learned":
        return GaussianLearned()
    raise ValueError(f"unknown likelihood {name!r}")
