"""Diagonal Gaussian posterior and the likelihood heads p(x|z).

Nothing here knows about networks: a likelihood reads the raw decoder output
`out: (H, W, C, P)` (P = `n_params` numbers per pixel) and the data `x: (H, W, C)`.
Every log-probability is a normalised log-mass or log-density summed over pixels, in nats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Protocol

import jax
import jax.numpy as jnp

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(x: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """Elementwise log N(x; mean, exp(log_var)) in nats.

    Args:
        x: the values, any shape.
        mean: the Gaussian's means, broadcast against x.
        log_var: the log-variances, broadcast against x.

    Returns:
        The log-densities, the broadcast shape.
    """
    return -0.5 * (LOG_2PI + log_var + (x - mean) ** 2 * jnp.exp(-log_var))


def kl_standard_normal(mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """Per-dimension KL(N(mean, exp(log_var)) || N(0, 1)) in closed form, in nats.

    Args:
        mean: the posterior's means (..., D).
        log_var: its log-variances (..., D).

    Returns:
        (..., D), one KL per dimension (sum the last axis for the latent's).
    """
    return 0.5 * (jnp.exp(log_var) + mean**2 - 1.0 - log_var)


def kl_gaussians(mean: jax.Array, log_var: jax.Array, p_mean: jax.Array, p_log_var: jax.Array) -> jax.Array:
    """Elementwise KL(N(mean, exp(log_var)) || N(p_mean, exp(p_log_var))) in closed form, in nats.

    Args:
        mean: q's means.
        log_var: q's log-variances.
        p_mean: p's means.
        p_log_var: p's log-variances; all four broadcast.

    Returns:
        The KLs, the broadcast shape.
    """
    return 0.5 * (jnp.exp(log_var - p_log_var) + (mean - p_mean) ** 2 * jnp.exp(-p_log_var) - 1.0 + p_log_var - log_var)


def reparameterize(key: jax.Array, mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """The reparameterised draw z = mean + sigma * eps, eps ~ N(0, I): differentiable in mean and log_var.

    Args:
        key: the PRNG key eps is drawn from.
        mean: the means, any shape.
        log_var: the log-variances, the shape of mean.

    Returns:
        z, the shape of mean.
    """
    eps = jax.random.normal(key, mean.shape, mean.dtype)
    return mean + jnp.exp(0.5 * log_var) * eps


@jax.custom_jvp
def softplus(logits: jax.Array) -> jax.Array:
    """Elementwise log(1 + exp(l)) = max(l, 0) + log(1 + exp(-|l|)): one exp and one log, without
    the infinity and NaN branches of jax.nn.softplus (logaddexp) or a log1p, which make it about
    twice as slow on CPUs (what evaluation computes). Where exp(-|l|) < 2^-24, 1 + exp(-|l|) rounds
    to 1 and the result is max(l, 0): off by under 6e-8. Under differentiation (training) it is
    jax.nn.softplus, value and derivative: its gradient was the faster one in a training step."""
    return jnp.maximum(logits, 0.0) + jnp.log(1.0 + jnp.exp(-jnp.abs(logits)))


softplus.defjvp(lambda primals, tangents: jax.jvp(jax.nn.softplus, primals, tangents))


def bernoulli_log_prob(x: jax.Array, logits: jax.Array) -> jax.Array:
    """Elementwise log Bernoulli(x; sigmoid(l)) = x l - softplus(l), finite for any logit.

    Args:
        x: the pixels, in {0, 1} (or in [0, 1]: the cross-entropy).
        logits: the logits l, broadcast against x.

    Returns:
        The log-probabilities in nats, the broadcast shape.
    """
    return x * logits - softplus(logits)


@dataclass(frozen=True)
class Bernoulli:
    """Independent Bernoulli pixels parameterised by logits; data must be in {0, 1}."""

    binary: ClassVar[bool] = True
    discrete_8bit: ClassVar[bool] = False

    n_params: int = 1  # P: the decoder's raw numbers per pixel (one logit)

    def log_prob(self, out: jax.Array, x: jax.Array) -> jax.Array:
        return jnp.sum(bernoulli_log_prob(x, out[..., 0]).astype(jnp.float32))

    def mean(self, out: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(out[..., 0])

    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        return jax.random.bernoulli(key, self.mean(out)).astype(out.dtype)


@dataclass(frozen=True)
class Gaussian:
    """Independent Gaussian pixels with the decoder's mean and a fixed standard deviation."""

    binary: ClassVar[bool] = False
    discrete_8bit: ClassVar[bool] = False

    sigma: float  # the pixels' standard deviation (--sigma)
    n_params: int = 1  # P: the decoder's raw numbers per pixel (the mean)

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

    binary: ClassVar[bool] = False
    discrete_8bit: ClassVar[bool] = False

    min_log_sigma: float = math.log(1e-3)  # the floor log sigma is kept softly above
    n_params: int = 2  # P: the decoder's raw numbers per pixel (mean, raw log sigma)

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


BIN = 1.0 / 255.0  # width of one of the 256 pixel values on the [0, 1] scale


def discretized_logistic_log_prob(x: jax.Array, mean: jax.Array, log_scale: jax.Array) -> jax.Array:
    """Elementwise log P(x) of a logistic(mean, exp(log_scale)) discretized to the 256 values k/255
    of x in [0, 1]: the mass of the bin [x - BIN/2, x + BIN/2], with the outer bins reaching to
    -inf and +inf (PixelCNN++, Salimans et al. 2017). Sums to 1 over the 256 values."""
    centred = x - mean
    inv_s = jnp.exp(-log_scale)
    plus_in = inv_s * (centred + BIN / 2)
    min_in = inv_s * (centred - BIN / 2)
    log_cdf_plus = plus_in - jax.nn.softplus(plus_in)  # log sigmoid(plus_in): the x = 0 bin
    log_one_minus_cdf_min = -jax.nn.softplus(min_in)  # log(1 - sigmoid(min_in)): the x = 1 bin
    cdf_delta = jax.nn.sigmoid(plus_in) - jax.nn.sigmoid(min_in)
    mid_in = inv_s * centred
    log_pdf_mid = mid_in - log_scale - 2.0 * jax.nn.softplus(mid_in)  # density at the bin centre
    # far in a tail the difference of two sigmoids underflows: use density x bin width instead
    log_mid = jnp.where(cdf_delta > 1e-5, jnp.log(jnp.maximum(cdf_delta, 1e-12)), log_pdf_mid + jnp.log(BIN))
    return jnp.where(x < BIN / 2, log_cdf_plus, jnp.where(x > 1 - BIN / 2, log_one_minus_cdf_min, log_mid))


@dataclass(frozen=True)
class DiscretizedLogistic:
    """8-bit pixels: a logistic per pixel with the decoder's (mean, log scale), discretized to 256 bins."""

    binary: ClassVar[bool] = False
    discrete_8bit: ClassVar[bool] = True

    min_log_scale: float = -7.0  # the floor of the logistic's log scale
    n_params: int = 2  # P: the decoder's raw numbers per pixel (mean, log scale)

    def log_prob(self, out: jax.Array, x: jax.Array) -> jax.Array:
        log_scale = jnp.maximum(out[..., 1], self.min_log_scale)
        return jnp.sum(discretized_logistic_log_prob(x, out[..., 0], log_scale).astype(jnp.float32))

    def mean(self, out: jax.Array) -> jax.Array:
        return jnp.clip(out[..., 0], 0.0, 1.0)

    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        u = jax.random.uniform(key, out.shape[:-1], out.dtype, 1e-5, 1 - 1e-5)
        x = out[..., 0] + jnp.exp(out[..., 1]) * (jnp.log(u) - jnp.log1p(-u))
        return jnp.clip(jnp.round(x * 255.0) / 255.0, 0.0, 1.0)


@dataclass(frozen=True)
class DiscretizedLogisticMixture:
    """8-bit pixels: a mixture of `k` discretized logistics per sub-pixel, from the decoder's
    (logits, means, log scales), k of each (PixelCNN++ without its channel coupling)."""

    binary: ClassVar[bool] = False
    discrete_8bit: ClassVar[bool] = True

    k: int = 5  # logistics per sub-pixel (--mixtures)
    min_log_scale: float = -7.0  # the floor of each logistic's log scale

    @property
    def n_params(self) -> int:
        return 3 * self.k

    def _split(self, out: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        logits, means, log_scales = jnp.split(out, 3, axis=-1)
        return jax.nn.log_softmax(logits, axis=-1), means, jnp.maximum(log_scales, self.min_log_scale)

    def log_prob(self, out: jax.Array, x: jax.Array) -> jax.Array:
        log_pi, means, log_scales = self._split(out)
        per_component = discretized_logistic_log_prob(x[..., None], means, log_scales)
        return jnp.sum(jax.nn.logsumexp(log_pi + per_component, axis=-1).astype(jnp.float32))

    def mean(self, out: jax.Array) -> jax.Array:
        log_pi, means, _ = self._split(out)
        return jnp.clip(jnp.sum(jnp.exp(log_pi) * means, axis=-1), 0.0, 1.0)

    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        k_comp, k_val = jax.random.split(key)
        log_pi, means, log_scales = self._split(out)
        comp = jax.random.categorical(k_comp, log_pi)[..., None]
        pick = lambda a: jnp.take_along_axis(a, comp, axis=-1)[..., 0]  # noqa: E731
        chosen = jnp.stack([pick(means), pick(log_scales)], axis=-1)
        return DiscretizedLogistic(self.min_log_scale).sample(k_val, chosen)


class Likelihood(Protocol):
    """p(x|z) read from the decoder's raw output out: (H, W, C, P) for data x: (H, W, C)."""

    n_params: int  # P: raw numbers per pixel
    binary: ClassVar[bool]  # for binary pixels {0, 1}: images are binarized for it
    discrete_8bit: ClassVar[bool]  # a mass on the 256 values k/255: bits/dim comparable with the literature's

    def log_prob(self, out: jax.Array, x: jax.Array) -> jax.Array:
        """log p(x|z) of one image.

        Args:
            out: the decoder's raw output (H, W, C, P).
            x: the image (H, W, C), as the likelihood reads it (binary, [0, 1] or the 256 values k/255).

        Returns:
            The log-likelihood summed over pixels, a float32 scalar in nats.
        """

    def mean(self, out: jax.Array) -> jax.Array:
        """E[x|z], the image the model expects.

        Args:
            out: the decoder's raw output (..., H, W, C, P).

        Returns:
            (..., H, W, C) in [0, 1].
        """

    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        """A draw x ~ p(x|z).

        Args:
            key: the PRNG key of the draw.
            out: the decoder's raw output (..., H, W, C, P).

        Returns:
            (..., H, W, C).
        """


def make_likelihood(name: str, sigma: float = 0.1, mixtures: int = 5) -> Likelihood:
    """The likelihood `--likelihood` names.

    Args:
        name: one of config.LIKELIHOODS: 'bernoulli', 'gaussian', 'gaussian-learned',
            'discretized-logistic', 'logistic-mixture'.
        sigma: the fixed standard deviation of 'gaussian' pixels.
        mixtures: the logistics per sub-pixel of 'logistic-mixture'.

    Returns:
        The `Likelihood`.
    """
    if name == "bernoulli":
        return Bernoulli()
    if name == "gaussian":
        return Gaussian(sigma)
    if name == "gaussian-learned":
        return GaussianLearned()
    if name == "discretized-logistic":
        return DiscretizedLogistic()
    if name == "logistic-mixture":
        return DiscretizedLogisticMixture(mixtures)
    raise ValueError(f"unknown likelihood {name!r}")
