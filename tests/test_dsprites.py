"""The generated dSprites grid (vae_jax.data.dsprites): every factor combination once, the same
images on every machine, and shapes that are what they are called."""

import numpy as np
import pytest

from vae_jax import disentanglement
from vae_jax.data import dsprites

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
