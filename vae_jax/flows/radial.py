"""--flow radial: radial flows (Rezende & Mohamed 2015, "Variational Inference with Normalizing Flows",
eq. 14). A step contracts or expands z around a point z_0::

    f(z) = z + beta h(alpha, r) (z - z_0),   r = |z - z_0|,   h(alpha, r) = 1 / (alpha + r),
    log |det df/dz| = (D - 1) log(1 + beta h) + log(1 + beta h + beta h'(alpha, r) r),

invertible when beta >= -alpha (their appendix A.2): alpha = softplus(a) > 0 and beta = -alpha + softplus(b).
z_0, a and b come from the encoder's context (vae_jax.flows.steps)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae_jax.flows.steps import Steps


def radial(z: jax.Array, z0: jax.Array, alpha: jax.Array, beta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One radial step f(z) = z + beta h(alpha, r) (z - z0) around z0.

    Args:
        z: (B, D).
        z0: the centre (B, D).
        alpha: (B,), > 0.
        beta: (B,), >= -alpha.

    Returns:
        (f(z) (B, D), log-det (B,)).
    """
    diff = z - z0
    r = jnp.sqrt(jnp.sum(diff**2, axis=-1))
    h = 1.0 / (alpha + r)
    # 1 + beta (h + h' r) = 1 + beta alpha / (alpha + r)^2: positive for beta >= -alpha
    log_det = (z.shape[-1] - 1) * jnp.log1p(beta * h) + jnp.log1p(beta * alpha * h**2)
    return z + (beta * h)[:, None] * diff, log_det


class RadialStep(nn.Module):
    """(z (B, D), context h (B, H)) -> (f(z), log-det (B,)) with z_0, alpha, beta a dense layer of h."""

    latent_dim: int

    @nn.compact
    def __call__(self, z: jax.Array, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        d = self.latent_dim
        raw = nn.Dense(d + 2)(h)
        alpha = jax.nn.softplus(raw[:, d])
        return radial(z, raw[:, :d], alpha, -alpha + jax.nn.softplus(raw[:, d + 1]))


def build(config) -> Steps:
    """--flow radial: --flow-steps steps, their parameters from --flow-hidden units of encoder context."""
    return Steps(config.latent_dim, config.flow_steps, config.flow_hidden, RadialStep, "radial")
