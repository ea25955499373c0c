"""--objective vaegan: the VAE-GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned
similarity metric", Algorithm 1): a discriminator Dis on images, with its own parameters, loss and
optimizer, and the VAE's reconstruction measured in its features Dis_l (a Gaussian of unit
variance there) instead of pixels:

    encoder:        minimise KL(q(z|x) || p(z)) + L_llike,   L_llike = 1/2 |Dis_l(x) - Dis_l(Dec(z))|^2
    decoder:        minimise gamma L_llike - (1 - gamma) L_Dis(fakes)
    discriminator:  minimise L_Dis = 1/2 BCE(Dis(x), real) + 1/2 BCE(Dis(fakes), fake)

with fakes the decoded z ~ q(z|x) and z ~ p(z), the GAN's gradient kept from the encoder, and the
decoder's two gradients weighted gamma and -(1 - gamma) as in the authors' code (gamma = 1e-6 there).
The discriminator: stride-2 5x5 convolutions of 32, 64 and 128 channels (Dis_l: the last one's
features), a dense layer of 512 and the logit; Adam at --lr after each model step. The decoder
trains on no pixel likelihood: evaluated by its reconstructions and samples."""

from __future__ import annotations

from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Aux, Batch, Group, Objective
from vae_jax.objectives.terms import drawn, per_example

CHANNELS, DENSE = (32, 64, 128), 512


class Discriminator(nn.Module):
    """x: (B, H, W, C) in [0, 1] -> (the logit that x is a data image: (B,), Dis_l(x): (B, F))."""

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = x
        for width in CHANNELS:
            h = nn.relu(nn.Conv(width, (5, 5), strides=(2, 2))(h))
        features = h.reshape(h.shape[0], -1)
        return nn.Dense(1)(nn.relu(nn.Dense(DENSE)(features)))[:, 0], features


def scaled(tree: Params, weight: float) -> Params:
    """`tree` unchanged, with its gradient multiplied by `weight`."""
    return jax.tree.map(lambda a: jax.lax.stop_gradient(a) + weight * (a - jax.lax.stop_gradient(a)), tree)


def fakes(model: LatentModel, params: Params, z: jax.Array, batch: Batch, key: jax.Array) -> jax.Array:
    """The decoder's mean images of the codes z: (B, D), held fixed, and of as many prior draws: (2B, H, W, C)."""
    z_p = model.sample_prior(params, key, z.shape[0], batch.c)
    c = None if batch.c is None else jnp.concatenate([batch.c, batch.c])
    return model.decode_mean(params, jnp.concatenate([jax.lax.stop_gradient(z), z_p]), c)


def discriminator_cost(disc: Params, real: jax.Array, fake: jax.Array) -> jax.Array:
    """L_Dis: the mean cross-entropy on data (label 1) and on fakes (label 0), weighed equally."""
    bce = optax.sigmoid_binary_cross_entropy
    logit_real, _ = Discriminator().apply({"params": disc}, real)
    logit_fake, _ = Discriminator().apply({"params": disc}, fake)
    return 0.5 * jnp.mean(bce(logit_real, 1.0)) + 0.5 * jnp.mean(bce(logit_fake, 0.0))


def discriminator_loss(
    model: LatentModel, params: Params, disc: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    k_q, k_p = jax.random.split(key)
    _, _, z = per_example(drawn, model, params, batch.x, k_q, batch.c)
    value = discriminator_cost(disc, batch.x, jax.lax.stop_gradient(fakes(model, params, z, batch, k_p)))
    return value, {}


def init_discriminator(model: LatentModel, key: jax.Array) -> Params:
    return Discriminator().init(key, jnp.zeros((1, *model.image_shape)))["params"]


@dataclass(frozen=True)
class VAEGAN(Objective):
    """KL and the feature-wise reconstruction for the encoder; gamma of it and the GAN for the decoder."""

    gamma: float = 1e-6  # the decoder's weight of the reconstruction against the GAN term (--vaegan-gamma)
    lr: float = 1e-3  # the discriminator's learning rate (--lr)

    name = "vaegan"
    formula = "KL(q || p) + 1/2 |Dis_l(x) - Dis_l(Dec(z))|^2; the decoder also fools Dis"
    defines_likelihood = False
    best = "recon"

    @property
    def label(self) -> str:
        return f"VAE-GAN (gamma={self.gamma:g})"

    @property
    def groups(self) -> tuple[Group, ...]:
        return (Group("discriminator", init_discriminator, discriminator_loss, optax.adam(self.lr)),)

    def loss(
        self, model: LatentModel, params: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        disc = aux["groups"]["discriminator"]["params"]
        k_q, k_p = jax.random.split(key)
        recon, kl_dims, z = per_example(drawn, model, params, batch.x, k_q, batch.c)
        # the feature-wise reconstruction: all of its gradient to the encoder, gamma of it to the decoder
        weighted = {**params, "decoder": scaled(params["decoder"], self.gamma)}
        _, features = Discriminator().apply({"params": disc}, model.decode_mean(weighted, z, batch.c))
        _, target = Discriminator().apply({"params": disc}, batch.x)
        llike = 0.5 * jnp.mean(jnp.sum(jnp.square(features - target), axis=-1))
        # the GAN: -(1 - gamma) of the discriminator's loss to the decoder only
        only_decoder = {**jax.lax.stop_gradient(params), "decoder": params["decoder"]}
        gan = discriminator_cost(disc, batch.x, fakes(model, only_decoder, z, batch, k_p))
        kl = jnp.mean(jnp.sum(kl_dims, axis=-1))
        value = kl + llike - (1.0 - self.gamma) * gan
        return value, {"recon": jnp.mean(recon), "kl": kl, "feature_error": llike, "gan": gan}


def build(config) -> VAEGAN:
    return VAEGAN(config.vaegan_gamma, config.lr)
