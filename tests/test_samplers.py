"""The fitted samplers other than the mixture (vae_jax.samplers: maf, iaf): MADE's masks, the
densities against the change of variables by jacfwd + slogdet, draws that invert the density's map,
a fit that finds a known Gaussian, and sample.py storing each beside the checkpoint."""

from __future__ import annotations

import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vae_jax
from vae_jax import fitted, samplers
from vae_jax.samplers.autoregressive import IAF, MADE, MAF, _flatten, _unflatten

FLOWS = {"maf": MAF, "iaf": IAF}


def _random_state(dim: int, blocks: int = 2, hidden: int = 8, layers: int = 2, seed: int = 0) -> dict:
    """Blocks with every weight random (the output layer too: a fitted flow's is no longer zero)."""
    made = MADE(dim, hidden, layers)
    keys = jax.random.split(jax.random.key(seed), blocks)
    params = [made.init(k, jnp.zeros((1, dim)))["params"] for k in keys]
    leaves, tree = jax.tree_util.tree_flatten(params)
    noise = jax.random.split(jax.random.key(seed + 1), len(leaves))
    return _flatten(tree.unflatten([a + 0.3 * jax.random.normal(k, a.shape) for a, k in zip(leaves, noise)]))


def test_a_made_output_reads_only_the_units_before_it():
    state = _random_state(5, blocks=1)
    made = MADE(5, 8, 2)
    params = _unflatten(state)[0]
    reads = np.zeros((5, 5), bool)
    for x in jax.random.normal(jax.random.key(2), (3, 5)):
        for which in (0, 1):  # m, then s
            jac = np.asarray(jax.jacfwd(lambda v, w=which: made.apply({"params": params}, v[None])[w][0])(x))
            assert np.all(np.triu(jac) == 0), jac  # output i does not move with x_j for j >= i
            reads |= jac != 0
    assert reads[4, :4].all()  # and the last reads every unit before it


@pytest.mark.parametrize("name", FLOWS)
def test_the_density_is_the_change_of_variables_of_its_map(name):
    flow, dim = FLOWS[name], 3
    state = _random_state(dim)
    made = MADE(dim, 8, 2)

    def to_noise(x):
        return flow._to_noise(made, _unflatten(state), x[None])[0][0]

    x = jax.random.normal(jax.random.key(3), (4, dim))
    got = np.asarray(flow.log_prob(state, x, layers=2, hidden=8))
    for i in range(4):
        u = to_noise(x[i])
        _, log_det = np.linalg.slogdet(np.asarray(jax.jacfwd(to_noise)(x[i]), np.float64))
        expected = -0.5 * float(jnp.sum(u**2)) - dim / 2 * np.log(2 * np.pi) + log_det
        np.testing.assert_allclose(got[i], expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", FLOWS)
def test_a_draw_is_its_noise_carried_back_through_the_map(name):
    flow, dim = FLOWS[name], 4
    state = _random_state(dim, seed=5)
    key = jax.random.key(7)
    x = flow.sample(state, key, 6, temperature=0.7, layers=2, hidden=8)
    u, _ = flow._to_noise(MADE(dim, 8, 2), _unflatten(state), x)
    np.testing.assert_allclose(np.asarray(u), 0.7 * np.asarray(jax.random.normal(key, (6, dim))), atol=2e-4)


@pytest.mark.parametrize("name", FLOWS)
def test_a_fit_finds_a_correlated_gaussian(name):
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    z = rng.multivariate_normal([1.0, -2.0], cov, 3000).astype(np.float32)
    state, history = FLOWS[name].fit(jnp.asarray(z), jax.random.key(0), hidden=32, epochs=40)
    assert history[-1] > history[0] + 0.5  # it learned
    held_out = rng.multivariate_normal([1.0, -2.0], cov, 2000).astype(np.float32)
    got = float(np.mean(FLOWS[name].log_prob(state, jnp.asarray(held_out), hidden=32)))
    entropy = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * cov))  # the best any density can do: -H
    assert -entropy - 0.1 < got < -entropy + 0.05


def test_the_registry_refuses_an_option_its_sampler_does_not_read():
    assert samplers.names() == ("prior", "gmm", "maf", "iaf")
    with pytest.raises(vae_jax.errors.UserError, match="--components applies to --sampler gmm only"):
        samplers.options_of(samplers.chosen("maf"), {"components": 3})
    assert samplers.options_of(samplers.chosen("gmm"), {"components": None}) == {"components": 10}


def test_sample_py_stores_a_maf_beside_the_checkpoint_and_reads_it_again(tiny_run, tmp_path):
    ckpt = tmp_path / "run"
    shutil.copytree(tiny_run.workdir, ckpt)
    model = vae_jax.load(str(ckpt))
    stored = ckpt / f"sampler_maf_step{model.step}.npz"
    assert fitted.path_of(str(ckpt), model, "maf") == str(stored)
    command = [sys.executable, "sample.py", "--ckpt", str(ckpt), "--sampler", "maf", "--n", "4"]
    first = subprocess.run([*command, "--out", str(tmp_path / "a.png")], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "masked autoregressive flow" in first.stdout and f"stored {stored}" in first.stderr
    before = stored.stat().st_mtime_ns
    again = subprocess.run([*command, "--out", str(tmp_path / "b.png")], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and f"read {stored}" in again.stderr and stored.stat().st_mtime_ns == before
    used = fitted.read(str(stored), model, "maf")
    assert used.report["sampler"] == "maf" and used.report["epochs"] == 100
    refused = subprocess.run([*command, "--components", "3"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--components applies to --sampler gmm only" in refused.stderr


def test_a_mixture_of_more_components_than_latents_is_one_clear_error():
    from vae_jax.samplers import gmm

    with pytest.raises(vae_jax.errors.UserError, match="--components 5: more than the 3 training images"):
        gmm.fit(jnp.zeros((3, 2)), jax.random.key(0), components=5)
