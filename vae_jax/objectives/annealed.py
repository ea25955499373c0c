"""--objective annealed: the AnnealedVAE (Burgess et al. 2018, "Understanding disentangling in
β-VAE", eq. 8): the KL is held near a capacity C that rises linearly from 0 to C_max,

    E_q[log p(x|z)] - gamma |KL(q(z|x) || p(z)) - C|,   C = C_max min(1, step / steps),

so that the code takes in information a little at a time. The paper's dSprites setting: gamma =
1000, C rising to 25 nats over 100,000 steps (Locatello et al. 2019 sweep C_max from 5 to 100)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Aux, Batch, Objective
from vae_jax.objectives.terms import elbo_parts, per_example


def capacity(step: jax.Array | int, c_max: float, steps: int) -> jax.Array:
    """C after `step` optimisation steps: c_max step / steps, at most c_max (c_max at once for steps 0)."""
    return jnp.minimum(1.0, step / float(steps)) * c_max if steps else jnp.float32(c_max)


@dataclass(frozen=True)
class AnnealedVAE(Objective):
    """The reconstruction less gamma times the distance of the batch-mean KL from the capacity C."""

    gamma: float = 1000.0  # the weight of |KL - C| (--anneal-gamma)
    c_max: float = 25.0  # C_max, the capacity C rises to, in nats (--anneal-capacity)
    steps: int = 100_000  # optimisation steps over which C rises (--anneal-steps)

    name = "annealed"
    formula = "E_q[log p(x|z)] - gamma |KL(q(z|x) || p(z)) - C|, C rising linearly to C_max"

    @property
    def label(self) -> str:
        return f"AnnealedVAE (gamma={self.gamma:g}, C_max={self.c_max:g} over {self.steps:,} steps)"

    def loss(
        self, model: LatentModel, params: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        recon, kl_dims = per_example(elbo_parts, model, params, batch.x, key, batch.c)
        recon, kl = jnp.mean(recon), jnp.mean(jnp.sum(kl_dims, axis=-1))
        c = capacity(step, self.c_max, self.steps)
        return -(recon - self.gamma * jnp.abs(kl - c)), {"elbo": recon - kl, "recon": recon, "kl": kl, "capacity": c}


def build(config) -> AnnealedVAE:
    return AnnealedVAE(config.anneal_gamma, config.anneal_capacity, config.anneal_steps)
