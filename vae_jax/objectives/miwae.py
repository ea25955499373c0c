"""--objective miwae: the multiply importance-weighted bound (Rainforth et al. 2018, "Tighter Variational
Bounds are Not Necessarily Better", §4): M independent K-sample IWAE bounds averaged,

    MIWAE(M, K) = (1/M) sum_m log (1/K) sum_k p(x, z_mk) / q(z_mk|x),   z_mk ~ q(z|x),

a bound between the ELBO (K = 1) and IWAE-K (M = 1) whose encoder gradient's signal-to-noise ratio
does not vanish as K grows; M x K decoder passes per example (the paper's MIWAE(8, 8): --m 8 --k 8)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Aux, Batch, Objective
from vae_jax.objectives.terms import batch_log_weights, log_mean_exp


def miwae_of(log_w: jax.Array, m: int) -> jax.Array:
    """MIWAE(M, K) from the log-weights (..., M * K) of M groups of K draws -> (...)."""
    grid = log_w.reshape(*log_w.shape[:-1], m, log_w.shape[-1] // m)
    return jnp.mean(log_mean_exp(grid), axis=-1)


@dataclass(frozen=True)
class MIWAE(Objective):
    """The batch mean of MIWAE(M, K)."""

    m: int = 8  # IWAE bounds averaged (--m)
    k: int = 8  # importance samples of each bound (--k)

    name = "miwae"
    formula = "(1/M) sum_m log (1/K) sum_k p(x, z_mk) / q(z_mk|x), z_mk ~ q(z|x)"

    @property
    def samples(self) -> int:
        return self.m * self.k

    @property
    def label(self) -> str:
        return f"MIWAE (M={self.m}, K={self.k})"

    def loss(
        self, model: LatentModel, params: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        bound = jnp.mean(miwae_of(batch_log_weights(model, params, batch.x, key, batch.c, self.m * self.k), self.m))
        return -bound, {"miwae": bound}


def build(config) -> MIWAE:
    return MIWAE(config.m, config.k)
