"""--prior vamp, --prior mog and --flow iaf, planar, radial and hamiltonian from the command line and the
API: each trains, resumes bitwise, samples (every picture), evaluates and encodes; the fitted sampler is
stored beside the checkpoint; options that do not apply are refused with one line."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import DIGITS8
from PIL import Image

import vae_jax
from vae_jax.commands import encode, evaluate, sample, train

pytestmark = pytest.mark.slow  # run by the full suite only (see docs/development.md, Tests)

OPTIONS = {
    "vamp": ["--prior", "vamp", "--pseudo-inputs", 5],
    "mog": ["--prior", "mog", "--components", 3],
    "iaf": ["--flow", "iaf", "--flow-steps", 2, "--flow-hidden", 8],
    "planar": ["--flow", "planar", "--flow-steps", 3, "--flow-hidden", 8],
    "radial": ["--flow", "radial", "--flow-steps", 3, "--flow-hidden", 8],
    "hamiltonian": ["--flow", "hamiltonian", "--flow-steps", 2],
}
FLOWS = ("iaf", "planar", "radial", "hamiltonian")
SMALL = ["--dataset", DIGITS8, "--hidden", 16, "--latent-dim", 2, "--batch-size", 32, "--eval-k", 4]


def run(command, monkeypatch, *argv) -> None:
    monkeypatch.setattr(sys, "argv", [command.__name__, *map(str, argv)])
    command.run()


@pytest.fixture(scope="module", params=list(OPTIONS))
def runs(request, tmp_path_factory):
    """(option name, the run's folder): two epochs straight, and one resumed from its first."""
    root = tmp_path_factory.mktemp(request.param)
    flags = SMALL + OPTIONS[request.param]
    with pytest.MonkeyPatch.context() as monkeypatch:
        run(train, monkeypatch, *flags, "--epochs", 2, "--workdir", root / "straight")
        run(train, monkeypatch, *flags, "--epochs", 1, "--workdir", root / "resumed")
        run(train, monkeypatch, *flags, "--epochs", 2, "--workdir", root / "resumed")
    return request.param, root


def test_it_trains_and_resumes_bitwise(runs):
    name, root = runs
    resumed, straight = (vae_jax.load(str(root / w), ema=False) for w in ("resumed", "straight"))
    assert resumed.step == straight.step and resumed.epoch == 2
    assert set(resumed.params) >= {"encoder", "decoder", "flow" if name in FLOWS else "prior"}
    for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(straight.params)):
        np.testing.assert_array_equal(a, b)
    records = [json.loads(line) for line in (root / "straight" / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if "test_elbo" in r]
    assert epochs and all(r["posterior"] == resumed.vae.description["posterior"] for r in epochs)
    assert epochs[0]["prior"] == resumed.vae.description["prior"]


def test_it_samples_every_picture(runs, tmp_path, monkeypatch, capsys):
    name, root = runs
    ckpt = root / "straight"
    for mode in ("samples", "reconstructions", "interpolate", "traverse", "latents", "manifold"):
        out = tmp_path / f"{mode}.png"
        run(sample, monkeypatch, "--ckpt", ckpt, "--mode", mode, "--out", out, "--n", 4, "--temperature", 0.7)
        assert Image.open(out).size[0] > 8
    model = vae_jax.load(str(ckpt))
    cold, warm = (np.asarray(model.sample(jax.random.key(0), 200, t)) for t in (0.0, 1.0))
    assert cold.std(0).mean() < warm.std(0).mean()  # temperature scales the prior's spread


def test_it_evaluates_and_encodes_and_says_which_prior_and_posterior(runs, tmp_path, monkeypatch, capsys):
    name, root = runs
    ckpt = root / "straight"
    run(evaluate, monkeypatch, "--ckpt", ckpt, "--k", 20, "--out", tmp_path / "e.json")
    shown = capsys.readouterr().out
    result = json.loads((tmp_path / "e.json").read_text())
    latent = vae_jax.load(str(ckpt)).vae.description
    assert result["latent"] == latent and latent["prior"] in shown and latent["posterior"] in shown
    assert result["kl_per_dim"] is None and "estimated: log q(z|x) - log p(z)" in shown
    assert {"vamp": "VampPrior", "mog": "mixture of 3"}.get(name, "N(0, I)") in latent["prior"]
    assert ("IAF" in latent["posterior"]) == (name == "iaf") and (name in latent["posterior"]) == (name in FLOWS[1:])
    assert np.isfinite(result["nll"]) and result["nll"] <= -result["elbo"] + 1.0
    folder = tmp_path / "images"
    folder.mkdir()
    images = np.load(DIGITS8)["x_test"][:3]
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i}.png")
    run(encode, monkeypatch, "--ckpt", ckpt, "--images", folder, "--out", tmp_path / "z.npz")
    z = np.load(tmp_path / "z.npz")
    mean, _ = vae_jax.load(str(ckpt)).encode(images[..., None].astype(np.float32) / 255)
    np.testing.assert_allclose(z["mean"], mean, rtol=1e-5, atol=1e-6)


def test_the_fitted_sampler_is_stored_beside_the_checkpoint_and_read_again(runs, tmp_path, monkeypatch, capsys):
    name, root = runs
    ckpt = root / "straight"
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    run(sample, monkeypatch, "--ckpt", ckpt, "--sampler", "gmm", "--components", 2, "--out", first, "--n", 9)
    said = capsys.readouterr().out
    model = vae_jax.load(str(ckpt))
    stored = ckpt / f"sampler_gmm2_step{model.step}.npz"
    assert stored.exists() and "under the prior" in said and str(stored) in said
    before = stored.stat().st_mtime_ns
    run(sample, monkeypatch, "--ckpt", ckpt, "--sampler", "gmm", "--components", 2, "--out", second, "--n", 9)
    assert stored.stat().st_mtime_ns == before  # read, not fitted again
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(second)))
    left_and_right = np.asarray(Image.open(first))
    assert left_and_right.shape[1] > 2 * left_and_right.shape[0]  # two grids side by side


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--prior", "vamp", "--conditional"], "--prior vamp is unconditional"),
        (["--model", "hvae", "--flow", "iaf"], "--flow applies to --model mlp, conv, resnet, not hvae"),
        (["--model", "hvae", "--prior", "mog"], "--prior mog applies to --model mlp, conv, resnet"),
        (["--flow", "iaf", "--free-bits", 1], "--free-bits needs the KL per latent unit in closed form"),
        (["--pseudo-inputs", 9], "--pseudo-inputs applies to --prior vamp only"),
        (["--prior", "mog", "--objective", "ae"], "--objective ae does not define"),
        (["--flow", "iaf", "--flow-steps", 0], "--flow-steps must be positive"),
        (["--flow", "hamiltonian", "--beta0", 1], "--beta0 1.0: must lie strictly between 0 and 1"),
        (["--flow", "planar", "--leapfrog-step", 0.1], "--leapfrog-step applies to --flow hamiltonian only"),
    ],
)
def test_options_that_do_not_apply_are_one_line_errors(flags, message, tmp_path):
    proc = subprocess.run(
        [sys.executable, "train.py", *map(str, flags), "--workdir", str(tmp_path / "w")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_sampler_flags_that_do_not_apply_are_refused(tiny_run, monkeypatch, capsys):
    for flags in (["--sampler", "gmm", "--mode", "reconstructions"], ["--sampler", "gmm", "--components", 0]):
        with pytest.raises(SystemExit) as stop:
            run(sample, monkeypatch, "--ckpt", tiny_run.workdir, *flags)
        assert stop.value.code == 2
