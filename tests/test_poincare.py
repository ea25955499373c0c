"""--latent-space poincare, the Poincaré VAE: the ball's maps and the wrapped normal's density against
brute force (a numerical integration over the disk; the change of variables of its sampler by
jacfwd and slogdet), and the model from the command line and the API: it trains, resumes bitwise,
samples at a temperature, evaluates, encodes and opens in the explorer; what it has no use for is
refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import DIGITS8, run_command, straight_and_resumed
from PIL import Image

import vae_jax
from vae_jax import poincare
from vae_jax.commands import encode, evaluate, sample

POSTERIORS = [((0.0, 0.0), (0.0, 0.0)), ((0.5, -0.3), (-1.0, 0.5)), ((-0.1, 0.85), (-3.0, -2.0))]


@pytest.mark.parametrize("c", [1.0, 0.3])
@pytest.mark.parametrize("mu, log_var", POSTERIORS)
def test_the_wrapped_normal_integrates_to_one_over_the_disk_and_its_draws_have_its_mean(c, mu, log_var):
    """In d = 2: the density times the Riemannian volume lambda_z^2, summed on a polar grid, is 1, and
    the draws' mean is the density's."""
    mu, log_var = jnp.array(mu) / c**0.5, jnp.array(log_var)
    n, radius = 1500, (1 - 1e-6) / c**0.5
    r = (np.arange(n) + 0.5) / n * radius
    theta = (np.arange(n) + 0.5) / n * 2 * np.pi
    rr, tt = np.meshgrid(r, theta, indexing="ij")
    z = jnp.asarray(np.stack([rr * np.cos(tt), rr * np.sin(tt)], -1), jnp.float32)
    volume = np.asarray(poincare.conformal_factor(z, c)[..., 0], np.float64) ** 2 * rr * (radius / n) * (2 * np.pi / n)
    density = np.exp(np.asarray(poincare.log_prob(z, mu, log_var, c), np.float64)) * volume
    assert density.sum() == pytest.approx(1.0, abs=2e-3)
    draws = poincare.sample(
        jax.random.key(0), jnp.broadcast_to(mu, (100_000, 2)), jnp.broadcast_to(log_var, (100_000, 2)), c
    )
    mean = (density[..., None] * np.asarray(z, np.float64)).sum((0, 1))
    se = np.asarray(draws).std(0) / np.sqrt(len(draws))
    np.testing.assert_array_less(np.abs(np.asarray(draws).mean(0) - mean), 4 * se + 1e-3)


@pytest.mark.parametrize("d, c", [(3, 1.0), (5, 0.5)])
def test_the_density_is_the_tangent_gaussians_through_the_samplers_jacobian(d, c):
    """log N_W(z) = log N(v) - log |det dz/dv| - d log lambda_z for z = wrap(mu, v), any d (brute force)."""
    key_mu, key_v, key_s = jax.random.split(jax.random.key(d), 3)
    mu = poincare.expmap0(0.7 * jax.random.normal(key_mu, (d,)), c)
    log_var = jnp.log(jax.random.uniform(key_s, (d,), minval=0.05, maxval=1.5))
    for v in 0.8 * jax.random.normal(key_v, (4, d)) * jnp.exp(0.5 * log_var):
        z = poincare.wrap(mu, v, c)
        _, log_det = jnp.linalg.slogdet(jax.jacfwd(lambda u: poincare.wrap(mu, u, c))(v))
        gaussian = jnp.sum(-0.5 * (v**2 / jnp.exp(log_var) + log_var + jnp.log(2 * jnp.pi)))
        expected = gaussian - log_det - d * jnp.log(poincare.conformal_factor(z, c)[0])
        assert float(poincare.log_prob(z, mu, log_var, c)) == pytest.approx(float(expected), abs=2e-3)


def test_the_maps_invert_each_other_and_give_the_geodesic_distance():
    c = 0.7
    x = poincare.expmap0(jnp.array([0.3, -0.8, 0.2]), c)
    z = poincare.expmap0(jnp.array([-0.5, 0.1, 0.9]), c)
    v = poincare.logmap(x, z, c)
    np.testing.assert_allclose(poincare.expmap(x, v, c), z, atol=1e-5)
    np.testing.assert_allclose(poincare.logmap0(poincare.expmap0(v, c), c), v, atol=1e-5)
    lam = poincare.conformal_factor(x, c)[0]
    assert float(poincare.distance(x, z, c)) == pytest.approx(float(lam * jnp.linalg.norm(v)), rel=1e-5)
    np.testing.assert_allclose(poincare.mobius_add(jnp.zeros(3), z, c), z, atol=1e-7)
    far = poincare.expmap0(jnp.array([50.0, 0.0, 0.0]), c)
    assert float(jnp.linalg.norm(far)) <= (1 - poincare.BALL_EPS) / c**0.5 + 1e-6  # kept inside the ball


SMALL = ["--dataset", DIGITS8, "--hidden", 16, "--latent-dim", 2, "--latent-space", "poincare", "--batch-size", 32]


@pytest.fixture(scope="module")
def ball_runs(tmp_path_factory):
    """The run's folder: two epochs straight ('straight'), and one resumed from its first ('resumed')."""
    root = tmp_path_factory.mktemp("poincare")
    straight_and_resumed(root, [*SMALL, "--curvature", 0.5, "--eval-k", 4])
    return root


@pytest.mark.slow
def test_the_ball_trains_resumes_bitwise_samples_evaluates_and_encodes(ball_runs, tmp_path, monkeypatch):
    resumed, straight = (vae_jax.load(str(ball_runs / w), ema=False) for w in ("resumed", "straight"))
    assert resumed.step == straight.step and resumed.epoch == 2
    for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(straight.params)):
        np.testing.assert_array_equal(a, b)
    assert straight.vae.description["prior"] == "wrapped normal N_W(0, I) on the Poincaré ball of curvature -0.5"
    z = straight.vae.sample_prior(straight.params, jax.random.key(0), 400)
    assert float(jnp.max(jnp.linalg.norm(z, axis=-1))) < 0.5**-0.5
    cold = straight.vae.sample_prior(straight.params, jax.random.key(0), 400, temperature=0.3)
    assert float(jnp.mean(jnp.linalg.norm(cold, axis=-1))) < float(jnp.mean(jnp.linalg.norm(z, axis=-1)))
    for mode in ("samples", "reconstructions", "interpolate", "traverse", "latents", "manifold"):
        out = tmp_path / f"{mode}.png"
        run_command(sample, monkeypatch, "--ckpt", ball_runs / "straight", "--mode", mode, "--out", out, "--n", 4)
        assert Image.open(out).size[0] > 8
    run_command(evaluate, monkeypatch, "--ckpt", ball_runs / "straight", "--k", 50, "--out", tmp_path / "e.json")
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["kl_per_dim"] is None and result["latent"]["kl"].startswith("estimated")
    assert np.isfinite(result["nll"]) and result["nll"] <= -result["elbo"] + 1.0
    x = np.load(DIGITS8)["x_test"][:3]
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(x):
        Image.fromarray(image).save(folder / f"{i}.png")
    run_command(encode, monkeypatch, "--ckpt", ball_runs / "straight", "--images", folder, "--out", tmp_path / "z.npz")
    mean, _ = straight.encode(x[..., None].astype(np.float32) / 255)
    np.testing.assert_allclose(np.load(tmp_path / "z.npz")["mean"], mean, rtol=1e-5, atol=1e-6)
    assert float(np.max(np.linalg.norm(mean, axis=-1))) < 0.5**-0.5


@pytest.mark.slow
def test_the_ball_opens_in_the_explorer_with_sliders_in_the_tangent_gaussian(ball_runs):
    from vae_jax import data
    from vae_jax.explorer.session import open_session

    model = vae_jax.load(str(ball_runs / "straight"))
    dataset = data.of_run(model.config)
    session = open_session(model, dataset.test_images[:200], dataset.test_labels[:200])
    u = session.standard("test:4", None)
    mean = np.asarray(model.encode(session.inputs[4:5])[0])
    np.testing.assert_allclose(u, 2 * np.asarray(poincare.logmap0(jnp.asarray(mean), 0.5))[0], rtol=1e-4, atol=1e-5)
    assert session.show(u[None], None).shape[0] == 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--prior", "vamp"], "drop --prior vamp"),
        (["--flow", "planar"], "drop --flow planar"),
        (["--conditional"], "drop --conditional"),
        (["--curvature", 0], "--curvature must be positive"),
        (["--latent-space", "sphere", "--curvature", 2], "--curvature applies to --latent-space poincare only"),
        (["--latent-space", "euclidean", "--curvature", 2], "--curvature applies to --latent-space poincare only"),
        (["--latent-space", "torus"], "not one of euclidean, sphere, poincare"),
    ],
)
def test_what_the_ball_has_no_use_for_is_a_one_line_error(flags, message, tmp_path):
    argv = [*map(str, SMALL), *map(str, flags), "--epochs", "1", "--workdir", str(tmp_path / "w")]
    proc = subprocess.run([sys.executable, "train.py", *argv], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
