"""--objective piwae: the partially importance-weighted autoencoder (Rainforth et al. 2018, "Tighter
Variational Bounds are Not Necessarily Better", §4): from the same M x K draws z ~ q(z|x), the
generative network (decoder, prior) climbs the tight bound IWAE-(M K) and the inference network
(encoder, flow) MIWAE(M, K), whose gradient keeps its signal as K grows. The parameters of q are
those of terms.INFERENCE: a model whose top-down pass is both (hvae) trains it as the decoder."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Aux, Batch
from vae_jax.objectives.miwae import MIWAE, miwae_of
from vae_jax.objectives.terms import batch_log_weights, inference_from, log_mean_exp


@dataclass(frozen=True)
class PIWAE(MIWAE):
    """IWAE-(M K) for p's parameters plus MIWAE(M, K) for q's, each gradient reaching its side only."""

    name = "piwae"
    formula = "p: log (1/MK) sum_mk w_mk;  q: (1/M) sum_m log (1/K) sum_k w_mk;  w = p(x, z) / q(z|x)"

    @property
    def samples(self) -> int:
        return 2 * self.m * self.k  # two passes over the same draws

    @property
    def label(self) -> str:
        return f"PIWAE (M={self.m}, K={self.k})"

    def loss(
        self, model: LatentModel, params: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        fixed = jax.lax.stop_gradient(params)
        # the same key: the same draws twice, one pass differentiable in q's parameters, one in p's
        log_w_q = batch_log_weights(model, inference_from(params, fixed), batch.x, key, batch.c, self.m * self.k)
        log_w_p = batch_log_weights(model, inference_from(fixed, params), batch.x, key, batch.c, self.m * self.k)
        miwae, iwae = jnp.mean(miwae_of(log_w_q, self.m)), jnp.mean(log_mean_exp(log_w_p))
        return -(miwae + iwae), {"miwae": miwae, "iwae": iwae}


def build(config) -> PIWAE:
    return PIWAE(config.m, config.k)
