"""Priors p(z) that are mixtures of diagonal Gaussians, and --prior mog: a learned mixture of Gaussians.

A mixture prior gives its components from its own parameters (params['prior']),

    components(params, encode) -> (means (K, D), log_vars (K, D), log_weights (K,)),

and the mixture maths below works on those three arrays. Weights are normalised: logsumexp = 0.
Its KL against a Gaussian q has no closed form: the ELBO estimates it from the drawn z.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax.distributions import gaussian_log_prob
from vae_jax.priors.base import Encode, Prior

Components = tuple[jax.Array, jax.Array, jax.Array]  # means (K, D), log_vars (K, D), log_weights (K,)


def mixture_log_prob(z: jax.Array, components: Components) -> jax.Array:
    """log sum_k w_k N(z; mean_k, diag exp(log_var_k)) of z (..., D) -> (...)."""
    means, log_vars, log_weights = components
    per_component = jnp.sum(gaussian_log_prob(z[..., None, :], means, log_vars), axis=-1)  # (..., K)
    return jax.nn.logsumexp(log_weights + per_component, axis=-1)


def mixture_moments(components: Components) -> tuple[jax.Array, jax.Array]:
    """The mixture's mean and log-variance per unit, each (D,) (the moments of each marginal)."""
    means, log_vars, log_weights = components
    w = jnp.exp(log_weights)[:, None]
    mean = jnp.sum(w * means, axis=0)
    var = jnp.sum(w * (jnp.exp(log_vars) + means**2), axis=0) - mean**2
    return mean, jnp.log(jnp.maximum(var, 1e-12))


def mixture_sample(key: jax.Array, components: Components, n: int, temperature: float = 1.0) -> jax.Array:
    """n draws (n, D): a component k ~ w, then z ~ N(mean_k, (temperature * std_k)^2)."""
    means, log_vars, log_weights = components
    k_pick, k_noise = jax.random.split(key)
    pick = jax.random.categorical(k_pick, log_weights, shape=(n,))
    eps = jax.random.normal(k_noise, (n, means.shape[-1]))
    return means[pick] + temperature * jnp.exp(0.5 * log_vars[pick]) * eps


class MixturePrior(Prior):
    """A prior that is a mixture of diagonal Gaussians: a subclass gives `components`."""

    def components(self, params: dict[str, jax.Array], encode: Encode) -> Components:
        raise NotImplementedError

    def log_prob(self, params, z: jax.Array, c, encode: Encode) -> jax.Array:
        return mixture_log_prob(z, self.components(params, encode))

    def moments(self, params, c, encode: Encode) -> tuple[jax.Array, jax.Array]:
        return mixture_moments(self.components(params, encode))

    def sample(self, params, key: jax.Array, n: int, c, temperature: float, encode: Encode) -> jax.Array:
        """A component, then its Gaussian with its standard deviation times `temperature`."""
        return mixture_sample(key, self.components(params, encode), n, temperature)


@dataclass(frozen=True)
class MixtureOfGaussians(MixturePrior):
    """p(z) = sum_k w_k N(mean_k, diag var_k), means, variances and weights learned."""

    k: int  # K, the components (--components)
    latent_dim: int = 0  # units of z

    @property
    def text(self) -> str:
        return f"mixture of {self.k} Gaussians, means, variances and weights learned"

    def init(self, key: jax.Array, image_shape: tuple[int, int, int]) -> dict[str, jax.Array]:
        """Means drawn from N(0, I) (distinct, so that the components can part), unit variances, equal weights."""
        return {
            "means": jax.random.normal(key, (self.k, self.latent_dim), jnp.float32),
            "log_vars": jnp.zeros((self.k, self.latent_dim), jnp.float32),
            "logits": jnp.zeros((self.k,), jnp.float32),
        }

    def components(self, params: dict[str, jax.Array], encode: Encode) -> Components:
        return params["means"], params["log_vars"], jax.nn.log_softmax(params["logits"])


def build(config, n_conditions: int) -> MixtureOfGaussians:
    return MixtureOfGaussians(config.components, config.latent_dim)
