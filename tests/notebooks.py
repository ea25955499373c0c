"""Notebooks executed by the tests: run one with nbclient in its own process, read what it printed."""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat

EXECUTE = """
import sys, nbformat
from nbclient import NotebookClient

nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[3])
"""


def execute(notebook: str, folder: str, out: str, env: dict) -> nbformat.NotebookNode:
    """Run `notebook` top to bottom in `folder` (its kernel's working directory) with `env`, in a
    process of its own; write the executed copy to `out` and return it. Fails the test on an error."""
    command = [sys.executable, "-c", EXECUTE, notebook, folder, out]
    proc = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return nbformat.read(out, as_version=4)


def outputs(nb: nbformat.NotebookNode) -> tuple[str, int]:
    """All the text a notebook's code cells printed, and how many images they showed."""
    cells = [c for c in nb.cells if c.cell_type == "code"]
    text = "\n".join(o.get("text", "") for c in cells for o in c.outputs)
    images = sum("image/png" in o.get("data", {}) for c in cells for o in c.outputs)
    return text, images
