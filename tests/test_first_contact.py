"""What a new user meets first: logging that works in a notebook, flags that are not guessed from a
prefix, a workdir checked before the data is loaded, the likelihood chosen from the data, numbers
that add up, messages that name what works, and outputs that do not collide."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = "epochs=1, hidden=(16,), latent_dim=2, eval_k=1, batch_size=500"


def _python(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


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
