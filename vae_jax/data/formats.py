"""Dataset files -> numpy arrays, with no TensorFlow: IDX (MNIST-family, optionally gzipped), the
binary version of CIFAR-10 (fixed-size records, never the pickled one) and the .amat text files
of binarized MNIST. A file that cannot be read is a UserError naming it."""

from __future__ import annotations

import gzip
import os
import struct
import tarfile

import numpy as np

from vae_jax.errors import UserError

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CIFAR_SIDE, CIFAR_RECORD = 32, 1 + 3 * 32 * 32  # one label byte, then the R, G and B planes, row-major
AMAT_SIDE = 28


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (optionally gzipped) of unsigned bytes."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
        if zero != 0 or dtype != 0x08:
            raise ValueError("not an unsigned-byte IDX file")
        shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
        return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)
    except (OSError, EOFError, ValueError, struct.error, gzip.BadGzipFile) as e:
        raise UserError(f"{path}: cannot read as IDX ({e})") from None


def read_idx_dir(folder: str) -> dict[str, np.ndarray] | None:
    """The four IDX files (IDX_FILES, each optionally .gz) in `folder` as arrays, or None if any is
    missing: train_images (N, H, W), train_labels (N,), test_images, test_labels."""
    paths = {}
    for key, stem in IDX_FILES.items():
        found = [p for p in (os.path.join(folder, stem), os.path.join(folder, stem + ".gz")) if os.path.isfile(p)]
        if not found:
            return None
        paths[key] = found[0]
    return {key: read_idx(p) for key, p in paths.items()}


def read_cifar_binary(path: str) -> dict[str, np.ndarray]:
    """CIFAR-10's binary version (cifar-10-binary.tar.gz): the records of data_batch_1..5.bin and
    test_batch.bin -> train_images (N, 32, 32, 3) uint8, train_labels (N,), test_images, test_labels."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            batches = {os.path.basename(m.name): m for m in tar.getmembers() if m.name.endswith(".bin")}
            train = sorted(n for n in batches if n.startswith("data_batch_"))
            if not train or "test_batch.bin" not in batches:
                raise ValueError(f"no data_batch_*.bin and test_batch.bin inside (found: {', '.join(batches)})")
            splits = {
                "train": [tar.extractfile(batches[n]).read() for n in train],
                "test": [tar.extractfile(batches["test_batch.bin"]).read()],
            }
    except (OSError, EOFError, ValueError, tarfile.TarError) as e:
        raise UserError(f"{path}: cannot read as CIFAR-10 binary ({e})") from None
    arrays = {}
    for split, parts in splits.items():
        raw = np.frombuffer(b"".join(parts), np.uint8)
        if raw.size % CIFAR_RECORD:
            raise UserError(f"{path}: {split} records are not a whole number of {CIFAR_RECORD}-byte records")
        records = raw.reshape(-1, CIFAR_RECORD)
        planes = records[:, 1:].reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE)
        arrays[f"{split}_images"] = np.ascontiguousarray(planes.transpose(0, 2, 3, 1))
        arrays[f"{split}_labels"] = records[:, 0].astype(np.int32)
    return arrays


def read_amat(path: str) -> np.ndarray:
    """A binarized-MNIST .amat file (one image a line: 784 numbers 0 or 1 separated by spaces) ->
    (N, 28, 28) uint8 in {0, 255}."""
    try:
        with open(path, "rb") as f:
            raw = np.frombuffer(f.read(), np.uint8)
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    other = np.setdiff1d(np.unique(raw), np.frombuffer(b"01 \t\r\n", np.uint8))
    digits = raw[(raw == ord("0")) | (raw == ord("1"))]
    pixels = AMAT_SIDE * AMAT_SIDE
    if other.size or digits.size == 0 or digits.size % pixels:
        raise UserError(f"{path}: expected lines of {pixels} zeros and ones separated by spaces")
    return ((digits - ord("0")) * 255).astype(np.uint8).reshape(-1, AMAT_SIDE, AMAT_SIDE)
