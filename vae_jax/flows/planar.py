"""--flow planar: planar flows (Rezende & Mohamed 2015, "Variational Inference with Normalizing Flows",
eq. 10-12). A step moves z along u by a squashed projection on w::

    f(z) = z + u tanh(w'z + b),   log |det df/dz| = log |1 + u'psi(z)|,   psi(z) = (1 - tanh^2(w'z + b)) w,

invertible when w'u >= -1 (their appendix A.1): u is replaced by u + (m(w'u) - w'u) w / (w'w),
m(x) = -1 + softplus(x). u, w and b come from the encoder's context (vae_jax.flows.steps)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae_jax.flows.steps import Steps

EPS = 1e-7


def invertible_u(u: jax.Array, w: jax.Array) -> jax.Array:
    """u moved along w so that w'u >= -1: the step is then invertible.

    Args:
        u: (B, D).
        w: (B, D).

    Returns:
        (B, D).
    """
    wu = jnp.sum(w * u, axis=-1, keepdims=True)
    return u + (jax.nn.softplus(wu) - 1.0 - wu) * w / (jnp.sum(w * w, axis=-1, keepdims=True) + EPS)


def planar(z: jax.Array, u: jax.Array, w: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One planar step f(z) = z + u tanh(w'z + b).

    Args:
        z: (B, D).
        u: (B, D), already invertible (`invertible_u`).
        w: (B, D).
        b: (B,).

    Returns:
        (f(z) (B, D), log-det (B,)).
    """
    t = jnp.tanh(jnp.sum(w * z, axis=-1) + b)
    log_det = jnp.log(jnp.abs(1.0 + (1.0 - t**2) * jnp.sum(w * u, axis=-1)) + EPS)
    return z + u * t[:, None], log_det


class PlanarStep(nn.Module):
    """(z (B, D), context h (B, H)) -> (f(z), log-det (B,)) with u, w, b a dense layer of h."""

    latent_dim: int

    @nn.compact
    def __call__(self, z: jax.Array, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        d = self.latent_dim
        raw = nn.Dense(2 * d + 1)(h)
        u, w, b = raw[:, :d], raw[:, d : 2 * d], raw[:, 2 * d]
        return planar(z, invertible_u(u, w), w, b)


def build(config) -> Steps:
    """--flow planar: --flow-steps steps, their parameters from --flow-hidden units of encoder context."""
    return Steps(config.latent_dim, config.flow_steps, config.flow_hidden, PlanarStep, "planar")
