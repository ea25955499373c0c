"""The tutorial notebook (docs/tutorial.ipynb, also notebooks/tutorial.ipynb) runs top to bottom, and
the copy the docs render holds a whole run of it."""

import os
import subprocess
import sys

import nbformat
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "docs", "tutorial.ipynb")
EXECUTE = """
import sys, nbformat
from nbclient import NotebookClient

nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[3])
"""


def outputs(nb) -> tuple[str, int]:
    """All the text a notebook's code cells printed, and how many images they showed."""
    cells = [c for c in nb.cells if c.cell_type == "code"]
    text = "\n".join(o.get("text", "") for c in cells for o in c.outputs)
    images = sum("image/png" in o.get("data", {}) for c in cells for o in c.outputs)
    return text, images


def check(nb) -> str:
    text, images = outputs(nb)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert "def reparameterize" in text and "def kl_standard_normal" in text  # the package's own source
    assert "closed form" in text and "Monte Carlo" in text
    assert "k =     1: NLL" in text and "-log p(x | y)" in text
    assert "explorer: http://127.0.0.1:" in text and "explorer: stopped | exit code 0" in text
    assert images >= 4  # curves, samples, log p(x) against k, the conditional samples
    return text


def test_the_rendered_tutorial_holds_a_whole_run_in_order():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))  # top to bottom, once
    assert all(c.outputs for c in code[1:])
    text = check(nb)
    assert "epochs 30 | importance samples 1000" in text  # the real settings, not the test's
    assert os.path.realpath(os.path.join(ROOT, "notebooks", "tutorial.ipynb")) == NOTEBOOK


@pytest.mark.slow
def test_the_tutorial_runs_top_to_bottom(tmp_path):
    out = tmp_path / "executed.ipynb"
    env = {**os.environ, "VAE_JAX_SMOKE": "1", "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-c", EXECUTE, NOTEBOOK, str(tmp_path), str(out)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check(nbformat.read(str(out), as_version=4))
    assert os.path.exists(tmp_path / "runs" / "tutorial" / "samples.png")
    assert os.path.exists(tmp_path / "runs" / "tutorial-cvae" / "config.json")
