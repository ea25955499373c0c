"""Streaming an image folder from disk (--stream): the batches of a run in memory, resumable from
any step, each process reading only its own rows."""

import dataclasses
import logging
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image
from test_parallel import ROOT, _env, _free_port

import vae_jax
from vae_jax import data, experiment
from vae_jax.config import Config
from vae_jax.data import images, sources
from vae_jax.errors import UserError

N_IMAGES, SIDE, BATCH = 300, 16, 16  # 270 training images: 16 steps of 16 an epoch (more than one dense call)
STEPS = 270 // BATCH


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    """Smooth random RGB images in two class folders."""
    root = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES):
        (root / "ab"[i % 2]).mkdir(exist_ok=True)
        coarse = rng.integers(0, 256, (SIDE // 4, SIDE // 4, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((SIDE, SIDE), Image.BILINEAR).save(root / "ab"[i % 2] / f"{i:04d}.png")
    return str(root)


def _config(folder: str, workdir, **changes) -> Config:
    small = dict(hidden=(32,), latent_dim=4, batch_size=BATCH, likelihood="gaussian", eval_k=2, epochs=2)
    return Config(dataset=folder, workdir=str(workdir), **{**small, **changes})


def _same(a, b) -> bool:
    return a.step == b.step and all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params))
    )


def test_a_streamed_run_trains_exactly_like_one_in_memory(folder, tmp_path, caplog):
    experiment.train(_config(folder, tmp_path / "memory"))
    with caplog.at_level(logging.INFO, logger="vae_jax"):
        experiment.train(_config(folder, tmp_path / "stream", stream=True))
    assert _same(vae_jax.load(str(tmp_path / "memory")), vae_jax.load(str(tmp_path / "stream")))
    reads = [r.getMessage() for r in caplog.records if "images streamed" in r.getMessage()]
    assert reads == [
        f"epoch {e}: training images streamed (read from disk or rendered), per process: {STEPS * BATCH}"
        for e in (1, 2)
    ]


def test_files_decode_as_the_folder_does_in_memory_and_large_folders_stream_by_themselves(folder, monkeypatch):
    _, eager, _ = images.load_folder(folder)
    monkeypatch.setattr(sources, "DEVICE_DATASET_BYTES", 1000)  # a "large" folder
    lazy = data.load(folder)
    assert isinstance(lazy.train_images, images.Files) and "streamed" in lazy.source
    assert lazy.train_images.shape == eager["train_images"].shape == (270, SIDE, SIDE, 3)
    for i in (0, 17, 269):
        np.testing.assert_array_equal(lazy.train_images[i], eager["train_images"][i])
    np.testing.assert_array_equal(lazy.test_images, eager["test_images"])


@pytest.mark.slow
def test_a_streamed_run_resumed_from_inside_an_epoch_ends_like_an_uninterrupted_one(folder, tmp_path):
    straight = _config(folder, tmp_path / "straight", stream=True, epochs=3, checkpoint_every_steps=3, keep=20)
    experiment.train(straight)
    stopped = dataclasses.replace(straight, workdir=str(tmp_path / "stopped"))
    shutil.copytree(straight.workdir, stopped.workdir)
    for step in [d for d in os.listdir(stopped.workdir) if d.isdigit() and int(d) > 21]:
        shutil.rmtree(os.path.join(stopped.workdir, step))  # as if killed after the checkpoint of step 21
    assert vae_jax.load(stopped.workdir).step == 21  # inside epoch 2 (16 steps an epoch)
    experiment.train(stopped)
    assert _same(vae_jax.load(stopped.workdir), vae_jax.load(straight.workdir))


def test_stream_flag_checks():
    with pytest.raises(UserError, match="--stream reads image folders"):
        Config(dataset="mnist", stream=True)


def test_static_binarization_is_refused_when_streaming(folder, tmp_path):
    with pytest.raises(UserError, match="not with --stream"):
        experiment.train(_config(folder, tmp_path, likelihood="bernoulli", binarize="static", stream=True))


@pytest.mark.slow
def test_two_processes_each_read_only_their_own_rows(folder, tmp_path):
    flags = ["--dataset", folder, "--stream", "--hidden", "32", "--latent-dim", "4", "--likelihood", "gaussian"]
    flags += ["--batch-size", str(BATCH), "--eval-k", "2", "--epochs", "1", "--workdir", str(tmp_path / "two")]
    address = f"localhost:{_free_port()}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "train.py",
                *flags,
                "--coordinator",
                address,
                "--num-processes",
                "2",
                "--process-id",
                str(i),
            ],
            cwd=ROOT,
            env=_env(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    half = STEPS * BATCH // 2
    assert f"epoch 1: training images streamed (read from disk or rendered), per process: {half}, {half}" in errs[0], (
        errs[0]
    )
    experiment.train(_config(folder, tmp_path / "one", stream=True, epochs=1))
    two, one = vae_jax.load(str(tmp_path / "two")), vae_jax.load(str(tmp_path / "one"))
    assert two.step == one.step
    for x, y in zip(jax.tree.leaves(two.params), jax.tree.leaves(one.params)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)


def test_the_held_out_split_of_a_large_folder_is_capped(folder, monkeypatch):
    monkeypatch.setattr(images, "MAX_HELD_OUT", 20)  # 10% would be 30
    description, arrays, _ = images.load_folder(folder)
    assert len(arrays["test_images"]) == 20 and len(arrays["train_images"]) == N_IMAGES - 20
    assert "20 (10%, at most 20) held out" in description
