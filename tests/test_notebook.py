"""The Colab notebook runs top to bottom on 8 emulated CPU devices with a tiny config."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # run by the full suite only (see docs/development.md, Tests)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

EXECUTE = """
import sys, nbformat
from nbclient import NotebookClient

nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[3])
"""


def test_colab_notebook_executes_on_eight_cpu_devices(tmp_path):
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
        "VAE_JAX_NOTEBOOK_SMOKE": "1",
        "VAE_JAX_NOTEBOOK_WORKDIR": str(tmp_path / "run"),
    }
    out = tmp_path / "executed.ipynb"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            EXECUTE,
            os.path.join(ROOT, "notebooks", "colab_tpu.ipynb"),
            os.path.join(ROOT, "notebooks"),
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    import nbformat

    cells = [c for c in nbformat.read(str(out), as_version=4).cells if c.cell_type == "code"]
    text = "\n".join(o.get("text", "") for c in cells for o in c.outputs)
    assert "8 devices" in text
    assert "training on 8 device(s)" in text and "test NLL" in text
    images = [o for c in cells for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # the sample grid and the three pictures of the run
    assert os.path.exists(tmp_path / "run" / "samples.png")
