"""--objective vqvae: the VQ-VAE's loss (van den Oord et al. 2017, "Neural Discrete Representation
Learning", arXiv:1711.00937, eq. 3), per example, summed over the h x w code positions:

    -log p(x | z_q) + |sg[z_e] - e|^2 + beta |z_e - sg[e]|^2

z_q reaches the decoder as z_e + sg[z_q - z_e] (straight through), so the reconstruction trains the
encoder; the commitment term (beta = --vq-beta, the paper's 0.25) keeps z_e near its code. The
codebook learns either by the codebook term above, through the optimizer (--codebook-update loss,
the paper's main text), or by exponential moving averages outside the gradient (ema, its
appendix A.1, as the official code computes them): with n_i the positions assigned to code i in the
batch and s_i the sum of their z_e,

    N_i <- g N_i + (1 - g) n_i,   m_i <- g m_i + (1 - g) s_i,   e_i = m_i / N~_i   (g = --vq-decay)

both averages debiased by 1 - g^t (zero at the start), N~ Laplace-smoothed:
N~_i = (N_i + eps) / (sum N + K eps) * sum N. The reported ELBO is log p(x | z_q) - h w log K, the
bound under the uniform prior the model trains with.

Dead-code restarts (--vq-restart r > 0; off by default, as in the paper): the random restarts of
Jukebox (Dhariwal et al. 2020, arXiv:2005.00341, as its code computes them). A moving average of
the positions each code is given per step, u_i <- g u_i + (1 - g) n_i, starts at r; after a step
each code whose u_i is below r becomes one of the batch's encoder outputs, drawn at random, and its
u_i is set back to r (with the ema rule its averages restart at that vector, given one position).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Aux, Batch, Objective

EPSILON = 1e-5  # the Laplace smoothing of the code counts (the official code's)


def perplexity(codes: jax.Array, k: int) -> jax.Array:
    """exp of the entropy of the codes' frequencies: how many codes are in use, evenly (1 to k).

    Args:
        codes: int code indices, any shape.
        k: the codebook's size.

    Returns:
        A scalar.
    """
    frequency = jnp.mean(jax.nn.one_hot(codes.ravel(), k), axis=0)
    return jnp.exp(-jnp.sum(jax.scipy.special.xlogy(frequency, frequency)))


def ema_codebook(state: dict, decay: float) -> jax.Array:
    """The code vectors (K, D) that the moving averages `state` give (see the module docstring).

    Args:
        state: {'count': (K,), 'sum': (K, D), 'steps': int32 scalar t >= 1}, the averages before debiasing.
        decay: g, the averages' decay.

    Returns:
        The code vectors (K, D).
    """
    debias = 1.0 - decay ** state["steps"].astype(jnp.float32)
    count, total = state["count"] / debias, state["sum"] / debias
    k, n = count.shape[0], jnp.sum(count)
    smoothed = (count + EPSILON) / (n + k * EPSILON) * n
    return total / smoothed[:, None]


@dataclass(frozen=True)
class VQVAE(Objective):
    """The VQ-VAE loss; the codebook trained by its loss term or by moving averages."""

    beta: float = 0.25  # the commitment term's weight
    rule: str = "loss"  # how the codebook learns: "loss" or "ema"
    decay: float = 0.99  # the moving averages' decay g
    restart: float = 0.0  # r: a code whose average positions per step fall below it restarts (0: never)

    name = "vqvae"
    formula = "log p(x | z_q) - |sg[z_e] - e|^2 - beta |z_e - sg[e]|^2"

    @property
    def label(self) -> str:
        rule = "moving averages" if self.rule == "ema" else "its loss"
        restarts = f", dead codes restarted below {self.restart:g}" if self.restart else ""
        return f"VQ-VAE (beta={self.beta:g}, codebook by {rule}{restarts})"

    def init(self, model: LatentModel, params: Params, key: jax.Array) -> Aux:
        """The moving averages at zero (ema) and each code's use at r (restarts); {} for neither."""
        k, d = model.codebook(params).shape
        state = {}
        if self.rule == "ema":
            state = {"count": jnp.zeros(k), "sum": jnp.zeros((k, d)), "steps": jnp.zeros((), jnp.int32)}
        if self.restart:
            state |= {"usage": jnp.full(k, self.restart), "fresh": jnp.zeros((k, d)), "dead": jnp.zeros(k, bool)}
        return state

    def loss(
        self, model: LatentModel, params: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        z_e, z_q, codes = model.quantize(params, batch.x)
        out = model.decode(params, z_e + jax.lax.stop_gradient(z_q - z_e))
        recon = jax.vmap(model.likelihood.log_prob)(out, batch.x)
        commitment = jnp.sum((z_e - jax.lax.stop_gradient(z_q)) ** 2, axis=-1)
        codebook = jnp.sum((jax.lax.stop_gradient(z_e) - z_q) ** 2, axis=-1)
        k = model.codebook(params).shape[0]
        kl = codes.shape[-1] * math.log(k)
        value = jnp.mean(-recon + self.beta * commitment + (codebook if self.rule == "loss" else 0.0))
        stats = {
            "elbo": jnp.mean(recon) - kl,
            "recon": jnp.mean(recon),
            "kl": jnp.asarray(kl, jnp.float32),
            "commitment": jnp.mean(commitment),
            "perplexity": perplexity(codes, k),
        }
        return value, stats

    def update(self, model: LatentModel, params: Params, aux: dict, batch: Batch, key: jax.Array, step) -> Aux:
        """The moving averages (ema) and the codes' use (restarts) after a step, from the batch's vectors
        under the updated encoder; the codes to restart and the vectors they restart at."""
        state = dict(aux["state"])
        if not state:
            return state
        z_e, _, codes = model.quantize(params, batch.x)
        k, d = model.codebook(params).shape
        one_hot = jax.nn.one_hot(codes.ravel(), k)  # (B h w, K)
        vectors, counts, g = z_e.reshape(-1, d), jnp.sum(one_hot, axis=0), self.decay
        if self.rule == "ema":
            state["count"] = g * state["count"] + (1 - g) * counts
            state["sum"] = g * state["sum"] + (1 - g) * one_hot.T @ vectors
            state["steps"] = state["steps"] + 1
        if self.restart:
            usage = g * state["usage"] + (1 - g) * counts
            dead = usage < self.restart
            fresh = vectors[jax.random.randint(jax.random.fold_in(key, 1), (k,), 0, len(vectors))]
            state |= {"usage": jnp.where(dead, self.restart, usage), "fresh": fresh, "dead": dead}
            if self.rule == "ema":  # the averages restart at the vector, given one position (after debiasing)
                debias = 1.0 - g ** state["steps"].astype(jnp.float32)
                state["count"] = jnp.where(dead, debias, state["count"])
                state["sum"] = jnp.where(dead[:, None], debias * fresh, state["sum"])
        return state

    def written(self, model: LatentModel, params: Params, state: Aux) -> Params:
        """The model's parameters with the codebook the moving averages give (ema; unchanged before the
        first update) and the restarted codes at their new vectors; unchanged for the loss rule without
        restarts."""
        if not state:
            return params
        codebook = model.codebook(params)
        if self.rule == "ema":
            steps = jnp.maximum(state["steps"], 1)  # before the first update: not read (no division by 0)
            averaged = ema_codebook({**state, "steps": steps}, self.decay)
            codebook = jnp.where(state["steps"] == 0, codebook, averaged)
        if self.restart:
            codebook = jnp.where(state["dead"][:, None], state["fresh"], codebook)
        return model.with_codebook(params, codebook)


def build(config) -> VQVAE:
    return VQVAE(config.vq_beta, config.codebook_update, config.vq_decay, config.vq_restart)
