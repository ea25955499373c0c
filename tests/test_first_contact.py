"""What a new user meets first: logging that works in a notebook, flags that are not guessed from a
prefix, a workdir checked before the data is loaded, the likelihood chosen from the data, numbers
that add up, messages that name what works, and outputs that do not collide."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = "epochs=1, hidden=(16,), latent_dim=2, eval_k=1, batch_size=500"


def _python(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.mark.slow
def test_importing_and_loading_leave_the_root_logger_alone_and_say_nothing(tmp_path):
    code = (
        "import logging\n"
        "import vae_jax\n"
        "assert logging.getLogger().handlers == [], logging.getLogger().handlers\n"
        f"vae_jax.train(vae_jax.Config({TINY}, workdir={str(tmp_path / 'w')!r}))\n"
        "assert logging.getLogger().handlers == [] and logging.getLogger('vae_jax').handlers == []\n"
        "import sys; print('LOADING', file=sys.stderr, flush=True)\n"
        f"vae_jax.load({str(tmp_path / 'w')!r})\n"
        "assert logging.getLogger().handlers == []\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/1" in proc.stderr  # a notebook sees the epochs without configuring anything
    assert proc.stderr.split("LOADING")[-1].strip() == ""  # and loading prints no absl warnings


@pytest.mark.slow
def test_the_users_own_logging_configuration_works_after_import(tmp_path):
    code = (
        "import logging\n"
        "import vae_jax\n"
        "logging.basicConfig(level=logging.INFO, format='USER %(message)s')\n"
        f"vae_jax.train(vae_jax.Config({TINY}, workdir={str(tmp_path / 'w')!r}))\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "epoch 1/1" in line]
    assert len(lines) == 1 and lines[0].startswith("USER "), proc.stderr  # once, in the user's format


@pytest.mark.parametrize(
    "command", [["train.py", "--epoch", "1"], ["sample.py", "--ck", "x"], ["evaluate.py", "--k", "5", "--bes"]]
)
def test_an_abbreviated_flag_is_refused_like_a_typo(command):
    proc = subprocess.run([sys.executable, *command], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "unrecognized arguments" in proc.stderr, proc.stderr


def test_a_workdir_of_another_run_is_refused_before_any_data_is_read(tmp_path, monkeypatch):
    from vae_jax import experiment
    from vae_jax.config import Config
    from vae_jax.data import sources
    from vae_jax.errors import UserError

    config = Config(epochs=1, hidden=(16,), latent_dim=2, eval_k=1, batch_size=500, workdir=str(tmp_path / "w"))
    experiment.train(config)

    def no_data(*args, **kwargs):
        raise AssertionError("the data were read before the workdir was checked")

    monkeypatch.setattr(sources, "load", no_data)
    with pytest.raises(UserError, match="holds a run with a different config .*latent_dim: 2 -> 3"):
        experiment.train(Config(**{**config.to_dict(), "latent_dim": 3, "hidden": (16,), "channels": (32, 64)}))
    with pytest.raises(UserError, match="--workdir /proc/forbidden: cannot create the folder"):
        experiment.train(Config(workdir="/proc/forbidden"))


def test_the_likelihood_is_chosen_from_the_data_and_said(tmp_path):
    from vae_jax.config import Config

    assert Config().resolved().likelihood == "bernoulli"  # mnist
    assert Config(dataset="fashion_mnist").resolved().likelihood == "bernoulli"
    for other in ("cifar10", "celeb_a", str(tmp_path / "mine.npz"), str(tmp_path / "photos")):
        assert Config(dataset=other).resolved().likelihood == "discretized-logistic", other
    assert Config(dataset="cifar10", likelihood="logistic-mixture").resolved().likelihood == "logistic-mixture"
    from PIL import Image

    os.makedirs(tmp_path / "photos" / "a")
    for i in range(20):
        Image.new("RGB", (8, 8), (i * 10, 100, 200)).save(tmp_path / "photos" / "a" / f"{i}.png")
    flags = ["--epochs", "1", "--batch-size", "6", "--hidden", "8", "--latent-dim", "2", "--eval-k", "1"]
    args = ["train.py", "--dataset", str(tmp_path / "photos"), *flags, "--workdir", str(tmp_path / "w")]
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "data: pixels modelled by the discretized-logistic likelihood" in proc.stderr
    import json

    assert json.load(open(tmp_path / "w" / "config.json"))["likelihood"] == "discretized-logistic"


@pytest.mark.slow
def test_an_epochs_seconds_are_the_same_in_every_place_they_are_said(tmp_path):
    import json
    import re

    flags = ["--epochs", "2", "--hidden", "16", "--latent-dim", "2", "--eval-k", "1", "--model", "conv"]
    args = ["train.py", *flags, "--channels", "4,8", "--workdir", str(tmp_path / "w")]
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in open(tmp_path / "w" / "metrics.jsonl") if '"seconds"' in line]
    lines = re.findall(r"epoch \d/2 .* ([0-9.]+)s\n", proc.stderr)
    assert lines == [f"{r['seconds']:.1f}" for r in records]
    said = re.search(r"2 epoch\(s\) ([0-9.]+) s", proc.stderr).group(1)
    assert said == f"{sum(r['seconds'] for r in records):.1f}"
    # the training steps alone are a part of the epoch: its test metrics come after them
    assert all(0 < r["steps_seconds"] < r["seconds"] for r in records)


def test_messages_name_the_problem_and_what_works(tmp_path, monkeypatch, caplog):
    from vae_jax import data
    from vae_jax.config import Config
    from vae_jax.data import download, sources, tfds_source
    from vae_jax.errors import UserError

    (tmp_path / "notes.txt").write_text("my notes")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="notes.txt: is a file, not an .npz"):
        Config(dataset="notes.txt")
    with pytest.raises(UserError, match="notes.txt: is a file, not a folder of images"):
        data.load(str(tmp_path / "notes.txt"))  # a path: taken for a folder until it is looked at
    monkeypatch.setattr(download, "reachable", lambda host, port: False)
    monkeypatch.setattr(tfds_source, "reachable", lambda *a, **k: False, raising=False)
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    monkeypatch.delenv(download.CHECKSUMS_ENV, raising=False)
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(UserError) as e:
        data.load("cifar10")
    assert "IDX" not in str(e.value) and "TensorFlow" not in str(e.value)
    assert "cifar-10-binary.tar.gz" in str(e.value) and download.MIRROR_ENV in str(e.value)
    monkeypatch.setattr(sources, "SYSTEM_COPIES", {})
    with caplog.at_level("INFO", logger="vae_jax"):
        data.load("mnist")
    said = [r.getMessage() for r in caplog.records if r.name == "vae_jax"]
    assert len(said) == 1 and "5,000-digit sample" in said[0] and "no download host answered" in said[0], said


def test_default_picture_names_say_the_label_and_the_notebook_trains_elsewhere():
    import json

    from vae_jax.commands import sample

    assert sample.default_out("c", "samples", "3", 7) == os.path.join("c", "samples_label3_seed7.png")
    assert sample.default_out("c", "grid", "T-shirt/top", 0) == os.path.join("c", "grid_labelT-shirt-top_seed0.png")
    assert sample.default_out("c", "samples", None, 0) == os.path.join("c", "samples_seed0.png")
    notebook = json.load(open(os.path.join(ROOT, "notebooks", "colab_tpu.ipynb")))
    code = "".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code")
    assert "checkpoints/" not in code  # the headline run's folder stays the headline run's


def test_help_and_a_mistyped_flag_do_not_import_jax():
    code = (
        "import sys\n"
        "from vae_jax.commands import train, sample, evaluate, encode\n"
        "for command in (train, sample, evaluate, encode):\n"
        "    sys.argv = ['x', '--help']\n"
        "    try:\n"
        "        command.run()\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'jax' not in sys.modules and 'orbax' not in sys.modules, sorted(m for m in sys.modules if 'jax' in m)\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_a_conditional_models_table_and_converted_images_are_said(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", images=rng.integers(0, 256, (300, 8, 8)).astype(np.uint8), labels=np.arange(300) % 3)
    flags = ["--epochs", "1", "--hidden", "16", "--latent-dim", "2", "--eval-k", "1", "--batch-size", "30"]
    w = str(tmp_path / "w")
    run = lambda *a: subprocess.run([sys.executable, *a], capture_output=True, text=True, cwd=ROOT, timeout=300)
    trained = run("train.py", "--dataset", str(tmp_path / "d.npz"), "--conditional", *flags, "--workdir", w)
    assert trained.returncode == 0, trained.stderr
    table = run("evaluate.py", "--ckpt", w, "--k", "2")
    assert table.returncode == 0, table.stderr
    assert re.search(r"^NLL -log p\(x\|y\) +[0-9]", table.stdout, re.M), table.stdout  # a space before the number
    os.makedirs(tmp_path / "rgb")
    Image.new("RGB", (8, 8), (200, 10, 10)).save(tmp_path / "rgb" / "red.png")
    encoded = run("encode.py", "--ckpt", w, "--images", str(tmp_path / "rgb"), "--label", "1")
    assert encoded.returncode == 0, encoded.stderr
    assert "1 of 1 image(s) converted from RGB to grey" in encoded.stderr
