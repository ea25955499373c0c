"""--sampler pixelcnn, the gated PixelCNN over a discrete model's codes: it is causal in raster order
(a position's logits see only the codes before it), its log-probability sums to one over every grid
(brute force), its draws have those probabilities, and a fit finds a known distribution."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae_jax.samplers import pixelcnn
from vae_jax.samplers.adam import flatten


def _state(k: int, grid: tuple[int, int], layers: int = 3, hidden: int = 8, seed: int = 0) -> dict:
    network = pixelcnn.GatedPixelCNN(k, hidden, layers)
    params = network.init(jax.random.key(seed), jnp.zeros((1, *grid), jnp.int32))["params"]
    # larger weights than the initial ones, so that the dependences are far from zero
    params = jax.tree.map(lambda a: a * 3.0, params)
    return flatten(params) | {"shape": np.array([k, hidden, layers]), "grid": np.array(grid)}


def test_each_positions_logits_see_only_the_codes_before_it_in_raster_order():
    k, (h, w) = 5, (4, 5)
    state = _state(k, (h, w))
    network, params = pixelcnn._network(state)
    codes = jax.random.randint(jax.random.key(1), (1, h, w), 0, k)
    logits = network.apply({"params": params}, codes)[0]
    for q in range(h * w):  # change the code at q: the logits at q and before do not move
        changed = codes.at[0, q // w, q % w].set((codes[0, q // w, q % w] + 1) % k)
        moved = np.abs(np.asarray(network.apply({"params": params}, changed)[0] - logits)).max(-1).ravel()
        np.testing.assert_array_equal(moved[: q + 1], 0.0)
        if q + 1 < h * w:
            assert moved[q + 1] > 0  # the next position reads it
        if q + w < h * w:
            assert moved[q + w] > 0  # and so does the one below it (the vertical stack)


def test_the_probabilities_of_every_grid_sum_to_one_and_the_draws_have_them():
    k, grid = 3, (2, 2)
    state = _state(k, grid, seed=2)
    every = jnp.asarray(list(itertools.product(range(k), repeat=4)), jnp.int32).reshape(-1, *grid)
    p = np.exp(np.asarray(pixelcnn.log_prob(state, every), np.float64))
    assert p.sum() == pytest.approx(1.0, abs=1e-5)
    draws = np.asarray(pixelcnn.sample(state, jax.random.key(3), 20_000)).reshape(-1, 4)
    index = (draws * k ** np.arange(3, -1, -1)).sum(-1)
    frequency = np.bincount(index, minlength=k**4) / len(index)
    se = np.sqrt(p * (1 - p) / len(index))
    assert np.all(np.abs(frequency - p) < 5 * se + 1e-3)
    greedy = np.asarray(pixelcnn.sample(state, jax.random.key(4), 3, temperature=0.0))
    assert (greedy == greedy[0]).all()  # temperature 0: the most likely code at each step, the same for all


def test_a_fit_finds_a_known_distribution():
    # codes whose first is uniform over {0, 1, 2} and each next one the one before plus 1 (mod 3): entropy log 3
    first = jax.random.randint(jax.random.key(5), (600,), 0, 3)
    codes = (first[:, None] + jnp.arange(6)[None]) % 3
    state, history = pixelcnn.fit(codes.reshape(600, 2, 3), jax.random.key(6), k=4, layers=2, hidden=16, epochs=40)
    assert history[-1] > history[0]
    held_out = (jnp.arange(3)[:, None] + jnp.arange(6)[None]) % 3
    log_p = np.asarray(pixelcnn.log_prob(state, held_out.reshape(3, 2, 3)))
    np.testing.assert_allclose(log_p, -np.log(3), atol=0.15)
    broken = held_out.at[:, -1].set((held_out[:, -1] + 1) % 3)  # the last code off the rule
    assert np.all(np.asarray(pixelcnn.log_prob(state, broken.reshape(3, 2, 3))) < -np.log(3) - 2.0)
