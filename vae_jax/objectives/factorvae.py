"""--objective factor: the FactorVAE (Kim & Mnih 2018, "Disentangling by Factorising", eq. 2 and
Algorithm 2). The ELBO less gamma times the total correlation TC(z) = KL(q(z) || prod_j q(z_j)),
estimated by the density-ratio trick: a discriminator D tells codes z ~ q(z) from codes whose units
were each permuted over the batch (draws from prod_j q(z_j)), and at its optimum
log D(z) / (1 - D(z)) = log q(z) - log prod_j q(z_j), so

    TC(z) ~ E_q(z)[logit D(z)],   the VAE maximises  ELBO - gamma E_q(z)[logit D(z)].

The discriminator is the paper's (six layers of 1000 leaky-ReLU units, slope 0.2) trained by Adam
(lr 1e-4, beta1 0.5, beta2 0.9) on the same batch's codes, permuted, as disentanglement_lib does.
gamma = 40 sits in the range the paper and Locatello et al. 2019 sweep for dSprites (10 to 100)."""

from __future__ import annotations

from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Aux, Batch, Group, Objective
from vae_jax.objectives.terms import ReadsGaussian, gaussian_drawn, per_example

HIDDEN = (1000,) * 6
LEAK = 0.2
ADAM = {"learning_rate": 1e-4, "b1": 0.5, "b2": 0.9}


class Discriminator(nn.Module):
    """z: (B, D) -> logit D(z), that z is a code of q(z) rather than of prod_j q(z_j): (B,)."""

    hidden: tuple[int, ...] = HIDDEN

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        for width in self.hidden:
            z = nn.leaky_relu(nn.Dense(width)(z), LEAK)
        return nn.Dense(1)(z)[:, 0]


def permute_dims(z: jax.Array, key: jax.Array) -> jax.Array:
    """Each unit (column) of z: (B, D) permuted over the batch on its own: draws of prod_j q(z_j)."""
    keys = jax.random.split(key, z.shape[1])
    return jax.vmap(lambda k, column: jax.random.permutation(k, column), in_axes=(0, 1), out_axes=1)(keys, z)


def density_ratio_loss(
    disc: Params, z: jax.Array, key: jax.Array, hidden: tuple[int, ...] = HIDDEN
) -> tuple[jax.Array, jax.Array]:
    """The discriminator's cross-entropy on codes z: (B, D) (label 1) and the same codes permuted
    (label 0), and its accuracy."""
    logit_q, logit_bar = (Discriminator(hidden).apply({"params": disc}, v) for v in (z, permute_dims(z, key)))
    bce = optax.sigmoid_binary_cross_entropy
    return jnp.mean(bce(logit_q, 1.0) + bce(logit_bar, 0.0)), 0.5 * jnp.mean((logit_q > 0) + (logit_bar < 0))


def discriminator_loss(
    model: LatentModel, params: Params, disc: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """density_ratio_loss of the batch's codes, held fixed: its gradient reaches the discriminator only."""
    k_q, k_perm = jax.random.split(key)
    z = per_example(gaussian_drawn, model, params, batch.x, k_q, batch.c)[3]
    value, accuracy = density_ratio_loss(disc, jax.lax.stop_gradient(z), k_perm)
    return value, {"accuracy": accuracy}


def init_discriminator(model: LatentModel, key: jax.Array) -> Params:
    return Discriminator().init(key, jnp.zeros((1, model.latent_dim)))["params"]


@dataclass(frozen=True)
class FactorVAE(ReadsGaussian, Objective):
    """The ELBO less gamma times the discriminator's estimate of the codes' total correlation."""

    gamma: float = 40.0  # the weight of the discriminator's total-correlation estimate (--factor-gamma)

    name = "factor"
    formula = "ELBO - gamma TC(z), TC(z) ~ E_q(z)[log D(z) / (1 - D(z))]"

    @property
    def label(self) -> str:
        return f"FactorVAE (gamma={self.gamma:g})"

    @property
    def groups(self) -> tuple[Group, ...]:
        return (Group("discriminator", init_discriminator, discriminator_loss, optax.adam(**ADAM)),)

    def loss(
        self, model: LatentModel, params: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        recon, kl_dims, _, z, _, _ = per_example(gaussian_drawn, model, params, batch.x, key, batch.c)
        disc = aux["groups"]["discriminator"]["params"]
        tc = jnp.mean(Discriminator().apply({"params": disc}, z))
        recon, kl = jnp.mean(recon), jnp.mean(jnp.sum(kl_dims, axis=-1))
        return -(recon - kl - self.gamma * tc), {"elbo": recon - kl, "recon": recon, "kl": kl, "tc": tc}


def build(config) -> FactorVAE:
    return FactorVAE(config.factor_gamma)
