"""--objective msssim: the VAE whose reconstruction term is the images' structural dissimilarity
(Snell et al. 2017, "Learning to Generate Images with Perceptual Similarity Metrics"):

    minimise  N (1 - MS-SSIM(x, Dec(z))) + beta KL(q(z|x) || p(z)),   z ~ q(z|x),

MS-SSIM of objectives.ssim, Dec(z) the decoder's mean image and N its number of sub-pixels, so that
the reconstruction term has the scale of a per-pixel cost summed over the image, as the ELBO's has
(the scale is ours: the paper leaves it to a weight). It trains no pixel likelihood: evaluated by its
reconstructions and samples."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Aux, Batch, Objective
from vae_jax.objectives.ssim import ms_ssim
from vae_jax.objectives.terms import drawn, per_example


@dataclass(frozen=True)
class MSSSIM(Objective):
    """The batch mean of N (1 - MS-SSIM) and beta times the KL."""

    beta: float = 1.0  # the weight of the KL (--beta)

    name = "msssim"
    formula = "N (1 - MS-SSIM(x, Dec(z))) + beta KL(q(z|x) || p(z))"
    defines_likelihood = False
    best = "recon"

    @property
    def label(self) -> str:
        return "MS-SSIM VAE" + ("" if self.beta == 1.0 else f" (beta={self.beta:g})")

    def loss(
        self, model: LatentModel, params: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        recon, kl_dims, z = per_example(drawn, model, params, batch.x, key, batch.c)
        similarity = ms_ssim(batch.x, model.decode_mean(params, z, batch.c))
        kl = jnp.mean(jnp.sum(kl_dims, axis=-1))
        dissimilarity = np.prod(batch.x.shape[1:]) * jnp.mean(1.0 - similarity)
        value = dissimilarity + self.beta * kl
        return value, {"recon": jnp.mean(recon), "kl": kl, "ms_ssim": jnp.mean(similarity)}


def build(config) -> MSSSIM:
    return MSSSIM(config.beta)
