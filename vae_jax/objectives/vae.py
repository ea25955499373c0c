"""--objective vae: the ELBO (Kingma & Welling 2014), E_q[log p(x|z)] - beta KL(q(z|x) || p(z)), with
a beta weight on the KL (Higgins et al. 2017), KL warm-up (Sønderby et al. 2016) and
free bits (Kingma et al. 2016)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Aux, Batch, Objective
from vae_jax.objectives.terms import elbo_parts, group_sums, per_example


def kl_weight(step: jax.Array | int, warmup_steps: int) -> jax.Array | float:
    """KL warm-up factor of optimisation step `step`: rises linearly from 0 to 1 over `warmup_steps`."""
    return jnp.minimum(1.0, step / float(warmup_steps)) if warmup_steps else 1.0  # float: beyond int32 too


@dataclass(frozen=True)
class ELBO(Objective):
    """The batch mean of the single-sample ELBO; `beta` weighs the KL, which rises from 0 over the
    first `kl_warmup_epochs` epochs; a latent unit (of a hierarchy: a group) whose batch-mean KL is
    under `free_bits` nats pays that floor, with no gradient."""

    beta: float = 1.0  # the KL's weight (Higgins et al. 2017; 1: the ELBO) (--beta)
    free_bits: float = 0.0  # the floor in nats of each unit's batch-mean KL: below it, no gradient (--free-bits)
    kl_warmup_epochs: int = 0  # epochs over which the KL's weight rises from 0 (--kl-warmup-epochs)

    name = "vae"
    formula = "ELBO = E_q[log p(x|z)] - KL(q(z|x) || p(z))"

    @property
    def label(self) -> str:
        return "VAE" if self.beta == 1.0 else f"beta-VAE (beta={self.beta:g})"

    def loss(
        self, model: LatentModel, params: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        beta_scale = kl_weight(step, self.kl_warmup_epochs * (batch.n_train // batch.x.shape[0]))
        recon, kl_dims = per_example(elbo_parts, model, params, batch.x, key, batch.c)
        mean_kl_dims = jnp.mean(kl_dims, axis=0)
        hierarchy = len(model.groups) > 1
        group_kl = group_sums(mean_kl_dims, model.groups) if hierarchy else mean_kl_dims
        # free bits: a dimension (of a hierarchy: a latent group) whose batch-mean KL is under the
        # floor pays the floor, with no gradient
        penalty = jnp.sum(jnp.maximum(group_kl, self.free_bits)) if self.free_bits > 0 else jnp.sum(group_kl)
        kl = jnp.sum(mean_kl_dims)
        value = -(jnp.mean(recon) - self.beta * beta_scale * penalty)
        stats = {"elbo": jnp.mean(recon) - kl, "recon": jnp.mean(recon), "kl": kl}
        return value, stats | ({f"kl_group{g + 1}": v for g, v in enumerate(group_kl)} if hierarchy else {})


def build(config) -> ELBO:
    return ELBO(config.beta, config.free_bits, config.kl_warmup_epochs)
