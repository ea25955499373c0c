"""--flow hamiltonian, the Hamiltonian VAE's flow: its map of (z_0, momentum) has unit Jacobian
(jacfwd and slogdet), its tempering runs from beta_0 to 1, and its importance weights in the extended
space are unbiased for p(x) (a target whose normalizer is known in closed form)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae_jax.config import Config
from vae_jax.distributions import gaussian_log_prob
from vae_jax.families import build
from vae_jax.flows.hamiltonian import Hamiltonian, leapfrog, tempering

D = 3
MEAN, LOG_VAR, LOG_NORMALIZER = jnp.array([1.0, -0.5, 2.0]), jnp.array([-1.0, 0.3, 0.0]), 4.2


def log_joint(z: jax.Array) -> jax.Array:
    """log p(x, z) = log p(x) + log N(z; MEAN, diag exp(LOG_VAR)), log p(x) = LOG_NORMALIZER: (n, D) -> (n,)."""
    return LOG_NORMALIZER + jnp.sum(gaussian_log_prob(z, MEAN, LOG_VAR), axis=-1)


def test_tempering_runs_from_beta0_to_one():
    sqrt_betas = tempering(jnp.float32(0.3), 4)
    assert float(sqrt_betas[0]) == pytest.approx(math.sqrt(0.3)) and float(sqrt_betas[-1]) == pytest.approx(1.0)
    assert bool(jnp.all(jnp.diff(sqrt_betas) > 0))


def test_the_leapfrog_map_of_position_and_momentum_has_unit_jacobian():
    def bent(z):  # a target that is not Gaussian, so that the steps' gradients vary with z
        return jnp.sum(-0.5 * z**2 - 0.3 * jnp.cos(2 * z) * z[:, :1], axis=-1)

    eps, sqrt_betas = jnp.array([0.3, 0.2, 0.5]), tempering(jnp.float32(0.4), 3)

    def flow(state):
        z, rho = leapfrog(state[None, :D], state[None, D:] / sqrt_betas[0], eps, sqrt_betas, bent)
        return jnp.concatenate([z[0], rho[0]])

    state = jnp.array([0.4, -1.2, 0.7, 0.5, 0.1, -0.9])
    jacobian = jax.jacfwd(flow)(state)
    # gamma -> rho_0 = gamma / sqrt(beta_0) scales by beta_0^(-D/2); the tempering by beta_0^(D/2)
    assert float(jnp.linalg.slogdet(jacobian)[1]) == pytest.approx(0.0, abs=1e-4)


def test_its_importance_weights_are_unbiased_for_p_of_x():
    """log mean exp of the extended-space weights p(x, z_K) N(rho_K) / (q(z_0) N(gamma)) is log p(x)."""
    flow = Hamiltonian(D, 4, 0.2, 0.5)
    params = flow.init(jax.random.key(0))
    n, q_mean, q_log_var = 200_000, jnp.array([0.5, 0.0, 1.5]), jnp.array([-0.5, 0.0, 0.5])
    key_z, key_flow = jax.random.split(jax.random.key(1))
    z0 = q_mean + jnp.exp(0.5 * q_log_var) * jax.random.normal(key_z, (n, D))
    log_q0 = jnp.sum(gaussian_log_prob(z0, q_mean, q_log_var), axis=-1)
    z, log_det = jax.jit(lambda z0, key: flow(params, z0, None, key, log_joint))(z0, key_flow)
    log_w = np.asarray(log_joint(z) - (log_q0 - log_det), np.float64)
    assert not np.allclose(np.asarray(z), np.asarray(z0), atol=1e-3)  # the steps moved z
    w = np.exp(log_w - LOG_NORMALIZER)
    assert abs(w.mean() - 1.0) < 4 * w.std() / np.sqrt(n)


def test_a_vae_with_the_flow_learns_its_step_sizes_and_temperature():
    config = Config(dataset="mnist", hidden=(8,), latent_dim=D, flow="hamiltonian", flow_steps=2)
    vae = build(config, (4, 4, 1))
    params = vae.init(jax.random.key(0))
    assert set(params["flow"]) == {"log_eps", "beta0_logit"}
    x = jax.random.uniform(jax.random.key(1), (4, 4, 1))

    def loss(p):
        draw = vae.posterior(p, x, jax.random.key(2), 3)
        return jnp.mean(jax.vmap(vae.likelihood.log_prob, in_axes=(0, None))(draw.out, x) + draw.log_p - draw.log_q)

    grads = jax.grad(loss)(params)["flow"]
    assert float(jnp.abs(grads["log_eps"]).sum()) > 0 and float(jnp.abs(grads["beta0_logit"])) > 0
    assert vae.description["posterior"].startswith("diagonal Gaussian, then a hamiltonian flow: 2 tempered")
