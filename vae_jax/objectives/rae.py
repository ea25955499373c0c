"""--objective rae-l2 and rae-gp: regularised deterministic autoencoders (Ghosh et al. 2020, "From
Variational to Deterministic Autoencoders", eq. 11):

    minimise  -log p(x | z) + beta (1/2) |z|^2 + lambda L_REG,   z = E(x), the encoder's code,

where L_REG is the decoder's weight decay |theta|^2 (RAE-L2) or a gradient penalty, the squared
Frobenius norm of the decoder's Jacobian at z (RAE-GP), estimated without bias by one Gaussian
projection per example, E_v |J^T v|^2 (Hutchinson). No prior is matched: samples come from a density
fitted to the codes after training (`sample.py --sampler gmm`, the paper's ex-post density)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Aux, Batch, Objective
from vae_jax.objectives.terms import at_mean, per_example

PENALTIES = ("l2", "gp")


def weight_decay(params: Params) -> jax.Array:
    """|theta|^2 of the decoder's parameters (every leaf of params['decoder'])."""
    return sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(params["decoder"]))


def jacobian_penalty(
    model: LatentModel, params: Params, z: jax.Array, c: jax.Array | None, key: jax.Array
) -> jax.Array:
    """The batch mean of |J^T v|^2, v ~ N(0, I), an unbiased estimate of |J|_F^2 where J is the
    Jacobian of the decoder's mean image with respect to each example's z: (B, D)."""
    mean_image, pullback = jax.vjp(lambda u: model.decode_mean(params, u, c), z)
    (projected,) = pullback(jax.random.normal(key, mean_image.shape))
    return jnp.mean(jnp.sum(jnp.square(projected), axis=-1))


@dataclass(frozen=True)
class RAE(Objective):
    """The batch mean of the cost and the code's norm, and the decoder's regulariser."""

    penalty: str = "l2"  # one of PENALTIES
    beta: float = 1e-4  # the weight of the latent norm |z|^2 / 2 (--rae-beta)
    weight: float = 1e-7  # lambda: the weight of the decoder's regulariser (--rae-lambda)

    formula = "-log p(x|z) + beta |z|^2 / 2 + lambda L_REG, z = E(x)"
    defines_likelihood = False
    best = "recon"

    @property
    def name(self) -> str:
        return f"rae-{self.penalty}"

    @property
    def label(self) -> str:
        return f"RAE-{self.penalty.upper()} (beta={self.beta:g}, lambda={self.weight:g})"

    def loss(
        self, model: LatentModel, params: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        recon, z = per_example(at_mean, model, params, batch.x, key, batch.c)
        code = 0.5 * jnp.mean(jnp.sum(jnp.square(z), axis=-1))
        if self.penalty == "gp":
            regulariser = jacobian_penalty(model, params, z, batch.c, key)
        else:
            regulariser = weight_decay(params)
        recon = jnp.mean(recon)
        value = -recon + self.beta * code + self.weight * regulariser
        return value, {"recon": recon, "code_norm": code, "regulariser": regulariser}


def build_l2(config) -> RAE:
    return RAE("l2", config.rae_beta, config.rae_lambda)


def build_gp(config) -> RAE:
    return RAE("gp", config.rae_beta, config.rae_lambda)
