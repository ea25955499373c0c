"""--objective infovae: InfoVAE with the MMD divergence (Zhao et al. 2019, "InfoVAE: Balancing Learning
and Inference in Variational Autoencoders", eq. 6 with D = MMD):

    E_q[log p(x|z)] - (1 - alpha) KL(q(z|x) || p(z)) - (alpha + lambda - 1) MMD(q(z), p(z)),

the MMD between the batch's z ~ q(z|x) and as many draws from the prior (objectives.mmd). alpha = 0,
lambda = 1 is the ELBO; alpha = 1 drops the KL (the "MMD-VAE" of the authors' tutorial code)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Aux, Batch, Objective
from vae_jax.objectives.mmd import mmd
from vae_jax.objectives.terms import drawn, per_example


@dataclass(frozen=True)
class InfoVAE(Objective):
    """The batch mean of the reconstruction and KL, and the MMD between the batch's codes and the prior."""

    alpha: float = 0.0  # the KL is weighted 1 - alpha (--info-alpha)
    weight: float = 1000.0  # lambda: the MMD is weighted alpha + lambda - 1 (--info-lambda)
    kernel: str = "imq"  # the MMD's kernel, "imq" or "rbf" (--mmd-kernel)

    name = "infovae"
    formula = "E_q[log p(x|z)] - (1 - alpha) KL(q(z|x) || p(z)) - (alpha + lambda - 1) MMD(q(z), p(z))"

    @property
    def label(self) -> str:
        return f"InfoVAE (alpha={self.alpha:g}, lambda={self.weight:g}, {self.kernel})"

    def loss(
        self, model: LatentModel, params: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        k_q, k_p = jax.random.split(key)
        recon, kl_dims, z = per_example(drawn, model, params, batch.x, k_q, batch.c)
        recon, kl = jnp.mean(recon), jnp.mean(jnp.sum(kl_dims, axis=-1))
        divergence = mmd(z, model.sample_prior(params, k_p, z.shape[0], batch.c), self.kernel)
        value = -(recon - (1.0 - self.alpha) * kl - (self.alpha + self.weight - 1.0) * divergence)
        return value, {"elbo": recon - kl, "recon": recon, "kl": kl, "mmd": divergence}


def build(config) -> InfoVAE:
    return InfoVAE(config.info_alpha, config.info_lambda, config.mmd_kernel)
