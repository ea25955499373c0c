"""The commands and Python blocks of the README and the docs run as written, one after another, in a
fresh folder, as a reader who follows them in order would run them.

Every ```bash line and ```python block of README.md, then of each docs page in the order of the
site's contents, runs in order, with $VAE_JAX_SMOKE=1 (each
command at its smallest settings: one epoch on the first 1,024 training images; see smoke.py).
Not run: the set-up (`pip install ...`: this environment is its result), the suite itself
(`python -m pytest`), the benchmarks (minutes to hours each: run by hand), TensorBoard, the docs
build (tests/test_docs.py builds the site), MLflow's server and UI and `wandb sync` (tests/test_tracking.py
runs a server; an upload needs the internet). The files
the examples name as the reader's own (`path/to/my_images`, `more_pictures/`, `my_faces.npz`) are
made here, and CIFAR-10, which cannot be downloaded offline, is a small stand-in archive placed
in the download cache with a checksum list of its own.
"""

import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow  # run by the full suite only (see docs/development.md, Tests)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOT_RUN = ("pip install", "python -m pytest", "benchmarks/", "tensorboard", "python -m sphinx")
NOT_RUN += ("mlflow ui", "mlflow server", "MLFLOW_TRACKING_URI=http", "wandb sync")  # servers; an upload
COMMANDS = ("train.py", "sample.py", "evaluate.py", "encode.py", "explore.py")


def pages() -> list[str]:
    """README.md, then the docs pages (Markdown) in the order of the site's tables of contents."""
    with open(os.path.join(ROOT, "docs", "index.md"), encoding="utf-8") as f:
        names = re.findall(r"^([a-z][\w-]*)$", f.read(), re.M)
    docs = [os.path.join("docs", f"{name}.md") for name in names]
    return ["README.md"] + [page for page in docs if os.path.exists(os.path.join(ROOT, page))]


def blocks(page: str) -> list[tuple[str, str]]:
    """(language, text) of every fenced block of a page, in order (a directive's fence is '{name}')."""
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        found = re.findall(r"^```([^\n]*)\n(.*?)^```[ \t]*$", f.read(), re.S | re.M)
    return [(info.split(" ")[0], text) for info, text in found]


def _pngs(folder, n: int, side: int, rgb: bool = False, classes: int = 1) -> None:
    rng = np.random.default_rng(n)
    for i in range(n):
        sub = os.path.join(folder, f"class{i % classes}") if classes > 1 else folder
        os.makedirs(sub, exist_ok=True)
        shape = (side, side, 3) if rgb else (side, side)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(os.path.join(sub, f"{i}.png"))


def _cifar_standin(cache) -> str:
    """A small CIFAR-10 binary archive in the download cache, and a checksum list naming it."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            records = rng.integers(0, 256, (60, 3073)).astype(np.uint8)
            records[:, 0] %= 10
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = records.nbytes
            tar.addfile(info, io.BytesIO(records.tobytes()))
    body = buffer.getvalue()
    os.makedirs(os.path.join(cache, "cifar10"))
    with open(os.path.join(cache, "cifar10", "cifar-10-binary.tar.gz"), "wb") as f:
        f.write(body)
    listing = os.path.join(cache, "checksums.tsv")
    with open(listing, "w") as f:
        f.write(f"https://example.org/cifar-10-binary.tar.gz\t{len(body)}\t{hashlib.sha256(body).hexdigest()}\n")
    return listing


def _run(command: str, cwd, env: dict) -> None:
    proc = subprocess.run(["bash", "-e", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"README command failed: {command}\n{proc.stderr[-3000:]}"


def test_every_command_and_python_block_of_the_readme_runs_as_written(tmp_path):
    for name in COMMANDS:
        shutil.copy(os.path.join(ROOT, name), tmp_path)
    _pngs(tmp_path / "path" / "to" / "my_images", 160, 28, classes=2)
    _pngs(tmp_path / "more_pictures", 3, 40, rgb=True)
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "my_faces.npz", images=rng.integers(0, 256, (300, 16, 16, 3), dtype=np.uint8))
    env = {**os.environ, "VAE_JAX_SMOKE": "1", "PYTHONPATH": ""}
    cifar_env = {**env, "VAE_JAX_DATA_DIR": str(tmp_path / "cache")}
    cifar_env["VAE_JAX_DATA_CHECKSUMS"] = _cifar_standin(tmp_path / "cache")
    ran = 0
    for language, text in (block for page in pages() for block in blocks(page)):
        if language == "python":
            proc = subprocess.run([sys.executable, "-c", text], cwd=tmp_path, env=env, capture_output=True, text=True)
            assert proc.returncode == 0, f"README Python block failed:\n{text}\n{proc.stderr[-3000:]}"
            ran += 1
        if language != "bash":
            continue
        lines = [line for line in text.splitlines() if line.strip() and not any(part in line for part in NOT_RUN)]
        if any(line.rstrip().endswith("&") for line in lines):  # processes that run together: one script
            _run("\n".join(lines), tmp_path, env)
            ran += len(lines)
            continue
        for line in lines:
            _run(line, tmp_path, cifar_env if "cifar10" in line else env)
            ran += 1
    assert ran >= 25  # the blocks were found and run
