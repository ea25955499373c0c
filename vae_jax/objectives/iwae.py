"""--objective iwae: the importance-weighted bound (Burda et al. 2016),
log (1/k) sum_i p(x, z_i) / q(z_i|x) with k draws z_i ~ q(z|x): the ELBO at k = 1, tighter as k grows."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Aux, Batch, Objective
from vae_jax.objectives.terms import iwae_bound, per_example


@dataclass(frozen=True)
class IWAE(Objective):
    """The batch mean of the k-sample importance-weighted bound."""

    k: int = 5  # importance samples per example (--k)

    name = "iwae"
    formula = "log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x)"

    @property
    def samples(self) -> int:
        return self.k

    @property
    def label(self) -> str:
        return f"IWAE (k={self.k})"

    def loss(
        self, model: LatentModel, params: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        bound = per_example(iwae_bound, model, params, batch.x, key, batch.c, self.k)
        return -jnp.mean(bound), {"iwae": jnp.mean(bound)}


def build(config) -> IWAE:
    return IWAE(config.k)
