"""An objective added from outside the package, in this one file: InfoVAE's MMD form (Zhao et al.
2019, "InfoVAE: Balancing Learning and Inference in Variational Autoencoders", eq. 6 with alpha = 0):

    E_q[log p(x|z)] - KL(q(z|x) || p(z)) - lambda MMD(q(z), p(z)),

the MMD between the batch's z ~ q(z|x) and as many draws from the prior (an RBF kernel of bandwidth
2 * latent_dim, as the paper's code). It needs the whole batch and LatentModel.sample_prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax import objectives
from vae_jax.objectives.terms import kl_of, per_example

LAMBDA = 100.0


def rbf_mmd(a: jax.Array, b: jax.Array) -> jax.Array:
    """The (biased) squared MMD between samples a: (n, D) and b: (m, D), k(u, v) = exp(-|u - v|^2 / (2 D))."""
    kernel = lambda u, v: jnp.exp(-jnp.sum((u[:, None] - v[None]) ** 2, -1) / (2.0 * u.shape[-1]))  # noqa: E731
    return jnp.mean(kernel(a, a)) + jnp.mean(kernel(b, b)) - 2 * jnp.mean(kernel(a, b))


def _parts(vae, params, x, key, c=None):
    """ONE example: (log p(x|z), the KL, z) of one draw z ~ q(z|x)."""
    draw = vae.posterior(params, x, key, 1, c)
    return vae.likelihood.log_prob(draw.out[0], x), jnp.sum(kl_of(vae, draw)[0]), draw.z[0]


@dataclass(frozen=True)
class InfoVAE(objectives.Objective):
    weight: float = LAMBDA

    name = "outside-infovae"
    formula = "E_q[log p(x|z)] - KL(q(z|x) || p(z)) - lambda MMD(q(z), p(z))"

    def loss(self, model, params, aux, batch, key, step):
        k_q, k_p = jax.random.split(key)
        recon, kl, z = per_example(_parts, model, params, batch.x, k_q, batch.c)
        mmd = rbf_mmd(z, model.sample_prior(params, k_p, z.shape[0], batch.c))
        elbo = jnp.mean(recon - kl)
        return -(elbo - self.weight * mmd), {"elbo": elbo, "recon": jnp.mean(recon), "kl": jnp.mean(kl), "mmd": mmd}


objectives.register("outside-infovae", lambda config: InfoVAE(), summary="ELBO less an MMD between q(z) and p(z)")
