"""What benchmarks/faults.py's probes share: running a tool and judging what it printed, and the
damaged, odd or served data they give it."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import jax
import numpy as np
from PIL import Image

from vae_jax import api, checkpoint, objectives, training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOISE = ("Traceback", "Exception ignored")


@dataclass
class Probe:
    """What a tool did (exit code and stderr) and whether that was what it promises."""

    rc: int | None
    stderr: str
    ok: bool | None = None
    note: str = ""

    @property
    def lines(self) -> int:
        return len([line for line in self.stderr.splitlines() if line.strip()])

    @property
    def tracebacks(self) -> int:
        return sum(self.stderr.count(noise) for noise in NOISE)

    def expect(
        self, rc: int, check: bool = True, contains: str = "", last: bool = True, max_lines: int = 0, note: str = ""
    ) -> Probe:
        """Judge: exit code `rc`, no traceback, `contains` in the last line (or anywhere), `check`."""
        lines = self.stderr.strip().splitlines() or [""]
        found = contains in (lines[-1] if last else self.stderr)
        self.ok = (
            self.rc == rc and check and self.tracebacks == 0 and found and (not max_lines or self.lines <= max_lines)
        )
        self.note = note or (lines[-1][:110] if self.rc else "")
        return self

    def raise_unless_ok(self) -> None:
        if not self.ok:
            raise SystemExit(self.stderr[-3000:])

    def row(self) -> str:
        verdict = {True: "yes", False: "NO", None: "skipped"}[self.ok]
        return f"{self.rc} | {self.lines} | {self.tracebacks} | {verdict} | {self.note.replace('|', '/')}"

    @classmethod
    def of(cls, running: Running) -> Probe:
        return cls(running.wait(), running.text())

    @classmethod
    def skipped(cls, why: str) -> Probe:
        return cls(None, "", None, why)


class Running:
    """A tool running in the background; its stderr is collected as it comes."""

    def __init__(self, args: list, env: dict | None, timeout: float):
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        self.deadline, self.collected = time.time() + timeout, []
        self.reader = threading.Thread(target=lambda: self.collected.extend(self.proc.stderr), daemon=True)
        self.reader.start()

    def text(self) -> str:
        return "".join(self.collected)

    def wait_for(self, text: str, timeout: float = 300) -> None:
        end = time.time() + timeout
        while text not in self.text() and self.proc.poll() is None and time.time() < end:
            time.sleep(0.05)

    def terminate(self) -> None:
        self.proc.terminate()

    def wait(self) -> int | None:
        try:
            rc = self.proc.wait(max(1.0, self.deadline - time.time()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = None  # a hang
        self.reader.join(10)
        return rc


def run(*args, env: dict | None = None, wait: bool = True, timeout: float = 900) -> Probe | Running:
    """Run `python *args` in the repository (bytes arguments pass as they are)."""
    running = Running(list(args), None if env is None else {**os.environ, **env}, timeout)
    return Probe.of(running) if wait else running


def steps_in(workdir: str) -> list[int]:
    return sorted(int(e) for e in os.listdir(workdir) if e.isdigit()) if os.path.isdir(workdir) else []


def mount_tmpfs(path: str, megabytes: int) -> bool:
    os.makedirs(path, exist_ok=True)
    args = ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", path]
    return subprocess.run(args, capture_output=True).returncode == 0


def _item(workdir: str, step: int, item: str):
    """The train state (item "state") or the parameters samplers read ("sampling_params") of `step`."""
    meta = checkpoint.read_meta(checkpoint.reader(workdir), step)
    vae = api.model_of(meta)
    like = training.init_state(vae, api.make_optimizer(meta.config), objectives.of(meta.config), jax.random.key(0))
    like = like if item == "state" else like.params
    return checkpoint.restore_state(checkpoint.reader(workdir), step, like, item)


def flip_newest(workdir: str, item: str = "state") -> int:
    """XOR 64 bytes of the largest file of `item` (what training resumes from, or what readers
    read: "sampling_params") in the newest step where Orbax still reads it back, with other values
    (found by trying offsets); returns the step."""
    step = steps_in(workdir)[-1]
    files = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(workdir, str(step), item)) for f in fs]
    path = max(files, key=os.path.getsize)
    original, before = open(path, "rb").read(), _item(workdir, step, item)
    for offset in range(len(original) // 2, len(original) - 64, 4099):
        flipped = bytearray(original)
        flipped[offset : offset + 64] = bytes(b ^ 0xFF for b in flipped[offset : offset + 64])
        open(path, "wb").write(bytes(flipped))
        try:
            after = _item(workdir, step, item)
        except Exception:
            continue
        if any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(before))):
            return step
    raise SystemExit(f"no flip of {path} left step {step} readable")


def write_png_folder(path: str, n: int, side: int, single: bool = False) -> str:
    """n random grey side x side PNGs in two class folders a/ and b/ (kept if there), or with
    `single` one image file at `path` (its format from its name)."""
    rng = np.random.default_rng(n)
    if single:
        Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(path)
        return path
    if sum(len(f) for _, _, f in os.walk(path)) != n:
        for c in "ab":
            os.makedirs(os.path.join(path, c), exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (side, side), dtype=np.uint8)
            Image.fromarray(pixels).save(os.path.join(path, "ab"[i % 2], f"{i}.png"))
    return path


def _idx_gz(array: np.ndarray) -> bytes:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), compresslevel=1)


@contextlib.contextmanager
def http_mirror(tmp: str, short: str) -> Iterator[dict[str, str]]:
    """A local mirror of MNIST-like IDX files whose file `short` is a tenth of what its checksum
    list says; yields the environment that points train.py at it (and at an empty cache)."""
    served = os.path.join(tmp, "mirror-files")
    os.makedirs(served, exist_ok=True)
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte.gz": _idx_gz(rng.integers(0, 256, (3000, 28, 28))),
        "train-labels-idx1-ubyte.gz": _idx_gz(np.arange(3000) % 10),
        "t10k-images-idx3-ubyte.gz": _idx_gz(rng.integers(0, 256, (500, 28, 28))),
        "t10k-labels-idx1-ubyte.gz": _idx_gz(np.arange(500) % 10),
    }
    listing = os.path.join(tmp, "checksums.tsv")
    with open(listing, "w") as f:
        for name, body in files.items():
            f.write(f"https://example.org/{name}\t{len(body)}\t{hashlib.sha256(body).hexdigest()}\t{name}\n")
            open(os.path.join(served, name), "wb").write(body[: len(body) // 10] if name == short else body)
    handler = partial(SimpleHTTPRequestHandler, directory=served)
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cache = os.path.join(tmp, "mirror-cache")
    subprocess.run(["rm", "-rf", cache], check=False)
    try:
        yield {
            "VAE_JAX_DATA_MIRROR": f"http://127.0.0.1:{server.server_address[1]}/",
            "VAE_JAX_DATA_CHECKSUMS": listing,
            "VAE_JAX_DATA_DIR": cache,
        }
    finally:
        server.shutdown()
