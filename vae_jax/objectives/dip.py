"""--objective dip-i and dip-ii: the DIP-VAE (Kumar et al. 2018, "Variational Inference of
Disentangled Latent Concepts from Unlabeled Observations", eq. 6 and 7). The ELBO less a penalty
that moves a covariance of the codes towards the identity:

    ELBO - lambda_od sum_{i != j} C_ij^2 - lambda_d sum_i (C_ii - 1)^2,
    DIP-VAE-I:  C = Cov_p(x)[mu(x)], the covariance of the posterior means over the batch;
    DIP-VAE-II: C = E_p(x)[diag sigma^2(x)] + Cov_p(x)[mu(x)], the covariance of q(z) itself.

lambda_d = 10 lambda_od (DIP-VAE-I) or lambda_d = lambda_od (DIP-VAE-II) are disentanglement_lib's
ratios, with lambda_od = 10 inside the range Locatello et al. 2019 sweep (1 to 50)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Aux, Batch, Objective
from vae_jax.objectives.terms import ReadsGaussian, gaussian_drawn, per_example

D_FACTOR = {"i": 10.0, "ii": 1.0}  # lambda_d / lambda_od where --dip-lambda-d is not given


def covariance(mean: jax.Array, log_var: jax.Array, variant: str) -> jax.Array:
    """(D, D): the covariance of the posterior means mean: (B, D) over the batch (variant 'i'), plus
    the batch mean of the posterior variances on its diagonal (variant 'ii')."""
    centred = mean - jnp.mean(mean, axis=0)
    cov = centred.T @ centred / mean.shape[0]
    return cov + jnp.diag(jnp.mean(jnp.exp(log_var), axis=0)) if variant == "ii" else cov


def penalty(cov: jax.Array, lambda_od: float, lambda_d: float) -> jax.Array:
    """lambda_od times the off-diagonal entries' squares plus lambda_d times the diagonal's squared
    distances from 1, of cov: (D, D)."""
    diagonal = jnp.diagonal(cov)
    off = cov - jnp.diag(diagonal)
    return lambda_od * jnp.sum(off**2) + lambda_d * jnp.sum((diagonal - 1.0) ** 2)


@dataclass(frozen=True)
class DIPVAE(ReadsGaussian, Objective):
    """The ELBO less the penalty on the batch's covariance (variant 'i' or 'ii')."""

    variant: str = "i"  # "i": the covariance of the posterior means; "ii": of q(z) (--objective dip-i, dip-ii)
    lambda_od: float = 10.0  # the weight of the off-diagonal penalty (--dip-lambda-od)
    lambda_d: float = 0.0  # 0: D_FACTOR[variant] times lambda_od

    formula = "ELBO - lambda_od sum_{i != j} C_ij^2 - lambda_d sum_i (C_ii - 1)^2, C: a covariance of the codes"

    @property
    def name(self) -> str:
        return f"dip-{self.variant}"

    @property
    def diagonal_weight(self) -> float:
        return self.lambda_d or D_FACTOR[self.variant] * self.lambda_od

    @property
    def label(self) -> str:
        return f"DIP-VAE-{self.variant.upper()} (lambda_od={self.lambda_od:g}, lambda_d={self.diagonal_weight:g})"

    def loss(
        self, model: LatentModel, params: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        recon, kl_dims, _, _, mean, log_var = per_example(gaussian_drawn, model, params, batch.x, key, batch.c)
        dip = penalty(covariance(mean, log_var, self.variant), self.lambda_od, self.diagonal_weight)
        recon, kl = jnp.mean(recon), jnp.mean(jnp.sum(kl_dims, axis=-1))
        return -(recon - kl - dip), {"elbo": recon - kl, "recon": recon, "kl": kl, "dip": dip}


def build_i(config) -> DIPVAE:
    return DIPVAE("i", config.dip_lambda_od, config.dip_lambda_d)


def build_ii(config) -> DIPVAE:
    return DIPVAE("ii", config.dip_lambda_od, config.dip_lambda_d)
