"""--objective aae: the adversarial autoencoder (Makhzani et al. 2016, "Adversarial Autoencoders", §2,
a Gaussian posterior q(z|x)): a discriminator D on z, with its own parameters, loss and optimizer,
tells draws from the prior from the encoder's codes, and the encoder is trained to fool it:

    autoencoder:    maximise E_q[log p(x|z)] + weight E_q[log D(z)]
    discriminator:  maximise E_p(z)[log D(z)] + E_q[log (1 - D(z))]

(the generator's loss in its non-saturating form, as the paper's code). The discriminator is the
paper's MNIST one, two ReLU layers of 1000 units, trained by Adam at --lr after each model step."""

from __future__ import annotations

from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Aux, Batch, Group, Objective
from vae_jax.objectives.terms import drawn, per_example

HIDDEN = (1000, 1000)


class Discriminator(nn.Module):
    """z: (B, D) -> the logit of D(z), that z was drawn from the prior: (B,)."""

    hidden: tuple[int, ...] = HIDDEN

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        for width in self.hidden:
            z = nn.relu(nn.Dense(width)(z))
        return nn.Dense(1)(z)[:, 0]


def codes(model: LatentModel, params: Params, batch: Batch, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(log p(x|z): (B,), z: (B, D)) of one draw z ~ q(z|x) per example of the batch."""
    recon, _, z = per_example(drawn, model, params, batch.x, key, batch.c)
    return recon, z


def discriminator_loss(
    model: LatentModel, params: Params, disc: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The discriminator's cross-entropy on prior draws (label 1) and the encoder's codes (label 0),
    the codes held fixed: its gradient reaches the discriminator only."""
    k_q, k_p = jax.random.split(key)
    z_q = jax.lax.stop_gradient(codes(model, params, batch, k_q)[1])
    z_p = model.sample_prior(params, k_p, z_q.shape[0], batch.c)
    logit_p, logit_q = (Discriminator().apply({"params": disc}, z) for z in (z_p, z_q))
    bce = optax.sigmoid_binary_cross_entropy
    value = jnp.mean(bce(logit_p, 1.0) + bce(logit_q, 0.0))
    return value, {"accuracy": 0.5 * jnp.mean((logit_p > 0) + (logit_q < 0))}


def init_discriminator(model: LatentModel, key: jax.Array) -> Params:
    return Discriminator().init(key, jnp.zeros((1, model.latent_dim)))["params"]


@dataclass(frozen=True)
class AAE(Objective):
    """The reconstruction and the discriminator's log-odds of the codes; the discriminator a group."""

    weight: float = 1.0  # the weight of the adversarial term in the encoder's loss (--aae-weight)
    lr: float = 1e-3  # the discriminator's Adam learning rate (--lr)

    name = "aae"
    formula = "E_q[log p(x|z)] + weight E_q[log D(z)], D: a discriminator of z ~ p(z) from z ~ q(z|x)"
    best = "recon"

    @property
    def label(self) -> str:
        return f"AAE (weight={self.weight:g})"

    @property
    def groups(self) -> tuple[Group, ...]:
        return (Group("discriminator", init_discriminator, discriminator_loss, optax.adam(self.lr)),)

    def loss(
        self, model: LatentModel, params: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        recon, z = codes(model, params, batch, key)
        disc = aux["groups"]["discriminator"]["params"]
        fooled = -jnp.mean(optax.sigmoid_binary_cross_entropy(Discriminator().apply({"params": disc}, z), 1.0))
        recon = jnp.mean(recon)
        return -(recon + self.weight * fooled), {"recon": recon, "fooled": fooled}


def build(config) -> AAE:
    return AAE(config.aae_weight, config.lr)
