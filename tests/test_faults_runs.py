"""Faults during a run: a stop signal at any moment, what --keep keeps, flipped bytes in a saved
step, a disk that fills while Orbax writes, damaged steps read by the other tools, every step
damaged, a run that trains nothing, non-finite steps before any save."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

import vae_jax
from vae_jax import api, checkpoint, experiment, objectives, report, training
from vae_jax.config import Config
from vae_jax.errors import NonFiniteLoss, Preempted, UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(hidden=(16,), latent_dim=2, batch_size=30, eval_k=1)  # 270 training images: 9 steps an epoch


def _npz(path, n: int = 300, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    np.savez(path, images=rng.integers(0, 256, (n, 8, 8)).astype(np.uint8), labels=np.arange(n) % 3)
    return str(path)


def _config(tmp_path, name: str = "w", **changes) -> Config:
    data = tmp_path / "d.npz"
    if not data.exists():
        _npz(data)
    return Config(dataset="mnist", data_dir=str(data), workdir=str(tmp_path / name), **{**TINY, "epochs": 2, **changes})


def _steps(workdir) -> list[int]:
    return sorted(int(e) for e in os.listdir(workdir) if e.isdigit())


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two epochs with a checkpoint every 3 steps: steps 3, 6, 9 (epoch 1) ... 18, the newest 3 kept."""
    config = _config(tmp_path_factory.mktemp("trained"), checkpoint_every_steps=3)
    experiment.train(config)
    return config


def _copy(config: Config, tmp_path) -> Config:
    shutil.copytree(config.workdir, tmp_path / "copy")
    return dataclasses.replace(config, workdir=str(tmp_path / "copy"))


def test_a_signal_while_the_host_waits_for_the_device_saves_the_step_it_names(tmp_path, monkeypatch):
    config = _config(tmp_path)
    count = experiment._Run.count_skipped

    def signalled(self, skipped, step):  # the host reads a call's statistics: a sync point
        if step == 4:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives after the call, while its results are awaited
        return count(self, skipped, step)

    monkeypatch.setattr(experiment._Run, "count_skipped", signalled)
    with pytest.raises(Preempted, match="checkpoint saved at step 4") as stopped:
        experiment.train(config)
    assert _steps(config.workdir) == [stopped.value.step]  # in the first epoch too: the step it names is on disk
    assert vae_jax.load(config.workdir).step == 4
    monkeypatch.setattr(experiment._Run, "count_skipped", count)
    experiment.train(config)
    straight = _config(tmp_path, "straight")
    experiment.train(straight)
    assert _same(vae_jax.load(config.workdir).params, vae_jax.load(straight.workdir).params)


def test_a_signal_during_the_final_evaluation_stops_it_and_the_same_command_runs_it(tmp_path, monkeypatch, caplog):
    config = _config(tmp_path, epochs=1)
    measure = report.evaluation

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return measure(*args, **kwargs)

    monkeypatch.setattr(report, "evaluation", signalled)
    with pytest.raises(Preempted, match="checkpoint saved at step 9"):
        experiment.train(config)
    lines = [json.loads(line) for line in open(os.path.join(config.workdir, "metrics.jsonl"))]
    assert "evaluation" not in lines[-1]
    monkeypatch.setattr(report, "evaluation", measure)
    with caplog.at_level("INFO"):
        experiment.train(config)
    assert "final evaluation unfinished: running it" in caplog.text
    lines = [json.loads(line) for line in open(os.path.join(config.workdir, "metrics.jsonl"))]
    assert lines[-1]["step"] == 9 and "nll" in lines[-1]["evaluation"]
    experiment.train(config)  # now there is nothing to do
    assert len(open(os.path.join(config.workdir, "metrics.jsonl")).readlines()) == len(lines)


@pytest.mark.parametrize("when", ["in the last call", "after the final evaluation"])
def test_a_signal_in_the_last_epoch_or_after_the_evaluation_is_not_swallowed(tmp_path, monkeypatch, caplog, when):
    """The last epoch's last call (no call follows it to stop before), or the pictures after the final
    evaluation: the run still ends in Preempted naming the saved step, and the same command then runs
    (or has nothing left of) the evaluation."""
    config = _config(tmp_path, epochs=1)
    count, append = experiment._Run.count_skipped, experiment.outputs.RunOutputs.append

    def signal_at_9(self, skipped, step):
        if step == 9:
            os.kill(os.getpid(), signal.SIGTERM)
        return count(self, skipped, step)

    def signal_after(self, record):
        append(self, record)
        if "evaluation" in record:
            os.kill(os.getpid(), signal.SIGTERM)

    if when == "in the last call":
        monkeypatch.setattr(experiment._Run, "count_skipped", signal_at_9)
    else:
        monkeypatch.setattr(experiment.outputs.RunOutputs, "append", signal_after)
    with pytest.raises(Preempted, match="SIGTERM: checkpoint saved at step 9"):
        experiment.train(config)
    assert _steps(config.workdir) == [9]
    evaluated = "evaluation" in json.loads(open(os.path.join(config.workdir, "metrics.jsonl")).readlines()[-1])
    assert evaluated == (when == "after the final evaluation")
    monkeypatch.undo()
    with caplog.at_level("INFO"):
        experiment.train(config)
    said = "nothing to do" if evaluated else "final evaluation unfinished: running it"
    assert said in caplog.text


def test_a_signal_in_the_evaluation_is_not_swallowed_by_code_that_catches_errors(tmp_path, monkeypatch):
    """The stop is raised from the signal handler wherever the evaluation is: inside a library's
    `except Exception` (as JAX's compilation cache has, reading an entry) it must go on up."""
    config = _config(tmp_path, epochs=1)
    measure = report.evaluation

    def cautious(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # handled here, inside the try
            sum(range(1000))
        except Exception:  # a library that carries on after an error of its own
            pass
        return measure(*args, **kwargs)

    monkeypatch.setattr(report, "evaluation", cautious)
    with pytest.raises(Preempted, match="SIGTERM: checkpoint saved at step 9"):
        experiment.train(config)


def test_long_epochs_are_cut_into_calls_that_a_signal_waits_for(tmp_path):
    for platform in ("cpu", "gpu", "tpu"):
        assert training.steps_per_call(False, "device", 640_000, platform) == training.MAX_STEPS_PER_CALL
    assert training.steps_per_call(False, "device", 469, "cpu") == 47  # a tenth of a short epoch, as before


def test_keep_bounds_the_mid_epoch_saves_too(tmp_path):
    config = _config(tmp_path, checkpoint_every_steps=2, keep=1)
    experiment.train(config)
    steps = _steps(config.workdir)
    assert steps[-1] == 18 and len(steps) <= 2, steps  # the newest, and the epoch end with the best test ELBO


def _flip_silently(directory, step, item, like) -> None:
    """XOR 64 bytes of the largest file of `item` in `step` where Orbax still reads it back (other values)."""
    files = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(directory, str(step), item)) for f in fs]
    path = max(files, key=os.path.getsize)
    original = open(path, "rb").read()
    for offset in range(len(original) // 2, len(original) - 64, 97):
        flipped = bytearray(original)
        flipped[offset : offset + 64] = bytes(b ^ 0xFF for b in flipped[offset : offset + 64])
        open(path, "wb").write(bytes(flipped))
        try:
            read = checkpoint.restore_state(checkpoint.reader(directory), step, like, item)
        except UserError:
            continue
        if not _same(read, like):
            return
    pytest.skip("no flip of that file left the step readable")


def test_flipped_bytes_in_a_saved_step_are_damage(trained, tmp_path, caplog):
    config = _copy(trained, tmp_path)
    newest = _steps(config.workdir)[-1]
    _, _, state = checkpoint.load_intact(config.workdir, checkpoint.state_of(_like))
    _flip_silently(config.workdir, newest, "sampling_params", state.params)  # what readers read
    with caplog.at_level("WARNING"):
        model = vae_jax.load(config.workdir)
    assert model.step < newest and "does not match the digest recorded when it was saved" in caplog.text
    experiment.train(dataclasses.replace(config, epochs=3))  # a resume sets that step aside too
    assert any(e.startswith(f"damaged-{newest}-") for e in os.listdir(config.workdir))
    fresh = _copy(trained, tmp_path / "state")
    _flip_silently(fresh.workdir, newest, "state", state)  # what training resumes from
    with caplog.at_level("WARNING"):
        experiment.train(
            dataclasses.replace(fresh, epochs=3)
        )  # resumes from the step before, the flipped one set aside
    assert "does not match the digest recorded when it was saved" in caplog.text
    assert any(e.startswith(f"damaged-{newest}-") for e in os.listdir(fresh.workdir))
    assert vae_jax.load(fresh.workdir).epoch == 3


def _like(meta):
    vae = api.model_of(meta)
    return training.init_state(vae, api.make_optimizer(meta.config), objectives.of(meta.config), jax.random.key(0))


def _damage(step_dir) -> None:
    for root, _, files in os.walk(step_dir):
        for f in files:
            if os.path.getsize(os.path.join(root, f)) > 100:
                with open(os.path.join(root, f), "r+b") as fh:
                    fh.truncate(10)


def test_a_run_whose_every_step_is_damaged_stops_rather_than_start_again(trained, tmp_path):
    config = _copy(trained, tmp_path)
    for step in _steps(config.workdir):  # every file, the small ones Orbax reads to open the folder too
        for root, _, files in os.walk(os.path.join(config.workdir, str(step))):
            for f in files:
                os.truncate(os.path.join(root, f), min(10, os.path.getsize(os.path.join(root, f))))
    with pytest.raises(UserError, match=r"no intact checkpoint \(steps 18, 15, 12 are damaged\)$"):
        vae_jax.load(config.workdir)  # a reader passes over each (its metrics too) and moves nothing
    with pytest.raises(UserError, match="no intact checkpoint .* nothing was trained"):
        experiment.train(dataclasses.replace(config, epochs=3))
    assert _steps(config.workdir) == []  # all set aside, none deleted
    assert len([e for e in os.listdir(config.workdir) if e.startswith("damaged-")]) == 3


@pytest.mark.slow
def test_falling_back_from_a_damaged_step_prints_one_line_and_no_traceback(tmp_path):
    rng = np.random.default_rng(0)  # arrays of a usual size: Orbax reads them in several tasks
    np.savez(tmp_path / "d.npz", images=rng.integers(0, 256, (300, 28, 28)).astype(np.uint8))
    config = _config(tmp_path, hidden=(500,), latent_dim=20, epochs=1, checkpoint_every_steps=4)
    experiment.train(config)
    step_dir = os.path.join(config.workdir, str(_steps(config.workdir)[-1]), "sampling_params")  # what sample.py reads
    largest = max((os.path.join(r, f) for r, _, fs in os.walk(step_dir) for f in fs), key=os.path.getsize)
    os.truncate(largest, os.path.getsize(largest) // 2)  # its arrays' reads fail after the metadata was read
    for _ in range(5):  # Orbax's leftover read tasks report at random moments
        proc = subprocess.run(
            [sys.executable, "sample.py", "--ckpt", config.workdir, "--out", str(tmp_path / f"s{_}.png")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("skipping damaged checkpoint"), proc.stderr
        assert "bound method" not in lines[0] and "TensorStore" not in lines[0]


def test_a_run_that_trains_nothing_leaves_config_json_as_it_was(trained, tmp_path):
    config = _copy(trained, tmp_path)
    path = os.path.join(config.workdir, "config.json")
    before = open(path).read()
    experiment.train(dataclasses.replace(config, epochs=1))
    assert open(path).read() == before


def test_a_changed_test_image_is_refused_on_resume(trained, tmp_path):
    config = _copy(trained, tmp_path)
    with np.load(config.data_dir) as f:
        images, labels = f["images"].copy(), f["labels"]
    images[9] ^= 1  # every tenth image is held out: this is a test image
    moved = dataclasses.replace(config, data_dir=str(tmp_path / "d.npz"))
    np.savez(moved.data_dir, images=images, labels=labels)
    with pytest.raises(UserError, match="test images digest"):
        experiment.train(dataclasses.replace(moved, epochs=3, workdir=config.workdir))


def test_non_finite_steps_before_any_save_say_that_none_was_saved(tmp_path):
    config = _config(tmp_path, likelihood="gaussian", lr=1e30, max_bad_steps=3)
    with pytest.raises(NonFiniteLoss, match="no checkpoint saved") as e:
        experiment.train(config)
    assert "None" not in str(e.value)


def _mount_tmpfs(path, megabytes: int) -> bool:
    os.makedirs(path, exist_ok=True)
    args = ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)]
    return subprocess.run(args, capture_output=True).returncode == 0


@pytest.mark.slow
def test_a_disk_that_fills_while_orbax_writes_ends_in_one_line(tmp_path):
    small = tmp_path / "small"
    if not _mount_tmpfs(small, 14):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    script = (
        "import sys, vae_jax.workdir as wd\n"
        "wd.free_bytes = lambda path: 2**40\n"  # the check before a save passes: the write itself fails
        "from vae_jax.commands.train import main\n"
        "sys.argv = ['train.py', *sys.argv[1:]]\n"
        "main()\n"
    )
    flags = ["--epochs", "2", "--batch-size", "64", "--eval-k", "1", "--checkpoint-every-steps", "5", "--keep", "100"]
    try:
        for attempt in range(3):
            workdir = small / f"w{attempt}"
            proc = subprocess.run(
                [sys.executable, "-c", script, *flags, "--workdir", str(workdir)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert proc.returncode == 74, proc.stderr
            assert "Traceback" not in proc.stderr and "Event loop" not in proc.stderr, proc.stderr
            assert len(proc.stderr.strip().splitlines()) <= 10, proc.stderr
            assert "no room to save checkpoint step" in proc.stderr.strip().splitlines()[-1]
            shutil.rmtree(workdir)
    finally:
        subprocess.run(["umount", str(small)], check=False)
