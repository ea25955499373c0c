import pytest

from vae_jax.cli import enable_compilation_cache

enable_compilation_cache()


@pytest.fixture
def prepared_tfds(tmp_path, monkeypatch):
    """A TFDS data dir whose dataset folders exist, for tests that mock the prepared copies with
    tfds.testing.mock_data (vae_jax asks TFDS only where such a folder exists)."""
    data_dir = tmp_path / "tensorflow_datasets"
    for name in ("mnist", "cifar10", "celeb_a"):
        (data_dir / name).mkdir(parents=True)
    monkeypatch.setenv("TFDS_DATA_DIR", str(data_dir))
    return data_dir
