"""Resume refuses what it cannot honour: restores that fail for other reasons than damage, other
training data, a broken prepared TFDS copy, a full disk, and a workdir in use by a live run."""

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
import tensorflow_datasets as tfds

import vae_jax
from vae_jax import api, checkpoint, data, experiment, saving, training
from vae_jax import workdir as wd
from vae_jax.config import Config
from vae_jax.errors import DiskFull, UserError
from vae_jax.families import build
from vae_jax.runmeta import RunMeta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(hidden=(16,), latent_dim=2, epochs=1, batch_size=30, eval_k=1)


def _npz(path, n: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    np.savez(path, images=rng.integers(0, 256, (n, 8, 8)).astype(np.uint8), labels=np.arange(n) % 3)
    return str(path)


def _entries(workdir) -> list[str]:
    return sorted(e for e in os.listdir(workdir) if e.isdigit() or e.startswith("damaged-"))


@pytest.fixture
def run(tmp_path):
    """One finished epoch on a 300-image .npz; returns its Config."""
    config = Config(dataset="mnist", data_dir=_npz(tmp_path / "d.npz", 300), workdir=str(tmp_path / "w"), **TINY)
    experiment.train(config)
    return config


def _other_optimizer(config: Config, total_steps: int = 1) -> optax.GradientTransformation:
    """An optimizer whose state has another structure: what an upgrade of the optimizer does."""
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(config.lr))


def test_a_restore_that_fails_for_another_reason_than_damage_moves_nothing(run, monkeypatch):
    before = _entries(run.workdir)
    monkeypatch.setattr(training, "make_optimizer", _other_optimizer)
    with pytest.raises(UserError, match="is intact but does not fit this model and optimizer.*nothing was moved"):
        experiment.train(replace(run, epochs=2))
    other_model = lambda meta: build(replace(meta.config, hidden=(8,)), meta.image_shape, meta.num_classes)  # noqa: E731
    monkeypatch.setattr(api, "model_of", other_model)
    with pytest.raises(UserError, match="is intact but does not fit"):
        vae_jax.load(run.workdir)  # the read-only path (which needs no optimizer) says the same, and skips nothing
    assert _entries(run.workdir) == before


def test_the_cli_exits_2_on_such_a_restore_and_moves_nothing(run):
    before = _entries(run.workdir)
    script = (
        "import sys, optax, vae_jax.training as t\n"
        "t.make_optimizer = lambda c, n=1: optax.chain(optax.clip_by_global_norm(1.0), optax.adam(c.lr))\n"
        "from vae_jax.commands.train import main\n"
        "sys.argv = ['train.py', *sys.argv[1:]]\n"
        "main()\n"
    )
    flags = ["--dataset", "mnist", "--data-dir", run.data_dir, "--workdir", run.workdir, "--epochs", "2"]
    flags += ["--hidden", "16", "--latent-dim", "2", "--batch-size", "30", "--eval-k", "1"]
    proc = subprocess.run([sys.executable, "-c", script, *flags], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "does not fit" in proc.stderr.strip().splitlines()[-1]
    assert _entries(run.workdir) == before


def test_a_resume_on_other_training_data_is_refused_with_both_named(run, tmp_path):
    steps = _entries(run.workdir)
    again = replace(run, epochs=2)
    _npz(run.data_dir, 250)  # the file shrank
    with pytest.raises(UserError, match=r"trained on 270 training images from .*d\.npz.*the data now are 225"):
        experiment.train(again)
    _npz(run.data_dir, 300, seed=1)  # same size, other images
    with pytest.raises(UserError, match="digest"):
        experiment.train(again)
    moved = shutil.copy(_npz(run.data_dir, 300), tmp_path / "copy.npz")  # the same images from another source
    with pytest.raises(UserError, match="copy.npz"):
        experiment.train(replace(again, data_dir=str(moved)))
    assert _entries(run.workdir) == steps
    experiment.train(again)  # the original data again: resumes
    assert vae_jax.load(run.workdir).epoch == 2
    experiment.train(replace(again, data_dir=str(moved)), fresh=True)


def test_an_explicit_data_dir_wins_over_a_prepared_tfds_copy(tmp_path, prepared_tfds):
    path = _npz(tmp_path / "mine.npz", 40)
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        assert data.load("mnist").source == "prepared TFDS copy"
        assert data.load("mnist", path).source.startswith(path)


def test_a_prepared_tfds_copy_that_fails_to_read_is_reported(monkeypatch, prepared_tfds):
    def broken(*args, **kwargs):
        raise ValueError("array_record shard mnist-train.array_record-00000-of-00001 is truncated")

    monkeypatch.setattr(tfds, "data_source", broken)
    with pytest.raises(UserError, match="prepared TFDS copy of mnist cannot be read .*truncated"):
        data.load("mnist")


def test_a_full_disk_during_a_save_is_one_error_and_keeps_the_previous_step(run, monkeypatch):
    real_save = ocp.CheckpointManager.save

    def full_disk(self, step, *args, **kwargs):
        os.makedirs(os.path.join(self.directory, f"{step}.orbax-checkpoint-tmp", "state"))
        raise ValueError("RESOURCE_EXHAUSTED: Error writing: No space left on device [os_error_code='28']")

    monkeypatch.setattr(ocp.CheckpointManager, "save", full_disk)
    with pytest.raises(DiskFull, match=r"no room to save checkpoint step 18 .* step 9 is intact"):
        experiment.train(replace(run, epochs=2))
    assert not [e for e in os.listdir(run.workdir) if wd.TMP_MARK in e]  # the unfinished save is gone
    assert vae_jax.load(run.workdir).step == 9
    monkeypatch.setattr(ocp.CheckpointManager, "save", real_save)
    monkeypatch.setattr(saving.wd, "free_bytes", lambda path: 1000)  # room for no step at all
    with pytest.raises(DiskFull, match=r"needs [0-9.]+ MiB, 0\.0 MiB are free"):
        experiment.train(replace(run, epochs=2))
    assert _entries(run.workdir) == ["9"]


META = RunMeta(Config(), (28, 28, 1), 10, {})


def _tiny_state(optimizer=None):
    from vae_jax.families import build
    from vae_jax.objectives.vae import ELBO

    vae = build(Config(hidden=(16,), latent_dim=2), (28, 28, 1))
    optimizer = optimizer or optax.adam(1e-2)
    steps = training.make_train_steps(vae, optimizer, ELBO(), True, 4, donate=True)
    return training.init_state(vae, optimizer, ELBO(), jax.random.key(0)), steps


def test_a_save_is_written_while_the_next_steps_run_and_holds_the_state_it_was_given(tmp_path):
    state, steps = _tiny_state()
    images = jax.random.randint(jax.random.key(1), (8, 28, 28, 1), 0, 256).astype(np.uint8)
    saved = jax.tree.map(np.array, state)
    saver = saving.Saver(checkpoint.manager(str(tmp_path / "w")))
    saver.save(state, state.params, META, 0, {checkpoint.BEST_METRIC: 0.0})
    assert saver.pending == (0, saver.pending[1])  # being written: finish() has not been called
    # the next step takes the saved state's buffers (donated) while the save may still be written
    after, _ = steps.run(state, images, None, np.arange(8), jax.random.key(2), np.int32(0), n_steps=2)
    assert jax.tree.leaves(state.params)[0].is_deleted()
    saver.finish()
    assert saver.pending is None
    restored = checkpoint.restore_state(saver.mngr, 0, after)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(saved)):
        np.testing.assert_array_equal(a, b)


# after the failed write Orbax's writer thread hands a callback to its own event loop, already closed
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_save_that_runs_out_of_space_while_being_written_is_one_error_and_keeps_the_previous_step(
    tmp_path, monkeypatch
):
    small = tmp_path / "small"
    if not _mount_tmpfs(small, 2):
        pytest.skip("cannot mount a small tmpfs here (needs root); a full disk at save() is tested above")
    try:
        state, _ = _tiny_state()
        saver = saving.Saver(checkpoint.manager(str(small / "w")))
        saver.save(state, state.params, META, 0, None)
        saver.finish()  # step 0 fits
        with open(small / "filler", "wb") as f:  # leave about 100 KB: too little for the next step's arrays
            f.write(b"\0" * max(0, wd.free_bytes(str(small)) - 100_000))
        monkeypatch.setattr(saving.wd, "free_bytes", lambda path: 2**40)  # the check before writing passes
        saver.save(state._replace(step=state.step + 5), state.params, META, 0, None)
        with pytest.raises(DiskFull, match=r"no room to save checkpoint step 5 .* step 0 is intact"):
            saver.finish()
        assert saver.pending is None
        assert sorted(os.listdir(small / "w")) == ["0"]  # the unfinished save is gone, step 0 untouched
        restored = checkpoint.restore_state(checkpoint.reader(str(small / "w")), 0, state)
        assert int(restored.step) == 0
    finally:
        subprocess.run(["umount", str(small)], check=False)


def _mount_tmpfs(path, megabytes: int) -> bool:
    os.makedirs(path, exist_ok=True)
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )


@pytest.mark.slow
def test_a_real_full_filesystem_exits_74_with_one_line_and_resumes_later(tmp_path):
    small = tmp_path / "small"
    if not _mount_tmpfs(small, 14):
        pytest.skip("cannot mount a small tmpfs here (needs root); the simulated full disk is tested above")
    try:
        workdir = small / "run"
        os.makedirs(workdir / "99.orbax-checkpoint-tmp")  # left by an earlier crash: removed at start
        cmd = [sys.executable, "train.py", "--epochs", "2", "--workdir", str(workdir), "--eval-k", "1"]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 74, proc.stderr
        assert "Traceback" not in proc.stderr and "RESOURCE_EXHAUSTED" not in proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert "no room to save checkpoint step 62" in last and "step 31 is intact" in last and "train.py" in last
        assert sorted(e for e in os.listdir(workdir) if e[0].isdigit()) == ["31"]
        assert vae_jax.load(str(workdir)).step == 31
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_a_busy_workdir_is_refused_and_a_killed_run_leaves_no_lock(tmp_path):
    workdir = tmp_path / "w"
    os.makedirs(workdir)
    hold = f"from vae_jax import workdir as wd; wd.Lock({str(workdir)!r}); print('held', flush=True); "
    hold += "import time; time.sleep(300)"
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = subprocess.run(
            [sys.executable, "train.py", "--workdir", str(workdir), "--epochs", "1"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert f"is in use by another run (process {holder.pid})" in proc.stderr.strip().splitlines()[-1]
        assert not _entries(workdir)
        with pytest.raises(UserError, match="in use by another run"):
            wd.Lock(str(workdir))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    wd.Lock(str(workdir)).release()  # the kernel dropped the dead holder's lock


def test_a_second_train_call_on_the_same_workdir_is_refused_while_the_first_runs(tmp_path):
    config = Config(workdir=str(tmp_path / "w"), **{**TINY, "batch_size": 100, "epochs": 1})
    first = subprocess.Popen(
        [
            sys.executable,
            "train.py",
            "--workdir",
            config.workdir,
            "--hidden",
            "16",
            "--latent-dim",
            "2",
            "--epochs",
            "50",
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not os.path.exists(os.path.join(config.workdir, wd.LOCK_FILE)):
            time.sleep(0.05)
        time.sleep(0.5)
        with pytest.raises(UserError, match="in use by another run"):
            experiment.train(config)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
