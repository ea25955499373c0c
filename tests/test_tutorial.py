"""The tutorial notebook (docs/tutorial.ipynb, also notebooks/tutorial.ipynb) runs top to bottom, and
the copy the docs render holds a whole run of it."""

import os

import nbformat
import pytest

import notebooks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "docs", "tutorial.ipynb")


def check(nb) -> str:
    text, images = notebooks.outputs(nb)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert "def reparameterize" in text and "def kl_standard_normal" in text  # the package's own source
    assert "closed form" in text and "Monte Carlo" in text
    assert "k =     1: NLL" in text and "-log p(x | y)" in text
    assert "explorer: http://127.0.0.1:" in text and "explorer: stopped | exit code 0" in text
    # the learning path's checks, each a number the notebook computed
    assert "the score function needs" in text and "bits: the cost of sending z" in text
    assert "sum of log N(x; f(z), sigma^2)" in text
    assert "autoencoder: mean square of the test codes per unit" in text
    assert "beta = 784: active units" in text and "with the KL's sign flipped" in text
    assert images >= 5  # curves, samples, the VAE's and the autoencoder's prior draws, log p(x) against k, CVAE
    return text


def test_the_rendered_tutorial_holds_a_whole_run_in_order():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))  # top to bottom, once
    assert all(c.outputs for c in code[1:])
    text = check(nb)
    assert "epochs 30 | importance samples 1000" in text  # the real settings, not the test's
    # outputs in the order they happened: the runs' logs on stdout with the prints, the result after its run
    streams = [o for c in code for o in c.outputs if o.output_type == "stream"]
    assert streams and all(o.name == "stdout" for o in streams)
    cell = next(c for c in code if any("-log p(x | y) =" in getattr(o, "text", "") for o in c.outputs))
    printed = "".join(o.text for o in cell.outputs if o.output_type == "stream")
    assert printed.index("epoch 30/30") < printed.index("-log p(x | y) =")
    assert os.path.realpath(os.path.join(ROOT, "notebooks", "tutorial.ipynb")) == NOTEBOOK


@pytest.mark.slow
def test_the_tutorial_runs_top_to_bottom(tmp_path):
    env = {"VAE_JAX_SMOKE": "1", "JAX_PLATFORMS": "cpu"}
    check(notebooks.execute(NOTEBOOK, str(tmp_path), str(tmp_path / "executed.ipynb"), env))
    assert os.path.exists(tmp_path / "runs" / "tutorial" / "samples.png")
    assert os.path.exists(tmp_path / "runs" / "tutorial-cvae" / "config.json")
