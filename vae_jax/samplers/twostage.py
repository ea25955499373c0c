"""The fitted sampler `twostage`: the second stage of the two-stage VAE (Dai & Wipf 2019, "Diagnosing
and Enhancing VAE Models", §4), a VAE fitted to the latents z (N, D) with its own latent u of the
same size D:

    q(u|z) = N(mu(z), diag sd(z)^2),   p(u) = N(0, I),   p(z|u) = N(zhat(u), gamma^2 I),

gamma one learned scalar (log gamma starts at 0). Its networks are the paper's code's: `depth` ReLU
layers of `width` units, the input concatenated to the last of them before the output layer(s).
Fitted by Adam on the negative ELBO, learning rate 1e-4 halved every 300 epochs, batches of 64.

A draw is u ~ N(0, temperature^2 I) carried through the decoder's mean, z = zhat(u), as the paper
draws. Its log-density is not in closed form: log_prob is the importance-weighted bound of
DRAWS = 64 draws of q(u|z) (Burda et al. 2016), a lower bound on log p(z).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae_jax.distributions import gaussian_log_prob, kl_standard_normal
from vae_jax.samplers import adam

LEARNING_RATE, HALVE_EVERY = 1e-4, 300
DRAWS = 64  # importance samples of log_prob's bound
CHUNK = 256  # latents whose bound is computed at once (memory: CHUNK * DRAWS * width floats per layer)


class Network(nn.Module):
    """x (..., D) -> `heads` outputs, each (..., D): `depth` ReLU layers of `width`, then x joined to
    the last before each head's linear layer."""

    depth: int
    width: int
    heads: int

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, ...]:
        h = x
        for _ in range(self.depth):
            h = nn.relu(nn.Dense(self.width)(h))
        h = jnp.concatenate([x, h], axis=-1)
        return tuple(nn.Dense(x.shape[-1])(h) for _ in range(self.heads))


def _networks(depth: int, width: int) -> tuple[Network, Network]:
    """(encoder: z -> (mu, log sd) of q(u|z), decoder: u -> (zhat,))."""
    return Network(depth, width, 2), Network(depth, width, 1)


def _log_weights(params: dict, z: jax.Array, eps: jax.Array, depth: int, width: int) -> tuple[jax.Array, ...]:
    """For z (B, D) and noise eps (k, B, D): u = mu + sd eps ~ q(u|z) ->
    (log p(z|u) + log p(u) - log q(u|z): (k, B), log p(z|u): (k, B), KL(q(u|z) || p(u)) in closed
    form: (B,))."""
    encoder, decoder = _networks(depth, width)
    mean, log_sd = encoder.apply({"params": params["encoder"]}, z)
    u = mean + jnp.exp(log_sd) * eps
    (zhat,) = decoder.apply({"params": params["decoder"]}, u)
    log_gamma = params["log_gamma"]
    log_lik = jnp.sum(gaussian_log_prob(z, zhat, 2 * log_gamma), axis=-1)
    log_prior = jnp.sum(gaussian_log_prob(u, 0.0, 0.0), axis=-1)
    log_q = jnp.sum(gaussian_log_prob(u, mean, 2 * log_sd), axis=-1)
    kl = jnp.sum(kl_standard_normal(mean, 2 * log_sd), axis=-1)
    return log_lik + log_prior - log_q, log_lik, kl


def _elbo(params: dict, z: jax.Array, key: jax.Array, depth: int, width: int) -> jax.Array:
    """The one-draw ELBO of each z (B, D) with the KL in closed form, as the paper's loss: (B,)."""
    _, log_lik, kl = _log_weights(params, z, jax.random.normal(key, (1, *z.shape)), depth, width)
    return log_lik[0] - kl


def log_prob(state: dict, z: jax.Array, depth: int = 3, width: int = 1024, **_: int) -> jax.Array:
    """The `DRAWS`-sample importance-weighted lower bound on log p(z) (N,) of z (N, D), `CHUNK` rows at
    a time, with fixed noise (the same z, the same number)."""
    params = adam.unflatten(state)

    @jax.jit
    def bound(params: dict, chunk: jax.Array, key: jax.Array) -> jax.Array:
        log_w = _log_weights(params, chunk, jax.random.normal(key, (DRAWS, *chunk.shape)), depth, width)[0]
        return jax.nn.logsumexp(log_w, axis=0) - math.log(DRAWS)

    z = jnp.asarray(z, jnp.float32)
    keys = jax.random.split(jax.random.key(0), -(-z.shape[0] // CHUNK))
    return jnp.concatenate([bound(params, z[i * CHUNK : (i + 1) * CHUNK], k) for i, k in enumerate(keys)])


def sample(
    state: dict, key: jax.Array, n: int, temperature: float = 1.0, depth: int = 3, width: int = 1024, **_: int
) -> jax.Array:
    """n draws (n, D): z = zhat(u), u ~ N(0, temperature^2 I)."""
    params = adam.unflatten(state)
    u = temperature * jax.random.normal(key, (n, state["encoder/Dense_0/kernel"].shape[0]))
    return _networks(depth, width)[1].apply({"params": params["decoder"]}, u)[0]


def fit(z: jax.Array, key: jax.Array, depth: int = 3, width: int = 1024, epochs: int = 100):
    """(the fitted state, the mean ELBO of z (N, D) in each epoch (epochs,)): Adam on the negative ELBO."""
    z = jnp.asarray(z, jnp.float32)
    k_enc, k_dec, k_fit = jax.random.split(key, 3)
    encoder, decoder = _networks(depth, width)
    start = {
        "encoder": encoder.init(k_enc, z[:1])["params"],
        "decoder": decoder.init(k_dec, z[:1])["params"],
        "log_gamma": jnp.zeros(()),
    }

    def loss(params: dict, x: jax.Array, k: jax.Array) -> jax.Array:
        return -jnp.mean(_elbo(params, x, k, depth, width))

    params, history = adam.minimise(loss, start, z, k_fit, epochs, LEARNING_RATE, HALVE_EVERY)
    return adam.flatten(params), history
