import gc
import os

import pytest
from tensorflow_datasets.testing import mocking

from vae_jax.cli import enable_compilation_cache

enable_compilation_cache()


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Each XLA:CPU program JAX's caches keep holds about eight memory maps, and a process may hold
    65,530 (vm.max_map_count): past that, compiling or serializing the next program segfaults. The
    suite in one process compiles far more, so each module's programs are released when it ends
    (the persistent compilation cache makes compiling them again cheap)."""
    yield
    import jax

    jax.clear_caches()
    gc.collect()


@pytest.fixture
def prepared_tfds(tmp_path, monkeypatch):
    """A TFDS data dir whose dataset folders exist, for tests that mock the prepared copies with
    tfds.testing.mock_data (vae_jax asks TFDS only where such a folder exists)."""
    data_dir = tmp_path / "tensorflow_datasets"
    for name in ("mnist", "cifar10", "celeb_a"):
        (data_dir / name).mkdir(parents=True)
    monkeypatch.setenv("TFDS_DATA_DIR", str(data_dir))
    monkeypatch.setattr(mocking, "_getitems", _bulk_read)
    return data_dir


def _bulk_read(*args, generator, serialized=False):
    """The mocked data sources' `__getitems__(keys)`. The one tfds.testing.mock_data installs is
    set as a plain attribute and so is called without the `self` it expects (a TypeError); the
    keys are the last positional argument either way."""
    assert not serialized
    return [generator[k] for k in args[-1]]


DIGITS8 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "digits8.npz")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A run trained once per test session, for the tests that need some trained checkpoint (not a
    particular one): an mlp (hidden 16, latent 2), one epoch on the 240 8x8 digits of
    tests/fixtures. Its Config; a test that writes into the workdir copies it first."""
    from vae_jax import experiment
    from vae_jax.config import Config

    config = Config(
        dataset=DIGITS8, hidden=(16,), latent_dim=2, batch_size=32, eval_k=1, epochs=1,
        workdir=str(tmp_path_factory.mktemp("tiny_run") / "w"),
    )  # fmt: skip
    experiment.train(config)
    return config


def run_command(command, monkeypatch, *argv) -> None:
    """Run a vae_jax.commands module as its script would, with argv (str() of each)."""
    import sys

    monkeypatch.setattr(sys, "argv", [command.__name__, *map(str, argv)])
    command.run()


def straight_and_resumed(root, flags) -> None:
    """train.py with `flags`: two epochs straight in root/straight, and in root/resumed one epoch, then
    the same command for two, resumed from the first."""
    from vae_jax.commands import train

    with pytest.MonkeyPatch.context() as monkeypatch:
        run_command(train, monkeypatch, *flags, "--epochs", 2, "--workdir", root / "straight")
        run_command(train, monkeypatch, *flags, "--epochs", 1, "--workdir", root / "resumed")
        run_command(train, monkeypatch, *flags, "--epochs", 2, "--workdir", root / "resumed")
