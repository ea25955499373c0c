"""A trained model loaded from a checkpoint folder, for notebooks and the command-line tools."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jax
import jax.numpy as jnp
import optax

from vae_jax import checkpoint
from vae_jax.config import Config
from vae_jax.evaluate import evaluate
from vae_jax.objectives import batch_elbo
from vae_jax.training import init_state
from vae_jax.vae import VAE, Params, build


@dataclass(frozen=True, eq=False)
class Model:
    """Config + params + the pure functions, bound together. Arrays are (B, H, W, C) in [0, 1]."""

    config: Config
    params: Params
    vae: VAE
    step: int
    epoch: int
    meta: dict[str, Any]

    @cached_property
    def _encode(self):
        return jax.jit(self.vae.encode)

    @cached_property
    def _decode(self):
        return jax.jit(self.vae.decode_mean)

    @cached_property
    def _elbo(self):
        return jax.jit(lambda p, x, k: batch_elbo(self.vae, p, x, k).elbo)

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """q(z|x): x (B, H, W, C) -> (mean, log_var), each (B, latent_dim)."""
        return self._encode(self.params, jnp.asarray(x, jnp.float32))

    def decode(self, z: jax.Array) -> jax.Array:
        """Mean of p(x|z): z (B, latent_dim) -> (B, H, W, C)."""
        return self._decode(self.params, jnp.asarray(z, jnp.float32))

    def sample(self, key: jax.Array, n: int, temperature: float = 1.0) -> jax.Array:
        """n images decoded from z ~ N(0, temperature^2 I): float (n, H, W, C) clipped to [0, 1]."""
        z = temperature * jax.random.normal(key, (n, self.config.latent_dim))
        return jnp.clip(self.decode(z), 0.0, 1.0)

    def reconstruct(self, x: jax.Array) -> jax.Array:
        """Mean of p(x|z) at z = the posterior mean of each x: (B, H, W, C) -> (B, H, W, C)."""
        mean, _ = self.encode(x)
        return self.decode(mean)

    def elbo(self, key: jax.Array, x: jax.Array) -> jax.Array:
        """Single-sample ELBO of each example, in nats: x (B, H, W, C) -> (B,).

        For a Bernoulli model x must be binary ({0, 1}); otherwise it is not a log-probability.
        """
        return self._elbo(self.params, jnp.asarray(x, jnp.float32), key)


    def evaluate(self, x: jax.Array, k: int = 1000, seed: int = 0, batch_size: int = 100) -> dict:
        """Importance-sampled NLL (nats, with standard error), bits/dim, ELBO parts, active units
        and KL per dimension over x: (N, H, W, C); see vae_jax.evaluate.evaluate."""
        return evaluate(self.vae, self.params, jnp.asarray(x, jnp.float32), jax.random.key(seed), k, batch_size)


def load(path: str = "checkpoints", best: bool = False) -> Model:
    """Load the latest (or, with best=True, the best by test ELBO) checkpoint in `path`."""
    mngr, step = checkpoint.open_existing(path, best)
    meta = checkpoint.read_meta(mngr, step)
    config: Config = meta["config"]
    vae = build(config, tuple(meta["image_shape"]))
    like = init_state(vae, optax.adam(config.lr), jax.random.key(0))
    state = checkpoint.restore_state(mngr, step, like)
    mngr.close()
    return Model(config, state.params, vae, step, int(meta["epoch"]), meta)
