"""A step's metadata and metrics files are covered by its digest: a flipped bit in either is damage,
passed over by readers and set aside by a resume, never read as another epoch, learning rate or
score; readers beside a run that removes steps (--keep) say so, not "damaged"."""

import dataclasses
import json
import logging
import os
import shutil

import numpy as np
import pytest

import vae_jax
from vae_jax import checkpoint, experiment, runmeta
from vae_jax.config import Config
from vae_jax.errors import UserError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two epochs of 9 steps with a save every 3: steps 9, 12, 15 and 18 kept (9 and 18 are epoch ends)."""
    root = tmp_path_factory.mktemp("metadata")
    rng = np.random.default_rng(0)
    np.savez(root / "d.npz", images=rng.integers(0, 256, (300, 8, 8)).astype(np.uint8))
    config = Config(
        dataset=str(root / "d.npz"), hidden=(16,), latent_dim=2, batch_size=30, eval_k=1, epochs=2,
        checkpoint_every_steps=3, keep=4, workdir=str(root / "w"),
    )  # fmt: skip
    experiment.train(config)
    return config


def _copy(config: Config, tmp_path) -> Config:
    shutil.copytree(config.workdir, tmp_path / "copy")
    return dataclasses.replace(config, workdir=str(tmp_path / "copy"))


def _file(config: Config, step: int, item: str) -> str:
    return os.path.join(config.workdir, str(step), item, {"meta": "metadata", "metrics": "metrics"}[item])


def _flip_bit(path: str, offset: int, bit: int = 0) -> None:
    data = bytearray(open(path, "rb").read())
    data[offset] ^= 1 << bit
    open(path, "wb").write(bytes(data))


def _offsets(path: str, n: int = 10) -> list[int]:
    return np.linspace(0, os.path.getsize(path) - 1, n).astype(int).tolist()


@pytest.mark.parametrize("item", ["meta", "metrics"])
def test_a_bit_flipped_anywhere_in_a_steps_metadata_or_metrics_is_passed_over(trained, tmp_path, caplog, item):
    config = _copy(trained, tmp_path)
    path = _file(config, 18, item)
    original = open(path, "rb").read()
    for offset in _offsets(path):
        open(path, "wb").write(original)
        _flip_bit(path, offset)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="vae_jax"):
            model = vae_jax.load(config.workdir)
            best = vae_jax.load(config.workdir, best=True)
        assert model.step == 15 and best.step == 9, (offset, caplog.text)  # the flipped step 18 passed over
        warned = [r.getMessage() for r in caplog.records]  # the latest read it; the best, where it ranks first
        assert 1 <= len(warned) <= 2 and all(w.startswith("skipping damaged checkpoint") for w in warned)
        assert all("checkpoint step 18" in w and "\n" not in w for w in warned)


def _flip_value(config: Config, step: int, key: str, old: str, new: str) -> None:
    """Change `"key": old` to `"key": new` in a step's metadata (a flipped bit where old and new differ by one)."""
    path = _file(config, step, "meta")
    text = open(path).read()
    assert text.count(f'"{key}": {old}') == 1
    open(path, "w").write(text.replace(f'"{key}": {old}', f'"{key}": {new}'))


@pytest.mark.parametrize("key, old, new", [("epoch", "2", "0"), ("epoch", "2", "3"), ("lr", "0.001", "0.000")])
def test_a_flipped_epoch_or_lr_is_damage_a_resume_sets_aside(trained, tmp_path, caplog, key, old, new):
    config = _copy(trained, tmp_path)
    _flip_value(config, 18, key, old, new)
    with caplog.at_level(logging.INFO, logger="vae_jax"):
        experiment.train(dataclasses.replace(config, epochs=3))
    assert "does not match the digest recorded when it was saved" in caplog.text
    assert "resuming at step 15" in caplog.text and "nothing to do" not in caplog.text
    assert any(e.startswith("damaged-18-") for e in os.listdir(config.workdir))
    assert vae_jax.load(config.workdir).epoch == 3


def test_a_changed_score_in_a_metrics_file_is_damage_not_the_best(trained, tmp_path, caplog):
    config = _copy(trained, tmp_path)
    path = _file(config, 9, "metrics")
    json.dump({checkpoint.BEST_METRIC: 1e9}, open(path, "w"))  # valid JSON, another score
    with caplog.at_level(logging.WARNING, logger="vae_jax"):
        assert vae_jax.load(config.workdir, best=True).step == 18
    assert "checkpoint step 9: its metrics file does not match" in caplog.text
    assert checkpoint.damaged_metrics(config.workdir) == [9]
    experiment.train(dataclasses.replace(config, epochs=3))  # a resume sets it aside before Orbax reads it
    assert any(e.startswith("damaged-9-") for e in os.listdir(config.workdir))


def test_an_unreadable_metrics_file_does_not_stop_a_reader(trained, tmp_path, caplog):
    config = _copy(trained, tmp_path)
    open(_file(config, 18, "metrics"), "w").write("{not json")
    with caplog.at_level(logging.WARNING, logger="vae_jax"):
        assert vae_jax.load(config.workdir).step == 15
    assert "checkpoint step 18: its metrics file cannot be read" in caplog.text


def test_the_metadata_is_sealed_from_format_2_on_and_older_formats_still_read(trained, tmp_path):
    config = _copy(trained, tmp_path)
    saved = json.load(open(_file(config, 18, "meta")))
    assert saved["format"] == runmeta.FORMAT == 3 and saved["metrics"] == json.load(open(_file(config, 18, "metrics")))
    older = {k: v for k, v in saved.items() if k not in ("sha256", "metrics")} | {"format": 1}
    assert runmeta.from_json(older, "x").epoch == 2  # a format-1 step has no seal to check
    with pytest.raises(runmeta.Unreadable, match="does not match the digest"):
        runmeta.from_json({k: v for k, v in saved.items() if k != "sha256"}, "x")  # format 2 on needs its seal


def test_a_step_removed_while_it_is_read_is_not_called_damaged(trained, tmp_path, caplog, monkeypatch):
    config = _copy(trained, tmp_path)
    restore = checkpoint.restore_state
    removed = []

    def removing(mngr, step, like, item="state"):  # the run writing the folder retires the step being read
        if not removed:
            removed.append(step)
            shutil.rmtree(os.path.join(config.workdir, str(step)))
        return restore(mngr, step, like, item)

    monkeypatch.setattr(checkpoint, "restore_state", removing)
    with caplog.at_level(logging.INFO, logger="vae_jax"):
        model = vae_jax.load(config.workdir)
    assert removed == [18] and model.step == 15
    assert "checkpoint step 18 was removed meanwhile" in caplog.text and "damaged" not in caplog.text


def test_a_reader_gives_up_after_its_attempts_with_a_true_line(trained, tmp_path, monkeypatch):
    config = _copy(trained, tmp_path)
    restore = checkpoint.restore_state

    def removing(mngr, step, like, item="state"):  # every step is retired as soon as it is read
        shutil.rmtree(os.path.join(config.workdir, str(step)), ignore_errors=True)
        return restore(mngr, step, like, item)

    monkeypatch.setattr(checkpoint, "restore_state", removing)
    with pytest.raises(UserError, match="no intact checkpoint .*removed meanwhile by the run writing there.*run this"):
        vae_jax.load(config.workdir)


def test_a_config_before_format_3_reads_an_option_its_objective_did_not_read_as_its_default():
    """--k of a vae run meant nothing and was kept; format 3 refuses it, so an older step reads it as 5."""
    from vae_jax import integrity

    saved = {"config": Config().to_dict() | {"k": 10}, "image_shape": [28, 28, 1], "num_classes": 10, "epoch": 1}
    older = integrity.sealed(saved | {"format": 2, "digests": {}, "metrics": None}, runmeta.SEAL)
    assert runmeta.from_json(older, "x").config == Config()
    with pytest.raises(
        UserError, match="--k applies to --objective iwae or miwae or piwae or ciwae only, not --objective vae"
    ):
        runmeta.from_json(integrity.sealed({**older, "format": 3}, runmeta.SEAL), "x")
    iwae = integrity.sealed(older | {"config": saved["config"] | {"objective": "iwae"}}, runmeta.SEAL)
    assert runmeta.from_json(iwae, "x").config.k == 10  # the option of its own objective is kept
