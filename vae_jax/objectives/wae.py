"""--objective wae: the Wasserstein autoencoder with the MMD penalty (Tolstikhin et al. 2018,
"Wasserstein Auto-Encoders", Algorithm 2, WAE-MMD):

    minimise  E[c(x, G(z))] + lambda MMD(q(z), p(z)),   z = the encoder's code of x,

with the cost c = -log p(x|z) of the run's likelihood (the paper's squared distance is the Gaussian
one's, up to scale) and the unbiased MMD estimate between the batch's codes and as many prior draws
(objectives.mmd; the paper's MNIST setting: lambda = 10, the IMQ kernel, a deterministic encoder).
It bounds no likelihood: evaluated by its reconstructions and samples."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Aux, Batch, Objective
from vae_jax.objectives.mmd import mmd
from vae_jax.objectives.terms import at_mean, drawn, per_example

ENCODERS = ("deterministic", "gaussian")


@dataclass(frozen=True)
class WAE(Objective):
    """The batch mean of the cost, and lambda times the MMD between the batch's codes and the prior."""

    weight: float = 10.0  # lambda
    kernel: str = "imq"  # the MMD's kernel, "imq" or "rbf" (--mmd-kernel)
    encoder: str = "deterministic"  # z = the encoder's mean, or one draw z ~ q(z|x)

    name = "wae"
    formula = "-log p(x|z) + lambda MMD(q(z), p(z))"
    defines_likelihood = False
    best = "recon"

    @property
    def label(self) -> str:
        return f"WAE-MMD (lambda={self.weight:g}, {self.kernel}, {self.encoder} encoder)"

    def loss(
        self, model: LatentModel, params: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        k_q, k_p = jax.random.split(key)
        if self.encoder == "gaussian":
            recon, _, z = per_example(drawn, model, params, batch.x, k_q, batch.c)
        else:
            recon, z = per_example(at_mean, model, params, batch.x, k_q, batch.c)
        divergence = mmd(z, model.sample_prior(params, k_p, z.shape[0], batch.c), self.kernel)
        recon = jnp.mean(recon)
        return -(recon - self.weight * divergence), {"recon": recon, "mmd": divergence}


def build(config) -> WAE:
    return WAE(config.wae_lambda, config.mmd_kernel, config.wae_encoder)
