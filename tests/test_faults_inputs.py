"""Hostile inputs: outputs that exist or race, read-only folders, float and NaN images, files that
change under a streamed run, odd files in image folders, numbers and paths that cannot be used,
sizes beyond the machine, and messages that name the real problem."""

import dataclasses
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from vae_jax import cli, data, experiment, flags, memory, newfiles, training
from vae_jax.config import Config
from vae_jax.data import images
from vae_jax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(hidden=(16,), latent_dim=2, batch_size=30, eval_k=1, epochs=1)


def _run(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _one_line_exit_2(proc, *words) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in last, last
    return last


@pytest.fixture(scope="module")
def ckpt(tiny_run, tmp_path_factory):
    """The session's trained tiny run (8x8 images, conftest.py) and a folder of two PNGs of that size."""
    root = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    cfg = tiny_run
    os.makedirs(root / "pngs")
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (8, 8)).astype(np.uint8)).save(root / "pngs" / f"{i}.png")
    return cfg, str(root / "pngs")


def test_an_output_that_appears_while_it_is_written_is_left_as_it_is(tmp_path):
    out = tmp_path / "latents.npz"

    def write(path):
        open(path, "wb").write(b"mine")
        out.write_bytes(b"theirs")  # another run with the same --out finished first

    with pytest.raises(UserError, match="created by another process"):
        newfiles.write_new(str(out), write)
    assert out.read_bytes() == b"theirs" and os.listdir(tmp_path) == ["latents.npz"]
    again = newfiles.write_new(str(out), lambda path: open(path, "wb").write(b"next"), numbered=True)
    assert again == str(tmp_path / "latents-2.npz") and out.read_bytes() == b"theirs"


@pytest.mark.slow
def test_sample_and_encode_never_replace_a_file(ckpt, tmp_path):
    cfg, pngs = ckpt
    existing = tmp_path / "mine.png"
    existing.write_bytes(b"keep me")
    _one_line_exit_2(_run("sample.py", "--ckpt", cfg.workdir, "--out", str(existing)), "exists")
    assert existing.read_bytes() == b"keep me"
    written = [_run("sample.py", "--ckpt", cfg.workdir, "--n", "4").stdout.strip() for _ in range(2)]
    assert written == [os.path.join(cfg.workdir, "samples_seed0.png"), os.path.join(cfg.workdir, "samples_seed0-2.png")]
    first = _run("encode.py", "--ckpt", cfg.workdir, "--images", pngs, "--out", str(tmp_path / "z.npz"))
    assert first.returncode == 0, first.stderr
    _one_line_exit_2(_run("encode.py", "--ckpt", cfg.workdir, "--images", pngs, "--out", str(tmp_path / "z.npz")))
    assert os.stat(tmp_path / "z.npz").st_mode & 0o777 == 0o666 & ~_umask()  # a user's file, not a temporary's


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("out", ["x.txt", "folder", "noextension"])
def test_sample_out_must_name_a_png_file(ckpt, tmp_path, out):
    os.makedirs(tmp_path / "folder")
    last = _one_line_exit_2(_run("sample.py", "--ckpt", ckpt[0].workdir, "--out", str(tmp_path / out)), "--out")
    assert str(tmp_path / out) in last and os.listdir(tmp_path) == ["folder"]  # named, and nothing written


def test_a_read_only_checkpoint_folder_is_one_line_for_every_tool(ckpt, tmp_path):
    cfg, pngs = ckpt
    folder = tmp_path / "ro"
    os.makedirs(folder)
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        subprocess.run(["cp", "-r", cfg.workdir, str(folder / "w")], check=True)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        w = str(folder / "w")
        for args in (["sample.py"], ["evaluate.py", "--k", "2"], ["encode.py", "--images", pngs]):
            _one_line_exit_2(_run(*args, "--ckpt", w), "read-only")
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_float_images_in_0_1_are_scaled_to_8_bits_and_nan_is_named(tmp_path, caplog):
    x = np.random.default_rng(0).random((20, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "f.npz", images=x)
    with caplog.at_level("WARNING"):
        ds = data.load(str(tmp_path / "f.npz"))
    assert "scaled to 8 bits" in caplog.text
    np.testing.assert_array_equal(ds.train_images[0, ..., 0], np.rint(x[0] * 255).astype(np.uint8))
    x[3, 2, 2] = np.nan
    np.savez(tmp_path / "f.npz", images=x)
    with pytest.raises(UserError, match="contain NaN"):
        data.load(str(tmp_path / "f.npz"))


def _folder(root, n: int = 40) -> str:
    rng = np.random.default_rng(0)
    for i in range(n):
        os.makedirs(root / f"c{i % 2}", exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8)).astype(np.uint8)).save(root / f"c{i % 2}" / f"{i}.png")
    return str(root)


def test_a_streamed_file_that_changes_or_goes_stops_the_run_in_one_line(tmp_path, monkeypatch):
    root = _folder(tmp_path / "imgs")
    cfg = Config(dataset=root, stream=True, workdir=str(tmp_path / "w"), **{**TINY, "batch_size": 4})
    files = data.load(cfg.dataset, stream=True).train_images
    victim = os.path.join(files.root, files.paths[5])
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(victim)  # same name, other pixels
    with pytest.raises(images.DataChanged, match="changed since the run started"):
        files[5]
    take = training.Batches.take

    def deleting(self, state, order, first, n):
        if first == 2:  # every file: some are still to be read (the reads run a few batches ahead)
            for path in files.paths:
                os.remove(os.path.join(files.root, path))
        return take(self, state, order, first, n)

    monkeypatch.setattr(training.Batches, "take", deleting)
    with pytest.raises(UserError, match="no such file.*training stopped.*put the file back"):
        experiment.train(cfg)


def test_other_files_in_an_image_folder_are_counted_and_a_fifo_does_not_hang(tmp_path):
    root = _folder(tmp_path / "imgs", 10)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "imgs" / "c0" / "a.gif")
    os.mkfifo(tmp_path / "imgs" / "c1" / "x.png")
    script = f"from vae_jax.data import images\nprint(len(images.load_folder({root!r})[1]['train_images']))"
    proc = _run("-c", script, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "ignored 2 file(s)" in proc.stderr and "a.gif" in proc.stderr and "x.png (not a regular file)" in proc.stderr


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(Config) if f.type in ("float", float)])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_every_float_flag_refuses_nan_and_infinity(field, value):
    with pytest.raises(UserError, match=f"--{field.replace('_', '-')}"):
        Config(**{field: value})


def test_numbers_and_paths_that_cannot_be_used_are_one_line(ckpt, tmp_path):
    cfg, _ = ckpt
    _one_line_exit_2(_run("train.py", "--seed", str(2**64), "--workdir", str(tmp_path / "a")), "--seed")
    _one_line_exit_2(_run("sample.py", "--ckpt", cfg.workdir, "--seed", str(2**64)), "--seed")
    _one_line_exit_2(_run("train.py", "--k", "1000000000", "--objective", "iwae"), "--k")
    _one_line_exit_2(_run("evaluate.py", "--ckpt", cfg.workdir, "--k", "1000000000"), "--k")
    latin1 = os.fsencode(str(tmp_path)) + b"/caf\xe9"
    proc = subprocess.run([sys.executable, b"train.py", b"--workdir", latin1], cwd=ROOT, capture_output=True, text=True)
    _one_line_exit_2(proc, "not valid UTF-8")
    assert not os.path.exists(latin1)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UserError, match="nested too deeply"):
        flags.read_file(str(deep))


def test_a_long_kl_warm_up_trains(ckpt, tmp_path):
    cfg = dataclasses.replace(ckpt[0], workdir=str(tmp_path / "w"), kl_warmup_epochs=10**9)
    assert np.isfinite(experiment.train(cfg)["test_elbo"])


@pytest.mark.slow
def test_a_model_that_cannot_fit_is_refused_before_anything_is_allocated(tmp_path):
    proc = _run("train.py", "--hidden", "100000000", "--workdir", str(tmp_path / "w"), timeout=120)
    _one_line_exit_2(proc, "needs at least", "GiB", "--hidden")
    assert "model: 163,000,000,824 parameters; params and optimizer state 1956.0 GB" in proc.stderr


def test_running_out_of_memory_anyway_is_one_line(capsys):
    for error in (MemoryError(), jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 9 bytes")):

        def body(error=error):
            raise error

        with pytest.raises(SystemExit) as e:
            cli.main(body)
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and ": error: out of memory" in err[0]
    assert memory.is_out_of_memory(MemoryError()) and not memory.is_out_of_memory(RuntimeError("other"))


def test_messages_name_the_real_problem(ckpt, tmp_path):
    cfg, _ = ckpt
    (tmp_path / "text.npz").write_text("a, b\n1, 2\n")
    with pytest.raises(UserError, match="not a zip archive") as e:
        data.load(str(tmp_path / "text.npz"))
    assert "pickle" not in str(e.value)
    step = sorted(d for d in os.listdir(cfg.workdir) if d.isdigit())[-1]
    _one_line_exit_2(_run("sample.py", "--ckpt", os.path.join(cfg.workdir, step)), "is one step of the run in")
    mine = tmp_path / "mine"
    os.makedirs(mine)
    (mine / "notes.txt").write_text("my notes")
    with pytest.raises(UserError, match="holds no run .* nothing was moved"):
        experiment.train(dataclasses.replace(cfg, workdir=str(mine)), fresh=True)
    assert sorted(os.listdir(mine)) == [".lock", "notes.txt"]
