"""--objective ae: a plain autoencoder, log p(x|z) at z = the encoder's mean, with no noise and no KL.
It defines no p(x): there is no NLL to report, and the best checkpoint is the best reconstruction."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Aux, Batch, Objective
from vae_jax.objectives.terms import ae_recon, per_example


@dataclass(frozen=True)
class Autoencoder(Objective):
    """The batch mean of the reconstruction log-likelihood at the encoder's mean."""

    name = "ae"
    formula = "log p(x | z = mean of q(z|x))"
    defines_likelihood = False
    best = "recon"

    @property
    def label(self) -> str:
        return "autoencoder"

    def loss(
        self, model: LatentModel, params: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        recon = per_example(ae_recon, model, params, batch.x, key, batch.c)
        return -jnp.mean(recon), {"recon": jnp.mean(recon)}


def build(config) -> Autoencoder:
    return Autoencoder()
