"""Objectives added from outside the package, one file each and no package module touched: InfoVAE's
MMD between q(z) and p(z) over the whole batch (tests/objective_infovae.py) and an adversarial
autoencoder whose discriminator has its own parameters, loss and optimizer
(tests/objective_adversarial.py); and the objectives of the literature shipped in
vae_jax/objectives. Each trains from train.py, resumes to bitwise the parameters and
objective state of an uninterrupted run, evaluates through evaluate.py, samples through sample.py and
opens in the explorer's session."""

from __future__ import annotations

import json
import sys

import jax
import numpy as np
import objective_adversarial  # noqa: F401 (registers --objective aae)
import objective_infovae
import pytest
from conftest import DIGITS8
from PIL import Image

import vae_jax
from vae_jax import api, checkpoint, data, objectives, training
from vae_jax.commands import evaluate, sample, train

FLAGS = ["--dataset", DIGITS8, "--hidden", 32, "--latent-dim", 2, "--batch-size", 32, "--eval-k", 5, "--keep", 1]


def run(command, monkeypatch, *argv) -> None:
    monkeypatch.setattr(sys, "argv", [command.__name__, *map(str, argv)])
    command.run()


def saved_state(workdir: str):
    """The newest train state in `workdir`, objective state included."""
    mngr = checkpoint.reader(workdir)
    step = mngr.latest_step()
    meta = checkpoint.read_meta(mngr, step)
    vae = api.model_of(meta)
    like = training.init_state(vae, api.make_optimizer(meta.config), objectives.of(meta.config), jax.random.key(0))
    return checkpoint.restore_train_state(mngr, step, meta, like)


# each objective: a statistic its loss reports, and whether it trains a discriminator of its own
OUTSIDE = {"outside-infovae": ("mmd", False), "outside-aae": ("discriminator_loss", True)}
SHIPPED = {
    "infovae": ("mmd", False),
    "wae": ("mmd", False),
    "miwae": ("miwae", False),
    "piwae": ("iwae", False),
    "ciwae": ("ciwae", False),
    "rae-l2": ("regulariser", False),
    "rae-gp": ("regulariser", False),
    "aae": ("discriminator_loss", True),
    "vaegan": ("feature_error", True),
    "msssim": ("ms_ssim", False),
    "beta-tc": ("tc", False),
    "factor": ("tc", True),
    "annealed": ("capacity", False),
    "dip-i": ("dip", False),
    "dip-ii": ("dip", False),
}
EVERY = [*OUTSIDE, *(pytest.param(name, marks=pytest.mark.slow) for name in SHIPPED)]


@pytest.mark.parametrize("name", EVERY)
def test_an_objective_goes_through_every_command(name, tmp_path, monkeypatch):
    """Those registered from outside in one file, and the shipped ones of the literature."""
    statistic, discriminator = (OUTSIDE | SHIPPED)[name]
    flags = [*FLAGS, "--objective", name]
    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    run(train, monkeypatch, *flags, "--epochs", 1, "--workdir", resumed)
    run(train, monkeypatch, *flags, "--epochs", 2, "--workdir", resumed)  # resumes after epoch 1
    run(train, monkeypatch, *flags, "--epochs", 2, "--workdir", straight)
    a, b = saved_state(str(resumed)), saved_state(str(straight))
    assert int(a.step) == 2 * (192 // 32)
    if discriminator:  # trained by its own optimizer, a step at each of the model's
        held = a.aux["groups"]["discriminator"]
        assert len(jax.tree.leaves(held["params"])) >= 4 and int(held["opt_state"][0].count) == int(a.step)
    else:
        assert jax.tree.leaves(a.aux) == []
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    records = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert np.isfinite(records[0][f"train_{statistic}"])

    model = vae_jax.load(str(resumed))
    run(evaluate, monkeypatch, "--ckpt", resumed, "--k", 20, "--out", tmp_path / "eval.json")
    result = json.loads((tmp_path / "eval.json").read_text())
    if model.objective.defines_likelihood:
        assert np.isfinite(result["nll"]) and result["elbo"] <= -result["nll"] + 1.0
    else:
        assert "nll" not in result and np.isfinite(result["recon"]) and result["autoencoder"]

    run(sample, monkeypatch, "--ckpt", resumed, "--out", tmp_path / "s.png", "--n", 4)
    assert Image.open(tmp_path / "s.png").size[0] >= 16

    from vae_jax.explorer.facts import page_info
    from vae_jax.explorer.session import open_session

    dataset = data.of_run(model.config)
    session = open_session(model, dataset.test_images, dataset.test_labels)
    assert session.autoencoder != model.objective.defines_likelihood
    assert session.samples(1.0, None, 0, n=4).shape[0] >= 2 * 8  # a grid of 8x8 images
    facts = dict(page_info(model, session, str(resumed))["facts"])
    assert facts["family"].startswith(f"{model.objective.label}, mlp")


def test_the_mmd_is_zero_for_one_sample_and_grows_with_the_distance_between_two():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 2)).astype(np.float32)
    assert float(objective_infovae.rbf_mmd(a, a)) == pytest.approx(0.0, abs=1e-6)
    near, far = (float(objective_infovae.rbf_mmd(a, a + shift)) for shift in (0.5, 3.0))
    assert 0 < near < far
