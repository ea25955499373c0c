"""The command-line tools: bad input ends in one line and exit code 2; good input writes what it says."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, cwd=ROOT):
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def assert_one_line_error(code, err, pattern):
    assert code == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert pattern in last, last


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cli run")  # a space in the path on purpose
    code, out, err = run("train.py", "--epochs", "1", "--hidden", "64", "--latent-dim", "4", "--workdir", str(workdir))
    assert code == 0, err
    assert "epoch 1/1" in err and "test ELBO" in err
    # the run ends saying where its time went; the parts add up to no more than the wall-clock
    last = err.strip().splitlines()[-1]
    parts = ["s to the first step", "1 epoch(s)", "checkpoint saves", "final evaluation", "the last pictures"]
    assert last.split("vae_jax: ")[-1].startswith("time: ") and all(p in last for p in parts), last
    seconds = [float(x) for x in re.findall(r"([0-9.]+) s\b", last)]
    assert len(seconds) == 5 and all(x >= 0 for x in seconds) and sum(seconds) < 300, last
    return str(workdir)


def test_help_lists_every_config_flag():
    from vae_jax.config import Config

    code, out, _ = run("train.py", "--help")
    assert code == 0
    for name in Config.__dataclass_fields__:
        assert f"--{name.replace('_', '-')}" in out
    assert "--fresh" in out


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["--dataset", "nosuch"], "'nosuch' is not one of mnist"),
        (["--dataset", "/nonexistent/d.npz"], "no such file"),
        (
            ["--objective", "iwae", "--free-bits", "1"],
            "--free-bits applies to --objective vae only, not --objective iwae",
        ),
        (["--model", "transformer"], "--model: 'transformer' is not one of mlp, conv, resnet, hvae"),
        (["--likelihood", "poisson"], "invalid choice: 'poisson'"),
        (["--latent-dim", "0"], "--latent-dim must be positive"),
        (["--batch-size", "-5"], "--batch-size must be positive"),
        (["--hidden", "500,-1"], "--hidden needs one or more positive sizes"),
        (["--hidden", "abc"], "expected comma-separated integers"),
        (["--lr", "x"], "invalid float value"),
    ],
)
def test_train_rejects_bad_flags(args, pattern, tmp_path):
    code, _, err = run("train.py", "--workdir", str(tmp_path), *args)
    assert_one_line_error(code, err, pattern)
    assert os.listdir(tmp_path) == []


def test_train_rejects_npz_without_images(tmp_path):
    np.savez(tmp_path / "bad.npz", pixels=np.zeros((4, 4)))
    code, _, err = run("train.py", "--data-dir", str(tmp_path / "bad.npz"), "--workdir", str(tmp_path / "w"))
    assert_one_line_error(code, err, "no 'images' array")


@pytest.mark.slow
def test_train_refuses_a_different_config_in_the_same_workdir(ckpt):
    code, _, err = run("train.py", "--epochs", "1", "--hidden", "64", "--latent-dim", "8", "--workdir", ckpt)
    assert_one_line_error(code, err, "latent_dim: 4 -> 8")


@pytest.mark.slow
def test_sample_writes_and_prints_the_png(ckpt, tmp_path):
    out = tmp_path / "s.png"
    code, stdout, err = run("sample.py", "--ckpt", ckpt, "--n", "16", "--out", str(out))
    assert code == 0, err
    assert stdout.strip() == str(out) and out.stat().st_size > 500
    code, stdout, err = run("sample.py", "--ckpt", ckpt, "--mode", "reconstructions", "--n", "8")
    assert code == 0, err
    assert stdout.strip() == os.path.join(ckpt, "reconstructions_seed0.png") and os.path.isfile(stdout.strip())


@pytest.mark.slow
def test_evaluate_prints_the_table_and_writes_eval_json(ckpt):
    import json

    code, out, err = run("evaluate.py", "--ckpt", ckpt, "--k", "20", "--batch-size", "250")
    assert code == 0, err
    for word in ("NLL", "k=20", "bits/dim", "ELBO", "KL", "active units", "mnist test split, 1000 images"):
        assert word in out
    result = json.load(open(os.path.join(ckpt, "eval.json")))
    assert result["k"] == 20 and result["n"] == 1000 and result["nll"] > 0 and result["nll_se"] > 0
    assert result["active_units"] <= result["latent_dim"] == 4


@pytest.mark.parametrize(
    "args, pattern", [(["--k", "0"], "--k must be positive"), (["--split", "val"], "invalid choice")]
)
def test_evaluate_rejects_bad_flags(ckpt, args, pattern):
    code, _, err = run("evaluate.py", "--ckpt", ckpt, *args)
    assert_one_line_error(code, err, pattern)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["interpolate", "traverse", "latents", "history", "latents --projection tsne"])
def test_sample_modes_write_pngs(ckpt, mode, tmp_path):
    out = tmp_path / f"{mode.split()[0]}.png"
    code, stdout, err = run("sample.py", "--ckpt", ckpt, "--mode", *mode.split(), "--out", str(out))
    assert code == 0, err
    assert stdout.strip().splitlines()[-1] == str(out) and out.stat().st_size > 500
    if "tsne" in mode:  # a slow step says so before it starts
        assert stdout.startswith("latents: t-SNE of 1000 posterior means")


def test_sample_manifold_refuses_a_4d_latent(ckpt):
    code, _, err = run("sample.py", "--ckpt", ckpt, "--mode", "manifold")
    assert_one_line_error(code, err, "needs a 2-D latent")


@pytest.mark.parametrize("case", ["missing", "file", "empty", "first step being written"])
def test_sample_rejects_a_bad_ckpt(case, tmp_path):
    path = {"missing": tmp_path / "nope", "file": tmp_path / "f.txt"}.get(case, tmp_path)
    if case == "file":
        path.write_text("x")
    if case == "first step being written":  # Orbax's folder for a save not yet complete
        (tmp_path / "12.orbax-checkpoint-tmp-1765000000").mkdir()
    code, _, err = run("sample.py", "--ckpt", str(path))
    said = {"missing": "no such folder", "file": "is a file", "empty": "holds no checkpoint (train one with"}
    assert_one_line_error(code, err, said.get(case, "holds no finished checkpoint yet (step 12 is being written"))


def test_sample_rejects_a_corrupt_checkpoint(ckpt, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(ckpt, broken)
    step = max(int(d) for d in os.listdir(broken) if d.isdigit())
    for root, _, files in os.walk(broken / str(step)):
        for f in files:
            with open(os.path.join(root, f), "r+b") as fh:
                fh.truncate(3)
    code, _, err = run("sample.py", "--ckpt", str(broken))
    assert_one_line_error(code, err, f"no intact checkpoint (steps {step} are damaged)")


def test_every_sample_mode_has_its_drawing_function():
    from vae_jax.commands import modes, sample

    assert set(modes.DRAW) | {"history"} == set(sample.MODES)
    assert set(modes.READS_TEST_IMAGES) < set(modes.DRAW)
