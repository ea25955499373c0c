"""The generated dSprites grid (vae_jax.data.dsprites): every factor combination once, the same
images on every machine, and shapes that are what they are called."""

import tracemalloc

import numpy as np
import pytest

from vae_jax import data, disentanglement
from vae_jax.data import dsprites, sources
from vae_jax.data.stream import Stream
from vae_jax.errors import UserError

# the sha256 of the 720 sprites every image is placed from: a change of any image changes it
SPRITES_SHA256 = "353e134048111882945a24d229b775a6ed167781b30e43351d5b4bd81a34ffb4"


def test_every_combination_once_and_each_value_equally_often():
    factors = dsprites.factors_of(np.arange(dsprites.TOTAL))
    assert dsprites.TOTAL == 737_280 and len(np.unique(factors, axis=0)) == dsprites.TOTAL
    for j, size in enumerate(dsprites.SIZES):
        np.testing.assert_array_equal(np.bincount(factors[:, j]), np.full(size, dsprites.TOTAL // size))
    np.testing.assert_array_equal(dsprites.index_of(factors[::997]), np.arange(dsprites.TOTAL)[::997])
    assert tuple(factors[1]) == (0, 0, 0, 0, 1) and tuple(factors[-1]) == (2, 5, 39, 31, 31)  # position_y fastest


def test_the_images_are_the_same_on_every_run_and_machine():
    assert dsprites.digest() == SPRITES_SHA256


def test_positions_move_a_shape_by_whole_pixels_and_it_stays_inside_the_frame():
    table = dsprites.sprites()
    assert not table[..., 0, :].any() and not table[..., -1, :].any()  # no sprite is cut by its box
    assert not table[..., :, 0].any() and not table[..., :, -1].any()
    at_origin = dsprites.render([[2, 5, 7, 0, 0]])[0]
    moved = dsprites.render([[2, 5, 7, 31, 12]])[0]
    np.testing.assert_array_equal(np.roll(at_origin, (12, 31), axis=(0, 1)), moved)
    assert set(np.unique(moved)) == {0, 1}


def test_a_square_is_a_square_and_turns_into_itself_a_quarter_turn_on():
    square = dsprites.sprites()[0, 5, 0]
    rows, cols = np.nonzero(square)
    assert square.sum() == (np.ptp(rows) + 1) * (np.ptp(cols) + 1) == 19 * 19  # a full box: half-side 9.05 px
    np.testing.assert_array_equal(dsprites.sprites()[0, :, 10], dsprites.sprites()[0, :, 0])  # pi / 2


def test_an_ellipse_lies_along_its_orientation():
    ellipse = dsprites.sprites()[1, 5]
    rows, cols = np.nonzero(ellipse[0])
    assert np.ptp(cols) > 1.8 * np.ptp(rows)  # long axis horizontal at orientation 0
    np.testing.assert_array_equal(ellipse[10], ellipse[0].T)  # a quarter turn: vertical


def test_a_heart_is_a_heart():
    heart = dsprites.sprites()[2, 5, 0]
    np.testing.assert_array_equal(heart, heart[:, ::-1])  # symmetric left to right
    rows = np.flatnonzero(heart.any(1))
    top, bottom, middle = rows[0], rows[-1], dsprites.SPRITE // 2
    assert heart[top + 1, middle] == 0 and heart[top + 1].sum() > 0  # two lobes with a notch between them
    assert heart[bottom].sum() <= 3 and heart[middle - 2].sum() > 15  # a point at the bottom, wide above
    np.testing.assert_array_equal(dsprites.sprites()[2, 5, 20], heart[::-1])  # a half turn: upside down


def test_larger_scales_cover_more_pixels():
    areas = dsprites.sprites().sum(axis=(-2, -1))  # (shape, scale, orientation)
    assert (np.diff(areas, axis=1) > 0).all()


def test_factor_indices_out_of_range_are_refused():
    with pytest.raises(ValueError, match="0..\\(2, 5, 39, 31, 31\\)"):
        dsprites.render([[3, 0, 0, 0, 0]])


def test_the_ground_truth_draws_each_factor_uniformly_and_renders_its_images():
    truth = dsprites.DSprites()
    factors = truth.sample_factors(30_000, np.random.default_rng(0))
    for j, size in enumerate(dsprites.SIZES):
        counts = np.bincount(factors[:, j], minlength=size)
        assert len(counts) == size and counts.min() > 0.8 * len(factors) / size
    images = truth.observations(factors[:4])
    assert images.shape == (4, 64, 64, 1) and set(np.unique(images)) <= {0, 255}
    np.testing.assert_array_equal(images[..., 0] // 255, dsprites.render(factors[:4]))
    assert isinstance(truth, disentanglement.Factors) and truth.num_factors == 5


def test_the_held_out_split_is_drawn_once_apart_from_training_and_the_same_every_time():
    train, test = dsprites.split()
    assert len(test) == dsprites.TEST_SIZE and len(train) + len(test) == dsprites.TOTAL
    assert not np.intersect1d(train, test).size
    np.testing.assert_array_equal(dsprites.split()[1], test)
    per_shape = np.bincount(dsprites.factors_of(test)[:, 0])  # uniform over the grid: each shape about a third
    assert np.all(np.abs(per_shape - dsprites.TEST_SIZE / 3) < 4 * np.sqrt(dsprites.TEST_SIZE * 2 / 9))


def test_the_dataset_renders_its_training_images_when_read_with_their_factors_beside_them():
    d = data.load("dsprites")
    assert (d.name, d.image_shape, d.num_classes) == ("dsprites", (64, 64, 1), 1)
    grid = d.train_images
    assert isinstance(grid, dsprites.Grid) and grid.shape == (dsprites.TOTAL - dsprites.TEST_SIZE, 64, 64, 1)
    assert grid.nbytes == np.prod(grid.shape) and len(d.train_labels) == len(grid)
    some = grid[np.array([0, 5, -1])]
    for j, i in enumerate([0, 5, -1]):
        np.testing.assert_array_equal(grid[i], some.array()[j])
        np.testing.assert_array_equal(grid[i][..., 0], dsprites.render(grid.factors[i : i + 1 or None])[0] * 255)
    np.testing.assert_array_equal(d.test_images, dsprites.Grid(dsprites.split()[1]).array())
    assert d.fingerprint() == data.load("dsprites").fingerprint() != d.fingerprint("test")
    assert sources.Dataset(*"ab", grid[1:], d.train_labels[1:], *[d.test_images, d.test_labels]).fingerprint() != (
        d.fingerprint()
    )


def test_streaming_the_grid_keeps_memory_flat():
    grid = dsprites.Grid(dsprites.split()[0])
    stream = Stream(grid, None, 128, slice(None))
    perm = np.random.default_rng(0).permutation(len(grid))
    tracemalloc.start()
    for step, (images, _) in enumerate(stream.batches(perm, 0)):
        assert images.shape == (128, 64, 64, 1)
        if step == 100:
            break
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_array_equal(images[3], grid[perm[100 * 128 + 3]])
    assert peak < 64 * 2**20 < grid.nbytes // 40  # batches read ahead, never the 3 GB of the whole grid


def test_the_published_file_is_read_from_data_dir_only_when_it_holds_the_grid(tmp_path):
    with pytest.raises(UserError, match="no dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz there"):
        data.load("dsprites", data_dir=str(tmp_path))
    path = tmp_path / dsprites.PUBLISHED
    np.savez(path, imgs=np.zeros((3, 64, 64), np.uint8), latents_classes=np.zeros((3, 6), np.int64))
    with pytest.raises(UserError, match="not the published dSprites file .its images or factors"):
        data.load("dsprites", data_dir=str(tmp_path))
    np.savez(path, images=np.zeros((3, 64, 64), np.uint8))
    with pytest.raises(UserError, match="not the published dSprites file .no imgs"):
        data.load("dsprites", data_dir=str(path))


def test_the_published_file_gives_its_own_images_on_the_same_split(tmp_path, monkeypatch):
    # a grid of 3 x 2 x 2 x 4 x 4 in the published file's layout: the same code path, without its 3 GB
    monkeypatch.setattr(dsprites, "SIZES", (3, 2, 2, 4, 4))
    monkeypatch.setattr(dsprites, "TOTAL", 192)
    monkeypatch.setattr(dsprites, "TEST_SIZE", 20)
    classes = np.concatenate([np.zeros((192, 1), np.int64), dsprites.factors_of(np.arange(192))], 1)
    imgs = np.zeros((192, 64, 64), np.uint8)
    imgs[:, 0, 0] = classes[:, 1] == 2  # a mark on every heart
    np.savez_compressed(tmp_path / dsprites.PUBLISHED, imgs=imgs, latents_classes=classes)
    d = data.load("dsprites", data_dir=str(tmp_path))
    assert "published file" in d.source and isinstance(d.train_images, np.ndarray)
    test = dsprites.split()[1]
    np.testing.assert_array_equal(d.test_images[:, 0, 0, 0], np.where(dsprites.factors_of(test)[:, 0] == 2, 255, 0))
    assert d.train_images.shape == (172, 64, 64, 1) and len(test) == 20
    truth = dsprites.DSprites(str(tmp_path))  # the scores see the images the model was trained on
    np.testing.assert_array_equal(truth.observations(classes[5:9, 1:])[:, 0, 0, 0], imgs[5:9, 0, 0] * 255)
    shuffled = classes[::-1].copy()
    np.savez_compressed(tmp_path / dsprites.PUBLISHED, imgs=imgs, latents_classes=shuffled)
    with pytest.raises(UserError, match="its images or factors are not the grid in order"):
        data.load("dsprites", data_dir=str(tmp_path))
