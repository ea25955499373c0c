"""Training on a folder of one's own images: modes, sizes, classes, layouts, bad files, real photos."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from test_cli import assert_one_line_error, run

from vae_jax import data
from vae_jax.config import Config
from vae_jax.data import model_inputs
from vae_jax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args) -> subprocess.CompletedProcess:
    """A command of the project run from the repository, with up to 10 minutes to finish."""
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def _save(path, array, mode=None, **kwargs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(array)
    (image.convert(mode) if mode else image).save(path, **kwargs)


def _mixed_folder(root, size=(16, 16)):
    """Two classes in every mode a user may have: grey, RGB, palette, RGBA, LA, 1-bit, JPEG; plus
    two files that are not images."""
    rng = np.random.default_rng(0)
    rgb = lambda: rng.integers(0, 256, (*size, 3)).astype(np.uint8)  # noqa: E731
    for cls in ("cats", "dogs"):
        _save(root / cls / "grey.png", rgb()[..., 0])
        _save(root / cls / "colour.png", rgb())
        _save(root / cls / "palette.png", rgb(), mode="P")
        _save(root / cls / "alpha.png", np.dstack([rgb(), np.full(size, 128, np.uint8)]))
        _save(root / cls / "grey_alpha.png", np.dstack([rgb()[..., 0], np.full(size, 255, np.uint8)]))
        _save(root / cls / "bits.png", rgb()[..., 0], mode="1")
        _save(root / cls / "photo.JPG", rgb(), format="JPEG")
    (root / "cats" / "notes.png").write_text("not an image")
    (root / "dogs" / "cut.jpg").write_bytes((root / "dogs" / "photo.JPG").read_bytes()[:100])


def test_a_folder_of_mixed_modes_gives_rgb_arrays_class_labels_and_a_warning_for_bad_files(tmp_path, caplog):
    _mixed_folder(tmp_path / "pets")
    with caplog.at_level("WARNING"):
        ds = data.load(str(tmp_path / "pets"))
    assert "skipped 2 file(s)" in caplog.text and "notes.png" in caplog.text and "cut.jpg" in caplog.text
    n = len(ds.train_images) + len(ds.test_images)
    assert n == 14 and len(ds.test_images) == 1  # 10% of 14, rounded
    assert ds.image_shape == (16, 16, 3) and ds.train_images.dtype == np.uint8
    assert sorted(set(ds.train_labels.tolist()) | set(ds.test_labels.tolist())) == [0, 1]
    assert "2 class(es): cats, dogs" in ds.source
    # the transparent image was put onto white: 50% alpha lifts every pixel to at least ~127
    alpha = data.images.to_array(
        [np.asarray(data.images.open_image(str(tmp_path / "pets" / "cats" / "alpha.png")))], 0, ""
    )
    assert alpha.min() >= 127


def test_grey_folders_stay_one_channel_and_sizes_that_differ_are_unified(tmp_path, caplog):
    rng = np.random.default_rng(1)
    for i, shape in enumerate([(12, 16), (20, 20), (16, 16), (16, 24), (16, 16)]):
        _save(tmp_path / "g" / f"{i}.png", rng.integers(0, 256, shape).astype(np.uint8))
    with caplog.at_level("WARNING"):
        ds = data.load(str(tmp_path / "g"))
    assert ds.image_shape == (16, 16, 1)  # the most common shorter side
    assert "5 sizes" not in caplog.text and "4 sizes (12x16 to 20x20)" in caplog.text
    assert data.load(str(tmp_path / "g"), image_size=8).image_shape == (8, 8, 1)


def test_train_and_test_folders_are_used_as_given_and_the_seed_picks_the_held_out_images(tmp_path):
    rng = np.random.default_rng(2)
    for split, n in (("train", 7), ("test", 3)):
        for i in range(n):
            _save(
                tmp_path / "tt" / split / ("a" if i % 2 else "b") / f"{i}.png", rng.integers(0, 256, (8, 8), np.uint8)
            )
    ds = data.load(str(tmp_path / "tt"))
    assert (len(ds.train_images), len(ds.test_images)) == (7, 3) and "train/ and test/" in ds.source
    for i in range(30):
        _save(tmp_path / "flat" / f"{i:02d}.png", np.full((4, 4), i * 8, np.uint8))
    test_of = lambda seed: sorted(data.load(str(tmp_path / "flat"), seed=seed).test_images[:, 0, 0, 0])  # noqa: E731
    assert test_of(0) == test_of(0) != test_of(1) and len(test_of(0)) == 3


@pytest.mark.parametrize("content", ["empty", "only text"])
def test_a_folder_without_a_usable_image_is_a_one_line_error(tmp_path, content):
    folder = tmp_path / "none"
    folder.mkdir()
    if content == "only text":
        (folder / "a.png").write_text("x")
        (folder / "b.jpg").write_text("y")
    with pytest.raises(UserError, match="no usable training image"):
        data.load(str(folder))
    code, _, err = run("train.py", "--dataset", str(folder), "--workdir", str(tmp_path / "w"))
    assert_one_line_error(code, err, "no usable training image")


def test_the_flags_accept_a_folder_and_check_the_size(tmp_path):
    assert Config(dataset=str(tmp_path), image_size=32).image_size == 32
    with pytest.raises(UserError, match="--image-size must be >= 0"):
        Config(dataset=str(tmp_path), image_size=-1)
    with pytest.raises(UserError, match="nor a folder"):
        Config(dataset="no_such_name")


@pytest.mark.slow
def test_real_photographs_train_sample_and_evaluate_from_the_cli(tmp_path):
    """32x32 patches cut from the two photographs scikit-learn ships, one class per photograph."""
    from sklearn.datasets import load_sample_images

    for name, photo in zip(("china", "flower"), load_sample_images().images):
        for i, (y, x) in enumerate((y, x) for y in range(0, 390, 39) for x in range(0, 600, 60)):
            _save(tmp_path / "photos" / name / f"{i:03d}.jpg", photo[y : y + 32, x : x + 32], quality=95)
    folder, workdir = str(tmp_path / "photos"), str(tmp_path / "run")
    proc = _cli(
        "train.py",
        "--dataset",
        folder,
        "--epochs",
        "1",
        "--hidden",
        "64",
        "--latent-dim",
        "4",
        "--batch-size",
        "32",
        "--eval-k",
        "2",
        "--workdir",
        workdir,
    )
    assert proc.returncode == 0, proc.stderr
    assert "data: photos from image folder" in proc.stderr and "(train 180, test 20, 32x32x3)" in proc.stderr
    for args in (
        ["sample.py", "--ckpt", workdir],
        ["sample.py", "--ckpt", workdir, "--mode", "reconstructions"],
        ["evaluate.py", "--ckpt", workdir, "--k", "5"],
    ):
        proc = _cli(*args)
        assert proc.returncode == 0, proc.stderr
    assert "NLL" in proc.stdout and "20 images 32x32x3, from image folder" in proc.stdout


def test_a_folder_named_like_a_dataset_does_not_replace_it(tmp_path, monkeypatch):
    for name in "abc":
        _save(tmp_path / "mnist" / f"{name}.png", np.zeros((4, 4), np.uint8))
    monkeypatch.chdir(tmp_path)
    assert not data.load("mnist").source.startswith("image folder")
    assert data.load("./mnist").source.startswith("image folder")


@pytest.mark.slow
def test_your_images_go_through_a_trained_model_from_the_cli(tmp_path):
    """A model trained on 8x8 grey images; the user's images are RGB, larger and not square."""
    rng = np.random.default_rng(3)
    for i in range(40):
        _save(tmp_path / "train" / f"{i}.png", rng.integers(0, 256, (8, 8), np.uint8))
    for i in range(3):
        _save(tmp_path / "mine" / f"p{i}.jpg", rng.integers(0, 256, (20, 30, 3), np.uint8))
    workdir = str(tmp_path / "run")
    proc = _cli(
        "train.py",
        "--dataset",
        str(tmp_path / "train"),
        "--epochs",
        "1",
        "--hidden",
        "16",
        "--latent-dim",
        "3",
        "--batch-size",
        "12",
        "--eval-k",
        "1",
        "--workdir",
        workdir,
    )
    assert proc.returncode == 0, proc.stderr
    mine = str(tmp_path / "mine")
    proc = _cli(
        "sample.py", "--ckpt", workdir, "--mode", "reconstructions", "--images", mine, "--out", str(tmp_path / "r.png")
    )
    assert proc.returncode == 0, proc.stderr
    assert "3 of 3 image(s) are not 8x8 like the model's" in proc.stderr and (tmp_path / "r.png").exists()
    proc = _cli("encode.py", "--ckpt", workdir, "--images", mine, "--out", str(tmp_path / "z.npz"))
    assert proc.returncode == 0, proc.stderr
    with np.load(tmp_path / "z.npz") as z:
        assert z["mean"].shape == z["log_var"].shape == (3, 3) and list(z["files"]) == ["p0.jpg", "p1.jpg", "p2.jpg"]
    proc = _cli("encode.py", "--ckpt", workdir, "--images", mine, "--out", str(tmp_path / "z.npz"))
    assert proc.returncode == 2 and "exists" in proc.stderr.strip().splitlines()[-1]  # nothing is overwritten
    proc = _cli("evaluate.py", "--ckpt", workdir, "--images", os.path.join(mine, "p1.jpg"), "--k", "4")
    assert proc.returncode == 0, proc.stderr
    assert "your images, 1 images 8x8x1" in proc.stdout and os.path.exists(os.path.join(workdir, "eval_images.json"))
    for args, message in (
        (["sample.py", "--ckpt", workdir, "--images", mine], "--images goes with --mode reconstructions"),
        (["encode.py", "--ckpt", workdir, "--images", str(tmp_path / "nope")], "no such file or folder"),
        (["encode.py", "--ckpt", workdir, "--images", mine, "--label", "1"], "needs a conditional"),
    ):
        proc = _cli(*args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and message in proc.stderr, proc.stderr


def test_fit_crops_to_the_target_aspect_then_resizes():
    image = np.zeros((20, 40, 1), np.uint8)
    image[:, 10:30] = 200  # the central 20x20 square
    np.testing.assert_array_equal(model_inputs.fit(image, 10, 10), np.full((10, 10, 1), 200, np.uint8))
    assert model_inputs.fit(image, 10, 20).shape == (10, 20, 1)


def test_a_folder_of_one_image_says_what_training_needs(tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    Image.new("L", (8, 8), 255).save(folder / "a.png")
    with pytest.raises(UserError, match=r"no usable test image .*found 1 readable.*or make train/ and test/ folders"):
        data.load(str(folder))
