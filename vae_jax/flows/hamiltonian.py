"""--flow hamiltonian: the Hamiltonian VAE's flow (Caterini, Doucet & Sejdinovic 2018, "Hamiltonian
Variational Auto-Encoder", arXiv:1805.11328, Algorithm 1). z_0 from the encoder's Gaussian and a
momentum gamma ~ N(0, I) start K = --flow-steps tempered leapfrog steps on the image's own target
U(z) = -log p(x, z):

    rho_0 = gamma / sqrt(beta_0)
    rho' = rho_{k-1} - eps/2 * grad U(z_{k-1});  z_k = z_{k-1} + eps * rho';  rho'' = rho' - eps/2 * grad U(z_k)
    rho_k = sqrt(beta_{k-1} / beta_k) rho'',   1 / sqrt(beta_k) = (1 - 1 / sqrt(beta_0)) k^2 / K^2 + 1 / sqrt(beta_0)

(quadratic tempering, beta_K = 1). The map (z_0, gamma) -> (z_K, rho_K) has unit Jacobian, so the
importance weight of the extended space is p(x, z_K) N(rho_K; 0, I) / (q(z_0|x) N(gamma; 0, I)):
the flow's "log-det" is log N(rho_K; 0, I) - log N(gamma; 0, I), and log q - log p and the
importance-sampled log p(x) keep their meaning. The leapfrog step sizes eps (one per unit) and
beta_0 in (0, 1) are learned, as in the paper, from --leapfrog-step and --beta0 (pythae's HVAE
defaults, 0.001 and 0.3; pythae keeps them fixed unless told).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

LogJoint = Callable[[jax.Array], jax.Array]  # z (n, D) -> log p(x, z) of the image, (n,)


def tempering(beta0: jax.Array, steps: int) -> jax.Array:
    """sqrt(beta_k) for k = 0..K (K = steps): (K + 1,), from sqrt(beta_0) to 1 (quadratic in k)."""
    k = jnp.arange(steps + 1, dtype=jnp.float32)
    inverse = (1 - 1 / jnp.sqrt(beta0)) * k**2 / steps**2 + 1 / jnp.sqrt(beta0)
    return 1 / inverse


def _log_standard_normal(x: jax.Array) -> jax.Array:
    return -0.5 * jnp.sum(x**2, axis=-1) - 0.5 * x.shape[-1] * math.log(2 * math.pi)


def leapfrog(
    z: jax.Array, rho: jax.Array, eps: jax.Array, sqrt_betas: jax.Array, log_joint: LogJoint
) -> tuple[jax.Array, jax.Array]:
    """K tempered leapfrog steps of (z, rho) (n, D) on U = -log_joint, K = len(sqrt_betas) - 1."""
    grad = jax.grad(lambda u: jnp.sum(log_joint(u)))  # rows are independent: each row's own gradient
    g = grad(z)
    for k in range(1, sqrt_betas.shape[0]):
        rho = rho + eps / 2 * g
        z = z + eps * rho
        g = grad(z)
        rho = (rho + eps / 2 * g) * (sqrt_betas[k - 1] / sqrt_betas[k])
    return z, rho


@dataclass(frozen=True)
class Hamiltonian:
    """The flow: K tempered leapfrog steps on the image's log p(x, z), with its own noise (the momenta)."""

    latent_dim: int  # D, units of z
    steps: int  # K, tempered leapfrog steps (--flow-steps)
    leapfrog_step: float  # eps at the start
    beta0: float  # beta_0 at the start
    context = 0  # it reads no context from the encoder

    @property
    def text(self) -> str:
        return f"diagonal Gaussian, then a hamiltonian flow: {self.steps} tempered leapfrog steps on log p(x, z)"

    def init(self, key: jax.Array) -> dict:
        """log eps (D,) and logit(beta_0) ()."""
        log_eps = jnp.full((self.latent_dim,), math.log(self.leapfrog_step), jnp.float32)
        return {"log_eps": log_eps, "beta0_logit": jnp.float32(math.log(self.beta0 / (1 - self.beta0)))}

    def __call__(
        self, params: dict, z: jax.Array, h: jax.Array, key: jax.Array, log_joint: LogJoint
    ) -> tuple[jax.Array, jax.Array]:
        """z_0 (n, D) -> (z_K (n, D), log N(rho_K; 0, I) - log N(gamma; 0, I) (n,)): see the module."""
        gamma = jax.random.normal(key, z.shape, z.dtype)
        sqrt_betas = tempering(jax.nn.sigmoid(params["beta0_logit"]), self.steps)
        z, rho = leapfrog(z, gamma / sqrt_betas[0], jnp.exp(params["log_eps"]), sqrt_betas, log_joint)
        return z, _log_standard_normal(rho) - _log_standard_normal(gamma)

    def diagonal(self, params: dict, z: jax.Array, h: jax.Array) -> tuple[jax.Array, None]:
        """(z_0, None): the steps need the image's log p(x, z) and momenta, so the mean path stays at
        the Gaussian's mean."""
        return z, None


def build(config) -> Hamiltonian:
    """--flow hamiltonian: --flow-steps leapfrog steps, from --leapfrog-step and --beta0."""
    return Hamiltonian(config.latent_dim, config.flow_steps, config.leapfrog_step, config.beta0)
