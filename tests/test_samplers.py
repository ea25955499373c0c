"""The fitted samplers other than the mixture (vae_jax.samplers: maf, iaf, twostage): MADE's masks, the
flows' densities against the change of variables by jacfwd + slogdet, draws that invert the density's
map, the two-stage VAE's bound against the closed form of a linear-Gaussian second stage, fits that
find a known Gaussian, and sample.py storing each beside the checkpoint."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vae_jax
from vae_jax import fitted, samplers
from vae_jax.samplers import adam, progress, twostage
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


def _linear_second_stage(dim: int, a: float, b: float, gamma: float, exact: bool = True, depth: int = 2) -> dict:
    """A two-stage state whose decoder is zhat(u) = a u + b (its ReLU layers read, then ignored), so
    that p(z) = N(b, (a^2 + gamma^2) I); its encoder the exact posterior q(u|z) = p(u|z) when `exact`,
    else one too narrow and off-centre."""
    params = jax.tree.map(
        np.array, adam.unflatten(twostage.fit(jnp.zeros((1, dim)), jax.random.key(0), depth, 8, 0)[0])
    )
    heads = [f"Dense_{depth}", f"Dense_{depth + 1}"]
    variance = a * a + gamma * gamma
    gain, log_sd = a / variance, 0.5 * np.log(gamma * gamma / variance)
    for net, rows, biases in (
        ("decoder", [a], [b]),
        ("encoder", [gain, 0.0], [-gain * b + (0.0 if exact else 0.3), log_sd - (0.0 if exact else 0.5)]),
    ):
        for head, row, bias in zip(heads, rows, biases):
            params[net][head]["kernel"][:] = 0.0
            params[net][head]["kernel"][:dim] = row * np.eye(dim)
            params[net][head]["bias"][:] = bias
    params["log_gamma"] = np.asarray(np.log(gamma), np.float32)
    return adam.flatten(params)


def test_the_two_stage_bound_is_the_closed_form_where_its_encoder_is_exact_and_below_it_where_not():
    dim, a, b, gamma = 3, 1.5, 0.4, 0.6
    z = np.asarray(jax.random.normal(jax.random.key(1), (1000, dim))) * 2
    variance = a * a + gamma * gamma
    closed = -0.5 * np.sum((z - b) ** 2, -1) / variance - dim / 2 * np.log(2 * np.pi * variance)
    exact = _linear_second_stage(dim, a, b, gamma)
    np.testing.assert_allclose(np.asarray(twostage.log_prob(exact, z, depth=2, width=8)), closed, rtol=1e-5, atol=1e-4)
    keys = jax.random.split(jax.random.key(2), 20000)
    elbos = jax.vmap(lambda k: twostage._elbo(adam.unflatten(exact), jnp.asarray(z[:5]), k, 2, 8))(keys)
    np.testing.assert_allclose(np.mean(elbos, 0), closed[:5], atol=0.05)  # one draw's ELBO: log p(z) in expectation
    poor = np.asarray(twostage.log_prob(_linear_second_stage(dim, a, b, gamma, exact=False), z, depth=2, width=8))
    assert -1.0 < np.mean(poor - closed) < -0.2  # below it on average (one estimate may be above)


def test_a_two_stage_draw_is_the_decoder_mean_of_a_prior_draw():
    state = _linear_second_stage(2, 1.5, 0.4, 0.6)
    key = jax.random.key(4)
    drawn = np.asarray(twostage.sample(state, key, 7, temperature=0.5, depth=2, width=8))
    np.testing.assert_allclose(drawn, 1.5 * 0.5 * np.asarray(jax.random.normal(key, (7, 2))) + 0.4, atol=1e-5)


FITS = {
    "maf": (MAF.fit, MAF.log_prob, {"hidden": 32}, 40),
    "iaf": (IAF.fit, IAF.log_prob, {"hidden": 32}, 40),
    "twostage": (twostage.fit, twostage.log_prob, {"depth": 2, "width": 64}, 200),  # Adam at 1e-4: a slower start
}


@pytest.mark.parametrize("name", FITS)
def test_a_fit_finds_a_correlated_gaussian(name):
    fit, log_prob, size, epochs = FITS[name]
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    z = rng.multivariate_normal([1.0, -2.0], cov, 3000).astype(np.float32)
    state, history = fit(jnp.asarray(z), jax.random.key(0), **size, epochs=epochs)
    assert history[-1] > history[0] + 0.5  # it learned
    held_out = rng.multivariate_normal([1.0, -2.0], cov, 2000).astype(np.float32)
    got = float(np.mean(log_prob(state, jnp.asarray(held_out), **size)))
    entropy = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * cov))  # the best any density can do: -H
    assert -entropy - 0.1 < got < -entropy + 0.05


def test_the_registry_refuses_an_option_its_sampler_does_not_read():
    assert samplers.names() == ("prior", "gmm", "maf", "iaf", "twostage", "pixelcnn")
    with pytest.raises(vae_jax.errors.UserError, match="--components applies to --sampler gmm only"):
        samplers.options_of(samplers.chosen("maf"), {"components": 3})
    assert samplers.options_of(samplers.chosen("gmm"), {"components": None}) == {"components": 10}


@pytest.mark.parametrize("name, words", [("maf", "masked autoregressive flow"), ("twostage", "second VAE")])
def test_sample_py_stores_a_fitted_sampler_beside_the_checkpoint_and_reads_it_again(tiny_run, tmp_path, name, words):
    ckpt = tmp_path / "run"
    shutil.copytree(tiny_run.workdir, ckpt)
    model = vae_jax.load(str(ckpt))
    stored = ckpt / f"sampler_{name}_step{model.step}.npz"
    assert fitted.path_of(str(ckpt), model, name) == str(stored)
    command = [sys.executable, "sample.py", "--ckpt", str(ckpt), "--sampler", name, "--n", "4"]
    first = subprocess.run([*command, "--out", str(tmp_path / "a.png")], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert words in first.stdout and f"stored {stored}" in first.stderr
    before = stored.stat().st_mtime_ns
    again = subprocess.run([*command, "--out", str(tmp_path / "b.png")], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and f"read {stored}" in again.stderr and stored.stat().st_mtime_ns == before
    used = fitted.read(str(stored), model, name)
    assert used.report["sampler"] == name and used.report["epochs"] == 100
    refused = subprocess.run([*command, "--components", "3"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--components applies to --sampler gmm only" in refused.stderr


def test_a_mixture_of_more_components_than_latents_is_one_clear_error():
    from vae_jax.samplers import gmm

    with pytest.raises(vae_jax.errors.UserError, match="--components 5: more than the 3 training images"):
        gmm.fit(jnp.zeros((3, 2)), jax.random.key(0), components=5)


def _quadratic(p, x, k):
    """A loss whose every step reads its key, so a resumed fit must draw the same keys to agree."""
    return jnp.mean((x - p["w"]) ** 2) + 0.01 * jax.random.normal(k) * jnp.sum(p["w"])


def _interrupted_at(epoch: int, monkeypatch):
    """progress.keep as it is, then Ctrl-C once `epoch` epochs are kept."""
    keep = progress.keep

    def keep_then_stop(carry, history):
        keep(carry, history)
        if len(history) == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(progress, "keep", keep_then_stop)


@pytest.mark.parametrize("convolutional", [False, True], ids=["scanned", "one-step-per-call"])
def test_a_fit_stopped_after_an_epoch_goes_on_from_it_to_the_uninterrupted_result(convolutional, tmp_path, caplog):
    z = jax.random.normal(jax.random.key(1), (300, 2)) + 3.0
    start, record, path = {"w": jnp.zeros(2)}, {"fit": "quadratic", "seed": 0}, str(tmp_path / "fit.partial.npz")
    straight = adam.minimise(_quadratic, start, z, jax.random.key(2), 4, 0.1, convolutional=convolutional)
    for stop in (1, 3):
        with pytest.MonkeyPatch.context() as patch:
            _interrupted_at(stop, patch)
            with pytest.raises(KeyboardInterrupt), progress.kept(path, record):
                adam.minimise(_quadratic, start, z, jax.random.key(2), 4, 0.1, convolutional=convolutional)
        assert len(np.load(path)["history"]) == stop
        with progress.kept(path, record):
            resumed = adam.minimise(_quadratic, start, z, jax.random.key(2), 4, 0.1, convolutional=convolutional)
            progress.done()
        assert f"fit: going on from epoch {stop + 1}" in caplog.text and not os.path.exists(path)
        np.testing.assert_array_equal(resumed[0]["w"], straight[0]["w"])
        np.testing.assert_array_equal(resumed[1], straight[1])


def test_the_progress_of_another_fit_is_set_aside_and_the_fit_starts_again(tmp_path, caplog, monkeypatch):
    z = jax.random.normal(jax.random.key(1), (300, 2))
    start, path = {"w": jnp.zeros(2)}, str(tmp_path / "fit.partial.npz")
    straight = adam.minimise(_quadratic, start, z, jax.random.key(2), 3, 0.1)
    _interrupted_at(1, monkeypatch)
    with pytest.raises(KeyboardInterrupt), progress.kept(path, {"seed": 0}):
        adam.minimise(_quadratic, start, z, jax.random.key(2), 3, 0.1)
    monkeypatch.undo()
    with progress.kept(path, {"seed": 1}):  # another fit: not resumed from the first one's epoch
        again = adam.minimise(_quadratic, start, z, jax.random.key(2), 3, 0.1)
    assert "holds another fit; moved to" in caplog.text and len(list(tmp_path.glob("set-aside-*"))) == 1
    np.testing.assert_array_equal(again[0]["w"], straight[0]["w"])


def test_a_fitted_sampler_stopped_mid_fit_goes_on_when_asked_again(tiny_run, tmp_path, monkeypatch, caplog):
    for name in ("straight", "stopped"):
        shutil.copytree(tiny_run.workdir, tmp_path / name)
    model = vae_jax.load(str(tmp_path / "straight"))
    straight = fitted.load_or_fit(model, str(tmp_path / "straight"), "maf", epochs=6)
    with pytest.MonkeyPatch.context() as patch:
        _interrupted_at(4, patch)
        with pytest.raises(KeyboardInterrupt):
            fitted.load_or_fit(model, str(tmp_path / "stopped"), "maf", epochs=6)
    kept = tmp_path / "stopped" / f"sampler_maf_step{model.step}.partial.npz"
    assert len(np.load(kept)["history"]) == 4 and f"its epochs so far are kept in {kept}: ask again" in caplog.text
    resumed = fitted.load_or_fit(model, str(tmp_path / "stopped"), "maf", epochs=6)
    assert not kept.exists() and resumed.state.keys() == straight.state.keys()
    for name, array in straight.state.items():
        np.testing.assert_array_equal(resumed.state[name], array)
