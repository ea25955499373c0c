"""--objective ciwae: the combination importance-weighted autoencoder (Rainforth et al. 2018, "Tighter
Variational Bounds are Not Necessarily Better", §4): from the same K draws z_k ~ q(z|x),

    CIWAE_beta = beta ELBO + (1 - beta) IWAE-K,   ELBO = (1/K) sum_k log w_k,   w = p(x, z) / q(z|x),

a bound between the two (the paper's beta = 0.5)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Aux, Batch, Objective
from vae_jax.objectives.terms import batch_log_weights, log_mean_exp


def ciwae_of(log_w: jax.Array, beta: float) -> jax.Array:
    """CIWAE_beta from the log-weights (..., K) of K draws -> (...)."""
    return beta * jnp.mean(log_w, axis=-1) + (1.0 - beta) * log_mean_exp(log_w)


@dataclass(frozen=True)
class CIWAE(Objective):
    """The batch mean of beta ELBO + (1 - beta) IWAE-K over the same K draws."""

    k: int = 5  # importance samples of the IWAE term (--k)
    beta: float = 0.5  # the ELBO's weight; the IWAE bound's is 1 - beta (--ciwae-beta)

    name = "ciwae"
    formula = "beta (1/K) sum_k log w_k + (1 - beta) log (1/K) sum_k w_k, w = p(x, z_k) / q(z_k|x)"

    @property
    def samples(self) -> int:
        return self.k

    @property
    def label(self) -> str:
        return f"CIWAE (K={self.k}, beta={self.beta:g})"

    def loss(
        self, model: LatentModel, params: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        bound = jnp.mean(ciwae_of(batch_log_weights(model, params, batch.x, key, batch.c, self.k), self.beta))
        return -bound, {"ciwae": bound}


def build(config) -> CIWAE:
    return CIWAE(config.k, config.ciwae_beta)
