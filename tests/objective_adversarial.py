"""An objective added from outside the package, in this one file: an adversarial autoencoder
(Makhzani et al. 2016, "Adversarial Autoencoders", §2 with a Gaussian posterior): the reconstruction
log-likelihood, and a discriminator on z, with its own parameters, loss and optimizer, that tells
draws from the prior from the encoder's z; the encoder is trained to fool it.

    model:          maximise E_q[log p(x|z)] + WEIGHT E_q[log D(z)]
    discriminator:  maximise E_p[log D(z)] + E_q[log (1 - D(z))]
"""

from __future__ import annotations

from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from vae_jax import objectives
from vae_jax.objectives.terms import per_example

WEIGHT, HIDDEN, LR = 1.0, 16, 1e-3


class Discriminator(nn.Module):
    """z: (B, D) -> the logit of D(z), that z was drawn from the prior: (B,)."""

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        return nn.Dense(1)(nn.relu(nn.Dense(HIDDEN)(z)))[:, 0]


def _one(model, params, x, key, c=None):
    """ONE example: (log p(x|z), z) of one draw z ~ q(z|x)."""
    draw = model.posterior(params, x, key, 1, c)
    return model.likelihood.log_prob(draw.out[0], x), draw.z[0]


def _drawn(model, params, batch, key):
    """(log p(x|z), z) of one draw z ~ q(z|x) per example of the batch: (B,), (B, D)."""
    return per_example(_one, model, params, batch.x, key, batch.c)


def discriminator_loss(model, params, disc, aux, batch, key, step):
    k_q, k_p = jax.random.split(key)
    _, z_q = _drawn(model, params, batch, k_q)
    z_p = model.sample_prior(params, k_p, z_q.shape[0], batch.c)
    logit_p = Discriminator().apply({"params": disc}, z_p)
    logit_q = Discriminator().apply({"params": disc}, jax.lax.stop_gradient(z_q))
    value = jnp.mean(
        optax.sigmoid_binary_cross_entropy(logit_p, 1.0) + optax.sigmoid_binary_cross_entropy(logit_q, 0.0)
    )
    return value, {"accuracy": 0.5 * jnp.mean((logit_p > 0) + (logit_q < 0))}


def init_discriminator(model, key):
    return Discriminator().init(key, jnp.zeros((1, model.latent_dim)))["params"]


@dataclass(frozen=True)
class Adversarial(objectives.Objective):
    name = "outside-aae"
    formula = "E_q[log p(x|z)] + E_q[log D(z)], D: a discriminator of z ~ p(z) from z ~ q(z|x)"
    best = "recon"
    alternating = True

    @property
    def groups(self):
        return (objectives.Group("discriminator", init_discriminator, discriminator_loss, optax.adam(LR)),)

    def loss(self, model, params, aux, batch, key, step):
        recon, z = _drawn(model, params, batch, key)
        disc = aux["groups"]["discriminator"]["params"]
        fooled = -jnp.mean(optax.sigmoid_binary_cross_entropy(Discriminator().apply({"params": disc}, z), 1.0))
        return -(jnp.mean(recon) + WEIGHT * fooled), {"recon": jnp.mean(recon), "fooled": fooled}


objectives.register("outside-aae", lambda config: Adversarial(), summary="adversarial autoencoder")
