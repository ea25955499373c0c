"""The trained models shipped with the package: opened by name from the API and every command, their
files checked, and their recorded test NLL found again on the first 500 test images."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

import vae_jax
from vae_jax import pretrained
from vae_jax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = os.path.join(ROOT, "vae_jax", "weights")
SHIPPED = ["fashion-2d", "fashion-conv", "fashion-cvae", "fashion-mlp", "mnist-mlp"]


def test_the_shipped_models_are_these_and_weigh_at_most_20_mb_together():
    assert pretrained.names() == SHIPPED
    assert sum(os.path.getsize(os.path.join(WEIGHTS, f)) for f in os.listdir(WEIGHTS)) <= 20 * 2**20


@pytest.mark.parametrize("name", SHIPPED)
def test_each_opens_by_name_as_the_run_that_trained_it(name):
    record = pretrained.record(name)
    model = vae_jax.load(f"pretrained:{name}")
    stored, loaded = record["run"]["config"], model.config.to_dict()
    assert {k: loaded[k] for k in stored} == stored and model.epoch == record["run"]["epoch"] > 0
    # a field added since it was trained reads as its default (what the run did without it)
    assert all(v == vae_jax.Config().to_dict()[k] for k, v in loaded.items() if k not in stored)
    assert record["command"].startswith("python train.py --preset ")
    preset = record["command"].split()[-1]
    with open(os.path.join(ROOT, "vae_jax", "presets", preset + ".json")) as f:
        assert all(model.config.to_dict()[k] == v for k, v in json.load(f).items())  # trained by that preset
    assert record["test"]["images"] == {"mnist": 1000}.get(model.config.dataset, 10_000) and record["test"]["k"] == 1000
    x = model.sample(jax.random.key(0), 4, labels=[0] * 4 if model.config.conditional else None)
    assert x.shape == (4, 28, 28, 1) and float(np.std(np.asarray(x))) > 0


def test_a_damaged_or_unknown_shipped_model_is_refused_in_one_line(tmp_path, monkeypatch):
    copy = tmp_path / "weights"
    shutil.copytree(WEIGHTS, copy)
    data = bytearray((copy / "fashion-conv.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "fashion-conv.npz").write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "_folder", lambda: copy)
    with pytest.raises(UserError, match="pretrained:fashion-conv: its parameters file is damaged"):
        vae_jax.load("pretrained:fashion-conv")
    with pytest.raises(UserError, match="pretrained:nope: there is no such shipped model; there are fashion-2d, "):
        vae_jax.load("pretrained:nope")


@pytest.mark.slow  # thousands of flipped records read: 8 s
def test_every_single_bit_flip_of_a_shipped_record_is_refused_or_changes_nothing(tmp_path, monkeypatch):
    """Each of the 8 bits of every byte of fashion-mlp.json flipped in turn: the record either is
    refused in one line (damaged) or says exactly what it said (a flip JSON does not see, as 1e-05
    for 1E-05); it never loads with other metadata, and never raises anything else."""
    copy = tmp_path / "weights"
    copy.mkdir()
    original = (pathlib.Path(WEIGHTS) / "fashion-mlp.json").read_bytes()
    monkeypatch.setattr(pretrained, "_folder", lambda: copy)
    refused = same = 0
    for i in range(len(original)):
        for bit in range(8):
            (copy / "fashion-mlp.json").write_bytes(original[:i] + bytes([original[i] ^ 1 << bit]) + original[i + 1 :])
            try:
                saved = pretrained.record("fashion-mlp")
            except UserError as e:
                assert "\n" not in str(e) and "is damaged" in str(e)
                refused += 1
                continue
            assert saved == json.loads(original)
            same += 1
    assert refused + same == 8 * len(original) and same < 20


def test_a_damaged_run_record_says_what_it_lacks_not_a_python_error():
    from vae_jax import runmeta

    record = json.loads((pathlib.Path(WEIGHTS) / "fashion-mlp.json").read_text())["run"]
    older = {k: v for k, v in record.items() if k not in ("sha256", "metrics", "image_shape")} | {"format": 1}
    with pytest.raises(runmeta.Unreadable, match="^its metadata has no image_shape$"):
        runmeta.from_json(older, "x")
    with pytest.raises(runmeta.Unreadable, match="does not match the digest"):
        runmeta.from_json({**record, "epoch": 0}, "x")


def _run(*args, cwd):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_sample_py_opens_a_shipped_model_and_writes_beside_the_user_not_the_package(tmp_path):
    before = sorted(os.listdir(WEIGHTS))
    proc = _run(os.path.join(ROOT, "sample.py"), "--ckpt", "pretrained:fashion-conv", "--n", "16", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == os.path.join("runs", "pretrained-fashion-conv", "samples_seed0.png")
    assert (tmp_path / "runs" / "pretrained-fashion-conv" / "samples_seed0.png").is_file() and sorted(
        os.listdir(WEIGHTS)
    ) == before
    for args, message in [
        (["--ckpt", "pretrained:nope"], "error: pretrained:nope: there is no such shipped model; there are "),
        (["--ckpt", "pretrained:fashion-conv", "--mode", "history"], "is shipped without its training records"),
    ]:
        proc = _run(os.path.join(ROOT, "sample.py"), *args, cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_the_recorded_nll_is_found_again_on_the_first_500_test_images(name):
    """Other importance samples (seed 1, the record's are seed 0) over the same images: the recorded
    number is within the standard error of the new one, and the whole test split's within 2."""
    from vae_jax import data
    from vae_jax.data.pixels import eval_images

    record = pretrained.record(name)
    model = vae_jax.load(f"pretrained:{name}")
    dataset = data.of_run(model.config)
    n, k = record["check"]["images"], record["check"]["k"]
    x = eval_images(dataset.test_images[:n], model.vae.likelihood.binary)
    labels = dataset.test_labels[:n] if model.config.conditional else None
    again = model.evaluate(x, k=k, seed=1, labels=labels)
    print(f"{name}: recorded {record['check']['nll']:.2f}, again {again['nll']:.2f} +- {again['nll_se']:.2f}")
    assert n == 500 and again["n"] == 500 and again["nll_se"] > 0
    assert abs(again["nll"] - record["check"]["nll"]) <= again["nll_se"]
    assert abs(again["nll"] - record["test"]["nll"]) <= 2 * again["nll_se"]
