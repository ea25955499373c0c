"""Never lose a run: non-finite steps, pre-emption, exact resume after a kill, damaged checkpoints,
hostile configs and paths."""

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import vae_jax
from vae_jax import experiment
from vae_jax.config import Config
from vae_jax.errors import NonFiniteLoss, UserError
from vae_jax.families import build
from vae_jax.objectives.vae import ELBO
from vae_jax.training import init_state, make_train_steps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = [
    "--hidden",
    "64",
    "--latent-dim",
    "4",
    "--epochs",
    "3",
    "--batch-size",
    "100",
    "--checkpoint-every-steps",
    "6",
    "--eval-k",
    "2",
]


def _config(workdir) -> Config:
    return Config(
        hidden=(64,), latent_dim=4, epochs=3, batch_size=100, checkpoint_every_steps=6, eval_k=2, workdir=str(workdir)
    )


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("straight")
    experiment.train(_config(workdir))
    return vae_jax.load(str(workdir))


def test_a_nan_batch_is_skipped_and_changes_nothing():
    vae = build(Config(hidden=(32,), latent_dim=2), (4, 4, 1))
    optimizer = optax.adam(1e-2)
    state = init_state(vae, optimizer, ELBO(), jax.random.key(0))
    images = jnp.full((12, 4, 4, 1), 128.0).at[4].set(jnp.nan)  # the second batch of 4 holds a NaN
    run = make_train_steps(vae, optimizer, ELBO(), False, 4).run  # no binarization: the NaN reaches the loss
    after_one, _ = run(state, images, None, jnp.arange(12), jax.random.key(1), jnp.int32(0), n_steps=1)
    after_two, stats = run(after_one, images, None, jnp.arange(12), jax.random.key(1), jnp.int32(1), n_steps=1)
    assert bool(stats["skipped"][0]) and not np.isfinite(float(stats["loss"][0]))
    assert _same(after_two.params, after_one.params) and _same(after_two.opt_state, after_one.opt_state)
    assert int(after_two.step) == 2
    _, stats = run(state, images, None, jnp.arange(12), jax.random.key(1), jnp.int32(0), n_steps=3)
    assert list(np.asarray(stats["skipped"])) == [False, True, False]


def test_a_diverging_learning_rate_stops_the_run_with_a_message(tmp_path):
    config = Config(likelihood="gaussian", hidden=(32,), latent_dim=2, lr=1e9, epochs=3, workdir=str(tmp_path))
    with pytest.raises(NonFiniteLoss, match="consecutive steps with a non-finite loss"):
        experiment.train(config)


def _train_cli(workdir, *extra):
    return subprocess.Popen(
        [sys.executable, "train.py", *FLAGS, "--workdir", str(workdir), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_mid_epoch_checkpoint(workdir, proc, timeout=120):
    """Block until a checkpoint inside an epoch (step not a multiple of 40) is on disk."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if os.path.isdir(workdir) and any(d.isdigit() and int(d) % 40 for d in os.listdir(workdir)):
            return
        time.sleep(0.05)
    raise AssertionError("no mid-epoch checkpoint appeared")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_mid_epoch_and_resumed_gives_the_same_params(tmp_path, uninterrupted, sig):
    workdir = tmp_path / "run"
    proc = _train_cli(workdir)
    _wait_for_mid_epoch_checkpoint(workdir, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGTERM:
        assert proc.returncode == 75, err
        assert "resume with:" in err and "train.py" in err.splitlines()[-1]
        saved = int(err.split("checkpoint saved at step ")[1].split(";")[0])
        assert vae_jax.load(str(workdir)).step == saved < 120  # it saved where it stopped
    else:
        assert proc.returncode == -signal.SIGKILL
    again = _train_cli(workdir)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert "resuming at step" in err
    resumed = vae_jax.load(str(workdir))
    assert resumed.step == uninterrupted.step == 120
    assert _same(resumed.params, uninterrupted.params)


def _damage(step_dir):
    for root, _, files in os.walk(step_dir):
        for f in files:
            if os.path.getsize(os.path.join(root, f)) > 100:
                with open(os.path.join(root, f), "r+b") as fh:
                    fh.truncate(10)


def test_a_damaged_newest_checkpoint_falls_back_to_the_newest_intact_one(tmp_path, uninterrupted, caplog):
    workdir = tmp_path / "run"
    shutil.copytree(uninterrupted.config.workdir, workdir)
    steps = sorted(int(d) for d in os.listdir(workdir) if d.isdigit())
    _damage(workdir / str(steps[-1]))
    with caplog.at_level("WARNING"):
        model = vae_jax.load(str(workdir))
    assert model.step == steps[-2] and f"checkpoint step {steps[-1]}" in caplog.text
    # training moves the damaged step aside (nothing deleted) and redoes the lost steps exactly
    experiment.train(dataclasses.replace(_config(workdir)))
    assert any(d.startswith(f"damaged-{steps[-1]}-") for d in os.listdir(workdir))
    assert _same(vae_jax.load(str(workdir)).params, uninterrupted.params)
    for d in os.listdir(workdir):
        if d.isdigit():
            _damage(workdir / d)
    with pytest.raises(UserError, match="no intact checkpoint"):
        vae_jax.load(str(workdir))


def test_a_config_with_unknown_or_ill_typed_fields_is_rejected():
    good = Config().to_dict()
    assert Config.from_dict(good) == Config()
    with pytest.raises(UserError, match="unknown fields: evil"):
        Config.from_dict({**good, "evil": "__import__('os')"})
    for field, value in [("latent_dim", "20"), ("hidden", [500, "x"]), ("conditional", 1), ("lr", None), ("model", 3)]:
        with pytest.raises(UserError):
            Config.from_dict({**good, field: value})


def test_a_workdir_that_cannot_be_created_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot create the folder"):
        experiment.train(Config(hidden=(16,), epochs=1, workdir=str(blocker / "run")))


def test_paths_with_spaces_and_unicode_work(tmp_path):
    workdir = tmp_path / "runs with spaces" / "über ✓"
    experiment.train(Config(hidden=(16,), latent_dim=2, epochs=1, eval_k=1, workdir=str(workdir)))
    assert vae_jax.load(str(workdir)).epoch == 1


@pytest.mark.slow
def test_a_signal_in_the_last_call_of_an_epoch_stops_after_that_epoch_is_saved(tmp_path, uninterrupted, monkeypatch):
    from vae_jax.errors import Preempted
    from vae_jax.training import Batches

    take = Batches.take

    def signalled(self, state, order, first, n):
        out = take(self, state, order, first, n)
        if first + n == self.steps_per_epoch and int(out[0].step) == self.steps_per_epoch:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives during the epoch's last call
        return out

    monkeypatch.setattr(Batches, "take", signalled)
    config = _config(tmp_path / "run")
    with pytest.raises(Preempted, match="checkpoint saved at step 40"):
        experiment.train(config)
    assert vae_jax.load(config.workdir).epoch == 1  # the whole first epoch, with its metrics
    monkeypatch.setattr(Batches, "take", take)
    experiment.train(config)
    assert _same(vae_jax.load(config.workdir).params, uninterrupted.params)
