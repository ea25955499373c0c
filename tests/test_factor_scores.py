"""evaluate.py --disentanglement and vae_jax.factor_scores: a model trained on dSprites is scored
against the factors of its own images (its posterior means as the representation), written to
eval.json beside the other numbers; a model of a dataset with no known factors is refused in one line."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import DIGITS8

import vae_jax
from vae_jax import disentanglement, factor_scores
from vae_jax.commands import evaluate, train
from vae_jax.data import dsprites
from vae_jax.errors import UserError


def run(command, monkeypatch, *argv) -> None:
    monkeypatch.setattr(sys, "argv", [command.__name__, *map(str, argv)])
    command.run()


@pytest.fixture(scope="module")
def dsprites_run(tmp_path_factory):
    """A model of dSprites trained for one smoke epoch (about 1,000 of its images)."""
    workdir = tmp_path_factory.mktemp("dsprites") / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("VAE_JAX_SMOKE", "1")
        flags = ["--dataset", "dsprites", "--hidden", 64, "--latent-dim", 6, "--objective", "beta-tc"]
        run(train, monkeypatch, *flags, "--workdir", workdir)
    return workdir


def test_evaluate_writes_every_score_beside_the_likelihood(dsprites_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VAE_JAX_SMOKE", "1")  # the scores at a few hundred points each
    out = tmp_path / "eval.json"
    run(evaluate, monkeypatch, "--ckpt", dsprites_run, "--disentanglement", "--k", 2, "--out", out)
    result = json.loads(out.read_text())
    scores = result["disentanglement"]["scores"]
    for name in ("beta_vae", "factor_vae", "mig", "dci_disentanglement", "dci_completeness", "modularity", "sap"):
        assert 0.0 <= scores[name] <= 1.0, name
    assert result["disentanglement"]["factors"] == dict(zip(dsprites.FACTORS, dsprites.SIZES))
    assert result["disentanglement"]["sizes"]["mig"] == factor_scores.SMOKE_SIZES["mig"]
    assert np.isfinite(result["nll"])
    printed = capsys.readouterr().out
    assert f"MIG {scores['mig']:.3f}" in printed and "shape (3), scale (6)" in printed


def test_the_api_scores_the_posterior_means_with_the_sizes_asked_for(dsprites_run):
    model = vae_jax.load(str(dsprites_run))
    truth = factor_scores.ground_truth("dsprites")
    pixels = truth.observations(truth.sample_factors(700, np.random.default_rng(0)))  # two batches, one padded
    means = factor_scores.representation(model)(pixels)
    np.testing.assert_allclose(means, np.asarray(model.encode(pixels / 255.0)[0]), rtol=1e-5, atol=1e-5)
    sizes = {"mig": {"n_train": 300}, "sap": {"n_train": 300, "n_test": 200}}
    result = factor_scores.measure(model, seed=3, which=("mig", "sap"), sizes=sizes)
    assert set(result["scores"]) == {"mig", "sap"} and result["sizes"] == sizes and result["seed"] == 3
    again = disentanglement.scores(truth, factor_scores.representation(model), 3, ("mig",), sizes)
    assert again["mig"] == result["scores"]["mig"]


def test_a_model_of_data_without_factors_is_refused_in_one_line(tiny_run, monkeypatch, capsys):
    with pytest.raises(UserError, match=r"--disentanglement needs a dataset with known factors \(dsprites\)"):
        run(evaluate, monkeypatch, "--ckpt", tiny_run.workdir, "--disentanglement")
    assert "NLL" not in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        run(evaluate, monkeypatch, "--ckpt", tiny_run.workdir, "--disentanglement", "--images", DIGITS8)
    assert exit_.value.code == 2 and "--disentanglement draws observations" in capsys.readouterr().err
