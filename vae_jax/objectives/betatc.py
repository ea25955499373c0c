"""--objective beta-tc: the β-TCVAE (Chen et al. 2018, "Isolating Sources of Disentanglement in
Variational Autoencoders", eq. 4-5). The KL's expectation over the data splits in three,

    E_p(x)[KL(q(z|x) || p(z))] = I_q(x; z) + TC(z) + sum_j KL(q(z_j) || p(z_j)),
    I = E[log q(z|x) - log q(z)],  TC = E[log q(z) - sum_j log q(z_j)],  dim-wise KL = E[sum_j log q(z_j) - log p(z)],

and the β-TCVAE maximises E_q[log p(x|z)] - alpha I - beta TC - gamma (dim-wise KL). The aggregate
posterior q(z) = (1/N) sum_n q(z|x_n) of the N training images is estimated on the batch by minibatch
weighted sampling (MWS, §C.1; as disentanglement_lib) or minibatch stratified sampling (MSS, §C.2):

    log q(z_i) ~ logsumexp_j (log w_ij + log q(z_i|x_j)),  w_ij = 1 / (N B)   (MWS)
    w_ii = 1/N, w_i,i+1 = (N - M) / (N M), the other w_ij = 1/M, M = B - 1   (MSS)

and each log q(z_ij) alike per unit. alpha = gamma = 1 is the paper's setting (the ELBO + (1 - beta) TC);
beta = 6 sits in the range the paper and Locatello et al. 2019 sweep (1 to 10)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax.distributions import gaussian_log_prob
from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Aux, Batch, Objective
from vae_jax.objectives.terms import ReadsGaussian, gaussian_drawn, per_example

ESTIMATORS = ("mws", "mss")


def log_weights(b: int, n: int, estimator: str) -> jax.Array:
    """(B, B) log w_ij: the weight of q(z_i|x_j) in the estimate of q(z_i) from a batch of B of N images."""
    if estimator == "mws":
        return jnp.full((b, b), -math.log(n * b))
    m = b - 1
    w = jnp.full((b, b), 1.0 / m)
    w = w.at[jnp.arange(b), (jnp.arange(b) + 1) % b].set((n - m) / (n * m))
    return jnp.log(w.at[jnp.arange(b), jnp.arange(b)].set(1.0 / n))


def decomposition(
    z: jax.Array, mean: jax.Array, log_var: jax.Array, log_p: jax.Array, n: int, estimator: str = "mws"
) -> dict[str, jax.Array]:
    """Batch estimates of the three parts of the KL's expectation: z, mean, log_var (B, D) of draws
    z_i ~ q(z|x_i) and their posteriors; log_p (B,): log p(z_i); n: the training set's size N ->
    {'mi', 'tc', 'dimwise_kl'}, batch means, in nats (they sum to the mean of log q(z|x) - log p(z))."""
    pairs = gaussian_log_prob(z[:, None, :], mean[None], log_var[None])  # (B, B, D): log q(z_i,d | x_j)
    log_w = log_weights(z.shape[0], n, estimator)
    log_q_zx = jnp.sum(jnp.diagonal(pairs, axis1=0, axis2=1), axis=0)  # (B,): log q(z_i|x_i)
    log_qz = jax.nn.logsumexp(log_w + jnp.sum(pairs, axis=-1), axis=1)
    log_marginals = jnp.sum(jax.nn.logsumexp(log_w[..., None] + pairs, axis=1), axis=-1)
    return {
        "mi": jnp.mean(log_q_zx - log_qz),
        "tc": jnp.mean(log_qz - log_marginals),
        "dimwise_kl": jnp.mean(log_marginals - log_p),
    }


@dataclass(frozen=True)
class BetaTCVAE(ReadsGaussian, Objective):
    """The reconstruction less the weighted parts of the KL, estimated on the whole batch."""

    alpha: float = 1.0  # the weight of the index-code mutual information (--tc-alpha)
    beta: float = 6.0  # the weight of the total correlation (--tc-beta)
    gamma: float = 1.0  # the weight of the dimension-wise KL (--tc-gamma)
    estimator: str = "mws"  # minibatch weighted ("mws") or stratified ("mss") sampling (--tc-estimator)

    name = "beta-tc"
    formula = "E_q[log p(x|z)] - alpha I(x; z) - beta TC(z) - gamma sum_j KL(q(z_j) || p(z_j))"

    @property
    def label(self) -> str:
        weights = "" if self.alpha == self.gamma == 1.0 else f", alpha={self.alpha:g}, gamma={self.gamma:g}"
        return f"beta-TCVAE (beta={self.beta:g}{weights}, {self.estimator.upper()})"

    def loss(
        self, model: LatentModel, params: Params, aux: Aux, batch: Batch, key: jax.Array, step: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        recon, kl_dims, log_p, z, mean, log_var = per_example(gaussian_drawn, model, params, batch.x, key, batch.c)
        parts = decomposition(z, mean, log_var, log_p, batch.n_train, self.estimator)
        recon, kl = jnp.mean(recon), jnp.mean(jnp.sum(kl_dims, axis=-1))
        penalty = self.alpha * parts["mi"] + self.beta * parts["tc"] + self.gamma * parts["dimwise_kl"]
        return -(recon - penalty), {"elbo": recon - kl, "recon": recon, "kl": kl} | parts


def build(config) -> BetaTCVAE:
    return BetaTCVAE(config.tc_alpha, config.tc_beta, config.tc_gamma, config.tc_estimator)
