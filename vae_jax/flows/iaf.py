"""Inverse autoregressive flow (Kingma et al. 2016), the amortized kind: each step is a MADE-style
network of z and a context vector h(x) from the encoder, so the flow depends on the image.

One step maps z (B, D) to z' = m(z, h) + s(z, h) * z, where output i of m and s depends only on
z_<i (in the step's order; odd steps reverse it). Its Jacobian is triangular with diagonal s, so
log |det dz'/dz| = sum_i log s_i, and log q(z_T|x) = log N(z_0; mean, var) - sum_t log-det_t.
s = 2 sigmoid(a) keeps each scale in (0, 2): with the output layer at zero (how it starts) a step
is the identity, and the flow starts as the plain Gaussian posterior.
"""

from __future__ import annotations

from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

LOG_2 = float(np.log(2.0))


def degrees(latent_dim: int, hidden: int, reverse: bool) -> tuple[np.ndarray, np.ndarray]:
    """MADE degrees: of the inputs (and outputs), a permutation of 1..D, and of the hidden units, in 1..D-1."""
    inputs = np.arange(1, latent_dim + 1)
    hidden_degrees = np.arange(hidden) % max(latent_dim - 1, 1) + 1
    return (inputs[::-1] if reverse else inputs), hidden_degrees


class MaskedDense(nn.Module):
    """A dense layer whose kernel is multiplied by a fixed 0/1 mask (n_in, n_out)."""

    mask: tuple[tuple[bool, ...], ...]
    zero: bool = False  # start at zero (kernel and bias)

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        mask = np.asarray(self.mask, np.float32)
        init = nn.initializers.zeros if self.zero else nn.initializers.lecun_normal()
        kernel = self.param("kernel", init, mask.shape)
        bias = self.param("bias", nn.initializers.zeros, (mask.shape[1],))
        return h @ (kernel * mask) + bias


class IAFStep(nn.Module):
    """(z (B, D), h (B, H_ctx)) -> (m, log s), each (B, D); output i depends on z only through its
    inputs of lower degree. Two masked hidden layers of `hidden` units; h enters the first one."""

    latent_dim: int
    hidden: int
    reverse: bool

    @nn.compact
    def __call__(self, z: jax.Array, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        d_in, d_hid = degrees(self.latent_dim, self.hidden, self.reverse)
        as_mask = lambda a: tuple(map(tuple, a.tolist()))  # noqa: E731 (hashable module attributes)
        to_hidden = as_mask(d_hid[None, :] >= d_in[:, None])
        hidden_hidden = as_mask(d_hid[None, :] >= d_hid[:, None])
        to_out = as_mask(np.tile(d_in[None, :] > d_hid[:, None], (1, 2)))
        a = nn.elu(MaskedDense(to_hidden)(z) + nn.Dense(self.hidden)(h))
        a = nn.elu(MaskedDense(hidden_hidden)(a))
        m, raw = jnp.split(MaskedDense(to_out, zero=True)(a), 2, axis=-1)
        return m, LOG_2 + jax.nn.log_sigmoid(raw)


@dataclass(frozen=True)
class IAF:
    """A flow of `steps` IAF steps for a latent of `latent_dim` units, each with `hidden` units; the
    encoder gives it a context of `hidden` numbers."""

    latent_dim: int  # D, units of z
    steps: int  # how many IAF steps (--flow-steps)
    hidden: int  # units of each step's hidden layers and of the encoder's context (--flow-hidden)

    @property
    def context(self) -> int:
        return self.hidden

    @property
    def text(self) -> str:
        return f"diagonal Gaussian, then {self.steps} IAF steps ({self.hidden} hidden units, context from the encoder)"

    def _step(self, t: int) -> IAFStep:
        return IAFStep(self.latent_dim, self.hidden, reverse=bool(t % 2))

    def init(self, key: jax.Array) -> dict:
        z, h = jnp.zeros((1, self.latent_dim)), jnp.zeros((1, self.context))
        keys = jax.random.split(key, self.steps)
        return {f"step{t}": self._step(t).init(keys[t], z, h)["params"] for t in range(self.steps)}

    def __call__(self, params: dict, z: jax.Array, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        """z_0 (B, D) and context h (B, H_ctx) -> (z_T (B, D), log |det dz_T/dz_0| (B,))."""
        z, log_s = self.diagonal(params, z, h)
        return z, jnp.sum(log_s, axis=-1)

    def diagonal(self, params: dict, z: jax.Array, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        """z_0 (B, D) and context h (B, H_ctx) -> (z_T, the sum over steps of each unit's log s), each
        (B, D): the log of the diagonal of the (triangular) Jacobian dz_T/dz_0."""
        log_s_sum = jnp.zeros(z.shape, jnp.float32)
        for t in range(self.steps):
            m, log_s = self._step(t).apply({"params": params[f"step{t}"]}, z, h)
            z = m + jnp.exp(log_s) * z
            log_s_sum = log_s_sum + log_s
        return z, log_s_sum


def build(config) -> IAF:
    """--flow iaf: --flow-steps steps of --flow-hidden units."""
    return IAF(config.latent_dim, config.flow_steps, config.flow_hidden)
