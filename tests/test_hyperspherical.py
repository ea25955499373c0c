"""--latent-space sphere, the hyperspherical VAE: the von Mises-Fisher maths against scipy and brute
force (its KL, density, mean resultant length, the gradient of its draws), and the model from the
command line and the API: it trains, resumes bitwise, samples, evaluates, encodes and opens in the
explorer; what it has no use for is refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
from conftest import DIGITS8, run_command, straight_and_resumed
from PIL import Image
from scipy.stats import vonmises_fisher

import vae_jax
from vae_jax import vmf
from vae_jax.commands import encode, evaluate, sample

CASES = [(2, 0.5), (3, 1.0), (3, 40.0), (5, 10.0), (10, 1000.0), (64, 20.0)]  # (m, kappa)


def _a(m: int, kappa: float) -> float:
    """A_m(kappa) in float64 (scipy)."""
    return scipy.special.ive(m / 2, kappa) / scipy.special.ive(m / 2 - 1, kappa)


def _draws(m: int, kappa: float, n: int, seed: int = 0) -> tuple[jax.Array, jax.Array, jax.Array]:
    mu = jnp.zeros((n, m)).at[:, 0].set(1.0)
    kappas = jnp.full((n,), kappa, jnp.float32)
    z, eps = jax.jit(vmf.sample)(jax.random.key(seed), mu, kappas)
    return z, eps, kappas


@pytest.mark.parametrize("m, kappa", CASES)
def test_the_kl_and_density_are_scipys(m, kappa):
    mu = np.eye(m)[0]
    reference = vonmises_fisher(mu, kappa)
    kl = float(vmf.kl_to_uniform(jnp.float32(kappa), m))
    assert kl == pytest.approx(vmf.log_sphere_area(m) - reference.entropy(), rel=1e-4, abs=1e-5)
    z = np.asarray(_draws(m, kappa, 5)[0])
    expected = reference.logpdf(z.astype(np.float64))
    np.testing.assert_allclose(
        vmf.log_prob(jnp.asarray(z), jnp.asarray(mu, jnp.float32), jnp.float32(kappa)), expected, rtol=1e-5, atol=1e-4
    )
    assert vmf.log_sphere_area(3) == pytest.approx(np.log(4 * np.pi))


@pytest.mark.parametrize("v, x", [(0.0, 0.3), (1.5, 2.0), (31.0, 5.0), (4.0, 800.0)])
def test_log_bessel_and_its_derivative_are_scipys(v, x):
    assert float(vmf.log_iv(v, jnp.float32(x))) == pytest.approx(np.log(scipy.special.ive(v, x)) + x, rel=1e-6)
    slope = scipy.special.ive(v + 1, x) / scipy.special.ive(v, x) + v / x  # d/dx log I_v(x)
    assert float(jax.grad(lambda t: vmf.log_iv(v, t))(jnp.float32(x))) == pytest.approx(slope, rel=1e-5)


@pytest.mark.parametrize("m, kappa", CASES)
def test_draws_lie_on_the_sphere_with_the_vmf_mean_resultant_length(m, kappa):
    z, _, _ = _draws(m, kappa, 20_000, seed=m)
    np.testing.assert_allclose(jnp.linalg.norm(z, axis=-1), 1.0, atol=1e-5)
    w = np.asarray(z[:, 0], np.float64)
    assert abs(w.mean() - _a(m, kappa)) < 4 * w.std() / np.sqrt(len(w)) + 1e-6
    assert float(vmf.mean_resultant_length(jnp.float32(kappa), m)) == pytest.approx(_a(m, kappa), rel=1e-5)
    tangent = np.asarray(z[:, 1:])  # uniform about mu: no direction of the tangent space preferred
    assert np.abs(tangent.mean(0)).max() < 5 * np.sqrt((1 - (w**2).mean()) / (m - 1) / len(w)) + 1e-6


def test_a_draw_about_any_mean_direction_is_the_draw_about_e1_turned_onto_it():
    m, n = 6, 2000
    mu = jax.random.normal(jax.random.key(1), (m,))
    mu = mu / jnp.linalg.norm(mu)
    z, _ = vmf.sample(jax.random.key(2), jnp.broadcast_to(mu, (n, m)), jnp.full((n,), 5.0))
    assert float(jnp.mean(z @ mu)) == pytest.approx(_a(m, 5.0), abs=4 * 0.5 / np.sqrt(n))
    np.testing.assert_allclose(vmf.householder(jnp.eye(m)[0], mu), mu, atol=1e-6)


@pytest.mark.parametrize("m, kappa", [(3, 0.5), (3, 2.0), (10, 10.0)])
def test_the_corrected_gradient_of_an_expectation_is_unbiased_and_without_the_correction_it_is_not(m, kappa):
    """d/dkappa E[mu.z] = A_m'(kappa): the reparameterised gradient plus the correction of the
    acceptance (vmf.score) matches it; the reparameterised part alone falls short."""

    def estimate(k, key, correct):
        mu = jnp.zeros((20_000, m)).at[:, 0].set(1.0)
        kappas = jnp.full((20_000,), k)
        z, eps = vmf.sample(key, mu, kappas)
        f = z[:, 0]
        if correct:
            f = f + jax.lax.stop_gradient(f) * vmf.score(eps, kappas, m)
        return jnp.mean(f)

    truth = (_a(m, kappa + 1e-5) - _a(m, kappa - 1e-5)) / 2e-5
    for correct in (True, False):
        gradient = jax.jit(jax.grad(estimate), static_argnums=2)
        grads = np.array([float(gradient(jnp.float32(kappa), jax.random.key(s), correct)) for s in range(6)])
        se = grads.std(ddof=1) / np.sqrt(len(grads))
        if correct:
            assert abs(grads.mean() - truth) < 4 * se + 1e-4 * truth
        else:
            assert truth - grads.mean() > 8 * se
    z, eps, kappas = _draws(m, kappa, 4)
    np.testing.assert_array_equal(vmf.score(eps, kappas, m), 0.0)  # the correction adds nothing to the value


SMALL = ["--dataset", DIGITS8, "--hidden", 16, "--latent-dim", 3, "--latent-space", "sphere", "--batch-size", 32]


@pytest.fixture(scope="module")
def sphere_runs(tmp_path_factory):
    """The run's folder: two epochs straight ('straight'), and one resumed from its first ('resumed')."""
    root = tmp_path_factory.mktemp("sphere")
    straight_and_resumed(root, [*SMALL, "--eval-k", 4])
    return root


@pytest.mark.slow
def test_the_sphere_trains_resumes_bitwise_samples_and_says_what_it_is(sphere_runs, tmp_path, monkeypatch):
    resumed, straight = (vae_jax.load(str(sphere_runs / w), ema=False) for w in ("resumed", "straight"))
    assert resumed.step == straight.step and resumed.epoch == 2
    for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(straight.params)):
        np.testing.assert_array_equal(a, b)
    assert "von Mises-Fisher" in straight.vae.description["posterior"]
    assert straight.vae.description["prior"] == "uniform on the unit sphere S^2"
    z = straight.vae.sample_prior(straight.params, jax.random.key(0), 50)
    np.testing.assert_allclose(jnp.linalg.norm(z, axis=-1), 1.0, atol=1e-5)
    for mode in ("samples", "reconstructions", "interpolate", "traverse", "latents"):
        out = tmp_path / f"{mode}.png"
        run_command(sample, monkeypatch, "--ckpt", sphere_runs / "straight", "--mode", mode, "--out", out, "--n", 4)
        assert Image.open(out).size[0] > 8
    with pytest.raises(vae_jax.UserError, match="the uniform prior on the sphere has none"):
        straight.sample(jax.random.key(0), 4, 0.5)


@pytest.mark.slow
def test_the_sphere_evaluates_with_its_closed_form_kl_and_encodes(sphere_runs, tmp_path, monkeypatch, capsys):
    ckpt = sphere_runs / "straight"
    run_command(evaluate, monkeypatch, "--ckpt", ckpt, "--k", 50, "--out", tmp_path / "e.json")
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["kl_per_dim"] is None and result["latent"]["kl"].startswith("closed form")
    assert np.isfinite(result["nll"]) and result["nll"] <= -result["elbo"] + 1.0
    model = vae_jax.load(str(ckpt))
    x = np.load(DIGITS8)["x_test"][:64, ..., None].astype(np.float32) / 255
    mu, kappa = model.vae.von_mises_fisher(model.params, jnp.asarray(x))
    one = model.evaluate(x, k=1)  # the ELBO's KL is the closed form at each image's kappa
    assert one["kl"] == pytest.approx(float(jnp.mean(vmf.kl_to_uniform(kappa, 3))), rel=1e-5)
    mean, log_var = model.encode(x)
    np.testing.assert_allclose(mean, mu, atol=1e-6)
    np.testing.assert_allclose(log_var[:, 0], -np.log(kappa), rtol=1e-5)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(np.load(DIGITS8)["x_test"][:3]):
        Image.fromarray(image).save(folder / f"{i}.png")
    run_command(encode, monkeypatch, "--ckpt", ckpt, "--images", folder, "--out", tmp_path / "z.npz")
    np.testing.assert_allclose(np.linalg.norm(np.load(tmp_path / "z.npz")["mean"], axis=-1), 1.0, atol=1e-5)
    with pytest.raises(vae_jax.UserError, match="this model's z lies on a manifold"):
        run_command(sample, monkeypatch, "--ckpt", ckpt, "--sampler", "gmm", "--out", tmp_path / "g.png")


@pytest.mark.slow
def test_the_sphere_opens_in_the_explorer_ranked_by_posterior_spread(sphere_runs):
    from vae_jax import data
    from vae_jax.explorer.session import open_session

    model = vae_jax.load(str(sphere_runs / "straight"))
    dataset = data.of_run(model.config)
    session = open_session(model, dataset.test_images[:200], dataset.test_labels[:200])
    assert "variance of the posterior means" in session.activity_how
    u = session.standard("test:4", None)
    np.testing.assert_allclose(np.linalg.norm(u), np.sqrt(3), rtol=1e-5)  # on the sphere, in prior std units
    assert session.show(u[None], None).shape[0] == 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--prior", "mog"], "drop --prior mog"),
        (["--flow", "iaf"], "drop --flow iaf"),
        (["--conditional"], "drop --conditional"),
        (["--free-bits", 1], "drop --free-bits"),
        (["--latent-dim", 1], "needs --latent-dim 2 or more"),
        (["--model", "hvae"], "--latent-space sphere applies to --model mlp, conv, resnet, not hvae"),
        (["--objective", "beta-tc"], "needs q(z|x) to be one diagonal Gaussian"),
    ],
)
def test_what_the_sphere_has_no_use_for_is_a_one_line_error(flags, message, tmp_path):
    argv = [*map(str, SMALL), *map(str, flags), "--epochs", "1", "--workdir", str(tmp_path / "w")]
    proc = subprocess.run([sys.executable, "train.py", *argv], capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]  # (a refusal after the data is read
    # follows the data's log lines)
    assert proc.returncode == 2 and len(errors) == 1 and message in errors[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "w" / "checkpoints").exists()
