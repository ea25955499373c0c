"""Priors p(z) that are mixtures of diagonal Gaussians: a learned mixture of Gaussians, and the
VampPrior, whose components are the encoder's posteriors at learned pseudo-inputs.

Nothing here knows about networks: the VampPrior is given the encoder as a function. Each prior
is a static description with pure functions of its own parameters (params['prior']):

    components(params, encode) -> (means (K, D), log_vars (K, D), log_weights (K,))

and the mixture maths below works on those three arrays. Weights are normalised: logsumexp = 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax.distributions import gaussian_log_prob

Components = tuple[jax.Array, jax.Array, jax.Array]  # means (K, D), log_vars (K, D), log_weights (K,)
Encode = Callable[[jax.Array], tuple[jax.Array, jax.Array]]  # x (K, H, W, C) -> (mean, log_var), each (K, D)

PSEUDO_MEAN, PSEUDO_STD = 0.05, 0.01  # pseudo-inputs start as near-black noise (Tomczak & Welling's code)


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


@dataclass(frozen=True)
class MixtureOfGaussians:
    """p(z) = sum_k w_k N(mean_k, diag var_k), means, variances and weights learned."""

    k: int

    @property
    def text(self) -> str:
        return f"mixture of {self.k} Gaussians, means, variances and weights learned"

    def init(self, key: jax.Array, latent_dim: int, image_shape: tuple[int, int, int]) -> dict[str, jax.Array]:
        """Means drawn from N(0, I) (distinct, so that the components can part), unit variances, equal weights."""
        return {
            "means": jax.random.normal(key, (self.k, latent_dim), jnp.float32),
            "log_vars": jnp.zeros((self.k, latent_dim), jnp.float32),
            "logits": jnp.zeros((self.k,), jnp.float32),
        }

    def components(self, prior: dict[str, jax.Array], encode: Encode) -> Components:
        return prior["means"], prior["log_vars"], jax.nn.log_softmax(prior["logits"])


@dataclass(frozen=True)
class VampPrior:
    """p(z) = (1/K) sum_k q(z | u_k): the encoder's Gaussians at K learned pseudo-inputs u_k
    (Tomczak & Welling 2018), each an image clipped to [0, 1]."""

    k: int

    @property
    def text(self) -> str:
        return f"VampPrior, {self.k} learned pseudo-inputs: (1/K) sum_k q(z|u_k)"

    def init(self, key: jax.Array, latent_dim: int, image_shape: tuple[int, int, int]) -> dict[str, jax.Array]:
        """Pseudo-inputs (K, H, W, C) drawn from N(PSEUDO_MEAN, PSEUDO_STD^2): noise, not training images."""
        return {"pseudo_inputs": PSEUDO_MEAN + PSEUDO_STD * jax.random.normal(key, (self.k, *image_shape), jnp.float32)}

    def pseudo_inputs(self, prior: dict[str, jax.Array]) -> jax.Array:
        """The pseudo-inputs as images (K, H, W, C) in [0, 1]."""
        return jnp.clip(prior["pseudo_inputs"], 0.0, 1.0)

    def components(self, prior: dict[str, jax.Array], encode: Encode) -> Components:
        means, log_vars = encode(self.pseudo_inputs(prior))
        return means, log_vars, jnp.full((self.k,), -math.log(self.k), jnp.float32)


Mixture = MixtureOfGaussians | VampPrior
