"""The fitted samplers `maf` and `iaf`: masked autoregressive flows fitted by maximum likelihood to
the training set's posterior means, as pythae's MAFSampler and IAFSampler. Each is `blocks` MADEs
(Germain et al. 2015) of `layers` ReLU layers of `hidden` units, the units' order reversed after
each block.

A block maps a latent x (N, D) to noise u, u_i = (x_i - m_i) exp(-s_i), where m_i and s_i read
only the units before i: of x in a MAF (Papamakarios et al. 2017; its density in one pass, a draw in
D), of u in an IAF (Kingma et al. 2016; a draw in one pass, its density in D). With u ~ N(0, I),
log p(x) = log N(u; 0, I) - sum over blocks and units of s_i. A block's output layer starts at
zero, so each starts as the identity. Fitted with Adam (learning rate 1e-4, batches of 64, 100
epochs: pythae's trainer's defaults). The fitted state is the blocks' parameters, flattened.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vae_jax.distributions import gaussian_log_prob
from vae_jax.flows.iaf import MaskedDense, degrees
from vae_jax.samplers import adam

LEARNING_RATE = 1e-4


class MADE(nn.Module):
    """x (N, D) -> (m, s), each (N, D); output i reads x_<i only (MADE's sequential degrees)."""

    dim: int
    hidden: int
    layers: int

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        d_in, d_hid = degrees(self.dim, self.hidden, reverse=False)
        as_mask = lambda a: tuple(map(tuple, a.tolist()))  # noqa: E731 (hashable module attributes)
        h = x
        for layer in range(self.layers):
            below = d_in if layer == 0 else d_hid
            h = nn.relu(MaskedDense(as_mask(d_hid[None, :] >= below[:, None]))(h))
        out = MaskedDense(as_mask(np.tile(d_in[None, :] > d_hid[:, None], (1, 2))), zero=True)(h)
        return jnp.split(out, 2, axis=-1)


def _unflatten(state: dict) -> list[dict]:
    """The stored flat arrays ("0/Dense_0/kernel", ...) -> one parameter tree per block."""
    tree = adam.unflatten(state)
    return [tree[str(b)] for b in range(len(tree))]


def _flatten(blocks: list[dict]) -> dict[str, np.ndarray]:
    return adam.flatten({str(b): p for b, p in enumerate(blocks)})


@dataclass(frozen=True)
class Autoregressive:
    """MAF (inverse=False) or IAF (inverse=True): the sampler's contract (vae_jax.samplers)."""

    inverse: bool  # m and s read the noise u (IAF), not the latent x (MAF)

    def _to_noise(self, made: MADE, blocks: list[dict], x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x (N, D) -> (u (N, D), sum of -s (N,)) through every block."""
        log_det = jnp.zeros(x.shape[0], x.dtype)
        for params in blocks:
            if self.inverse:  # u_i reads u_<i: D passes fill it in order
                u = jax.lax.fori_loop(0, x.shape[1], partial(_fill, made, params, x, -1), jnp.zeros_like(x))
                s = made.apply({"params": params}, u)[1]
            else:
                m, s = made.apply({"params": params}, x)
                u = (x - m) * jnp.exp(-s)
            log_det = log_det - jnp.sum(s, axis=-1)
            x = u[:, ::-1]
        return x, log_det

    def _to_latent(self, made: MADE, blocks: list[dict], u: jax.Array) -> jax.Array:
        """u (N, D) -> x (N, D): the blocks undone, last first."""
        for params in reversed(blocks):
            u = u[:, ::-1]
            if self.inverse:
                m, s = made.apply({"params": params}, u)
                u = u * jnp.exp(s) + m
            else:  # x_i reads x_<i: D passes fill it in order
                u = jax.lax.fori_loop(0, u.shape[1], partial(_fill, made, params, u, 1), jnp.zeros_like(u))
        return u

    def log_prob(self, state: dict, z: jax.Array, layers: int = 3, hidden: int = 128, **_: int) -> jax.Array:
        """log p(z) (N,) of z (N, D) under the fitted flow."""
        made = MADE(z.shape[-1], hidden, layers)
        return self._log_density(made, _unflatten(state), z.astype(jnp.float32))

    def _log_density(self, made: MADE, blocks: list[dict], x: jax.Array) -> jax.Array:
        """log N(u; 0, I) + log |det du/dx| (N,) of x (N, D), u its noise."""
        u, log_det = self._to_noise(made, blocks, x)
        return jnp.sum(gaussian_log_prob(u, 0.0, 0.0), axis=-1) + log_det

    def sample(
        self, state: dict, key: jax.Array, n: int, temperature: float = 1.0, layers: int = 3, hidden: int = 128, **_
    ) -> jax.Array:
        """n draws (n, D): u ~ N(0, temperature^2 I) carried through the blocks."""
        dim = state["0/MaskedDense_0/kernel"].shape[0]
        u = temperature * jax.random.normal(key, (n, dim))
        return self._to_latent(MADE(dim, hidden, layers), _unflatten(state), u)

    def fit(self, z: jax.Array, key: jax.Array, blocks: int = 2, layers: int = 3, hidden: int = 128, epochs: int = 100):
        """(the fitted state, the mean log-likelihood of z (N, D) in each epoch (epochs,)): Adam on the
        mean negative log-likelihood."""
        keys = jax.random.split(key, blocks + 1)
        made = MADE(z.shape[-1], hidden, layers)
        start = [made.init(k, z[:1])["params"] for k in keys[:blocks]]

        def loss(params: list[dict], x: jax.Array, _: jax.Array) -> jax.Array:
            return -jnp.mean(self._log_density(made, params, x))

        params, history = adam.minimise(loss, start, jnp.asarray(z, jnp.float32), keys[-1], epochs, LEARNING_RATE)
        return _flatten(params), history


def _fill(made: MADE, params: dict, given: jax.Array, sign: int, _: jax.Array, filled: jax.Array) -> jax.Array:
    """One of the D passes that fill a block's unknown side in order: IAF's u from x (sign -1), MAF's
    x from u (sign 1); after pass i, units 0..i are exact."""
    m, s = made.apply({"params": params}, filled)
    return (given - m) * jnp.exp(-s) if sign < 0 else given * jnp.exp(s) + m


MAF, IAF = Autoregressive(inverse=False), Autoregressive(inverse=True)
