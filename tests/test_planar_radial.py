"""Planar and radial flows (Rezende & Mohamed 2015): each step's log-determinant, and the whole
flow's, against jacfwd + slogdet of the map itself; the constraints that keep them invertible hold
for any parameters the encoder may give; and a VAE with either flow's log q(z|x) is the Gaussian's
less the flow's log-determinant."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae_jax.config import Config
from vae_jax.distributions import gaussian_log_prob
from vae_jax.families import build
from vae_jax.flows import planar, radial
from vae_jax.flows.steps import Steps

D = 4


def brute_log_det(f, z: jax.Array) -> np.ndarray:
    """log |det df/dz| of a map f: (D,) -> (D,) at each row of z (B, D), from its Jacobian."""
    return np.array([np.linalg.slogdet(np.asarray(jax.jacfwd(f)(row), np.float64))[1] for row in z])


def random_params(step, scale: float, seed: int):
    params = step.init(jax.random.key(seed), jnp.zeros((1, D)), jnp.zeros((1, 6)))["params"]
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    return jax.tree.unflatten(tree, [scale * jax.random.normal(k, a.shape) for k, a in zip(keys, leaves)])


@pytest.mark.parametrize("step_class", [planar.PlanarStep, radial.RadialStep])
@pytest.mark.parametrize("scale", [0.3, 3.0])  # gentle and wild parameters from the encoder
def test_a_step_log_det_is_that_of_its_jacobian_and_the_step_is_invertible(step_class, scale):
    step = step_class(D)
    for seed in range(3):
        params = random_params(step, scale, seed)
        z, h = (
            jax.random.normal(jax.random.key(10 + seed), (5, D)),
            jax.random.normal(jax.random.key(20 + seed), (5, 6)),
        )
        _, log_det = step.apply({"params": params}, z, h)
        for i in range(5):
            f = lambda v, i=i: step.apply({"params": params}, v[None], h[i : i + 1])[0][0]  # noqa: E731
            jac = np.asarray(jax.jacfwd(f)(z[i]), np.float64)
            sign, want = np.linalg.slogdet(jac)
            assert sign > 0  # invertible, orientation kept: never a fold
            np.testing.assert_allclose(log_det[i], want, rtol=1e-4, atol=1e-4)


def test_the_planar_constraint_gives_w_u_at_least_minus_one_by_moving_u_along_w():
    u, w = (jax.random.normal(jax.random.key(k), (1000, D)) * 5 for k in (0, 1))
    assert (
        float(jnp.min(jnp.sum(w * planar.invertible_u(u, w), axis=-1))) >= -1.0 - 1e-4
    )  # float32 rounding at the boundary
    # the appendix's construction: w'u_hat = m(w'u) = softplus(w'u) - 1, u moved along w only
    u_hat = planar.invertible_u(u, w)
    np.testing.assert_allclose(jnp.sum(w * u_hat, -1), jax.nn.softplus(jnp.sum(w * u, -1)) - 1, rtol=1e-4, atol=1e-3)
    moved = u_hat - u
    along = jnp.sum(moved * w, -1, keepdims=True) / jnp.sum(w * w, -1, keepdims=True) * w
    np.testing.assert_allclose(moved, along, atol=1e-4)


@pytest.mark.parametrize("step_class", [planar.PlanarStep, radial.RadialStep])
def test_the_flow_sums_its_steps_log_dets(step_class):
    flow = Steps(D, 3, 6, step_class, "x")
    params = flow.init(jax.random.key(0))
    params = jax.tree.map(lambda a: a + 0.5 * jax.random.normal(jax.random.key(1), a.shape), params)
    z, h = jax.random.normal(jax.random.key(2), (4, D)), jax.random.normal(jax.random.key(3), (4, 6))
    out, log_det = flow(params, z, h)
    want = [brute_log_det(lambda v, i=i: flow(params, v[None], h[i : i + 1])[0][0], z[i : i + 1])[0] for i in range(4)]
    np.testing.assert_allclose(log_det, want, rtol=1e-4, atol=1e-4)
    assert flow.diagonal(params, z, h)[1] is None and np.array_equal(flow.diagonal(params, z, h)[0], out)


@pytest.mark.parametrize("name", ["planar", "radial"])
def test_a_vae_with_the_flow_has_log_q_the_gaussians_less_the_log_det(name):
    config = Config(hidden=(16,), latent_dim=3, flow=name, flow_steps=2, flow_hidden=8)
    model = build(config, (6, 6, 1))
    params = model.init(jax.random.key(0))
    x = (jax.random.uniform(jax.random.key(1), (6, 6, 1)) > 0.5).astype(jnp.float32)
    draw = model.posterior(params, x, jax.random.key(2), 7)
    mean, log_var, context = model.gaussian(params, x[None])
    z0 = mean + jnp.exp(0.5 * log_var) * jax.random.normal(jax.random.key(2), (7, 3))
    z_t, log_det = model.flow(params["flow"], z0, jnp.broadcast_to(context, (7, context.shape[-1])))
    np.testing.assert_allclose(draw.z, z_t, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(draw.log_q, jnp.sum(gaussian_log_prob(z0, mean, log_var), -1) - log_det, rtol=1e-5)
    assert draw.gaussian is None and name in model.description["posterior"] and not model.kl_analytic
