"""The Colab notebook runs top to bottom on 8 emulated CPU devices with a tiny config."""

import os

import pytest

import notebooks

pytestmark = pytest.mark.slow  # run by the full suite only (see docs/development.md, Tests)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_colab_notebook_executes_on_eight_cpu_devices(tmp_path):
    env = {
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
        "VAE_JAX_NOTEBOOK_SMOKE": "1",
        "VAE_JAX_NOTEBOOK_WORKDIR": str(tmp_path / "run"),
    }
    notebook = os.path.join(ROOT, "notebooks", "colab_tpu.ipynb")
    nb = notebooks.execute(notebook, os.path.join(ROOT, "notebooks"), str(tmp_path / "executed.ipynb"), env)
    text, images = notebooks.outputs(nb)
    assert "8 devices" in text
    assert "training on 8 device(s)" in text and "test NLL" in text
    assert images >= 4  # the sample grid and the three pictures of the run
    assert os.path.exists(tmp_path / "run" / "samples.png")
