"""Importance-sampled log p(x) against the analytic value of a linear-Gaussian VAE; active units."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from linear_gaussian import linear_gaussian

from vae_jax.evaluation import evaluate
from vae_jax.objectives import log_importance_weights


def _truth(log_px, xs):
    return np.array([log_px(x[:, 0, 0]) for x in xs])


def test_estimate_is_within_standard_errors_of_the_truth_and_improves_with_k():
    vae, params, log_px, _, draw = linear_gaussian()
    xs = draw(200)
    truth = _truth(log_px, xs).mean()
    proposal = params(mean_scale=0.7, log_var_shift=0.8)  # a poor but valid encoder
    errors = []
    for k in (1, 10, 1000):
        out = evaluate(vae, proposal, xs, jax.random.key(k), k=k, batch_size=50)
        errors.append(abs(-out["nll"] - truth))
    assert errors[0] > errors[1] > errors[2], errors
    out = evaluate(vae, proposal, xs, jax.random.key(0), k=1000, batch_size=50)
    per_example_truth = _truth(log_px, xs)
    # the estimate of each example against its own truth: a paired comparison, so its spread is small
    diff = -out["nll"] - per_example_truth.mean()
    assert abs(diff) < 0.05, diff
    assert out["nll_se"] > 0 and out["elbo"] < -out["nll"] - 0.1  # the poor encoder leaves a real gap


def test_exact_posterior_gives_equal_importance_weights_equal_to_log_px():
    vae, params, log_px, x, _ = linear_gaussian()
    log_w, _, _ = log_importance_weights(vae, params(), x.reshape(-1, 1, 1).astype(np.float32), jax.random.key(0), 64)
    log_w = np.asarray(log_w)
    assert np.ptp(log_w) < 1e-3, log_w
    assert abs(log_w.mean() - log_px(x)) < 1e-3


def test_exact_posterior_estimate_equals_truth_and_elbo():
    vae, params, log_px, _, draw = linear_gaussian()
    xs = draw(20)
    out = evaluate(vae, params(), xs, jax.random.key(0), k=500, batch_size=20)
    assert abs(-out["nll"] - _truth(log_px, xs).mean()) < 1e-3
    assert abs(out["elbo"] + out["nll"]) < 0.03  # Monte-Carlo noise of the reconstruction term only


def test_a_dimension_the_decoder_ignores_is_inactive():
    vae, params, _, _, draw = linear_gaussian(scales=(2.0, 0.0))  # the second latent is not used
    out = evaluate(vae, params(), draw(300), jax.random.key(0), k=2, batch_size=100)
    assert out["active_units"] == 1 and out["latent_dim"] == 2
    assert out["posterior_mean_variance"][0] > 0.5 and out["posterior_mean_variance"][1] < 1e-6
    assert out["kl_per_dim"][1] < 1e-5 < out["kl_per_dim"][0]


def test_k_is_processed_in_chunks_with_the_same_result_as_one_chunk():
    vae, params, _, _, draw = linear_gaussian()
    xs = draw(10)
    proposal = params(mean_scale=0.8)
    one = evaluate(vae, proposal, xs, jax.random.key(0), k=300, chunk=300)
    many = evaluate(vae, proposal, xs, jax.random.key(0), k=300, chunk=30)
    assert abs(one["nll"] - many["nll"]) < 0.05  # different draws, same estimator
    assert many["k"] == 300


def test_the_estimate_does_not_depend_on_the_batch_size():
    vae, params, _, _, draw = linear_gaussian()
    xs = draw(30)
    proposal = params(mean_scale=0.8)
    a = evaluate(vae, proposal, xs, jax.random.key(3), k=50, batch_size=7)
    b = evaluate(vae, proposal, xs, jax.random.key(3), k=50, batch_size=30)
    c = evaluate(vae, proposal, xs, jax.random.key(4), k=50, batch_size=30)
    assert abs(a["nll"] - b["nll"]) < 1e-5 and abs(a["elbo"] - b["elbo"]) < 1e-5
    assert abs(b["nll"] - c["nll"]) > 1e-4  # another key draws other samples


def test_on_cpus_a_call_decodes_the_sizes_measured_there_twice_as_many_for_a_dense_decoder():
    from vae_jax.config import Config
    from vae_jax.evaluation import default_chunking, pixels_per_call
    from vae_jax.families import build

    if jax.default_backend() != "cpu":
        pytest.skip("GPUs and TPUs size their calls from their memory (the next test)")
    calls = {
        m: default_chunking(784, 1000, per_call=pixels_per_call(build(Config(model=m), (28, 28, 1))))
        for m in ("mlp", "conv", "resnet", "hvae")
    }
    assert calls == {"mlp": (100, 20), "conv": (100, 10), "resnet": (100, 10), "hvae": (100, 10)}


@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_a_memory_budget_sets_a_call_size_whose_program_fits_it(model):
    """What a GPU or TPU does with a share of its free memory, here with budgets given."""
    from vae_jax.config import Config
    from vae_jax.evaluation import default_chunking, evaluate_batch, pixels_per_call
    from vae_jax.families import build

    vae = build(Config(model=model, conditional=True), (28, 28, 1))
    params = vae.init(jax.random.key(0))
    batches = []
    for budget in (64e6, 512e6):  # an mlp chunk of 75 examples and more: past the probe's 64
        chunk, batch = default_chunking(784, 1000, per_call=pixels_per_call(vae, budget))
        xs, labels = jnp.zeros((batch, 28, 28, 1)), jnp.zeros(batch, jnp.int32)
        k = 1000 // chunk * chunk
        lowered = evaluate_batch.lower(vae, params, xs, labels, jax.random.key(0), jnp.int32(0), k, chunk)
        used = lowered.compile().memory_analysis().temp_size_in_bytes
        assert 0.6 * budget < used < 1.05 * budget, (budget, chunk, batch, used)
        batches.append(batch)
    assert batches[1] >= 7 * batches[0]


def test_k_is_kept_as_asked_when_it_is_not_a_multiple_of_the_chunk():
    """k = 7 in chunks of 3: two chunks and one of 1 sample, the estimate the logsumexp of exactly
    those 7 weights (chunk j drawn with fold_in(key_n, j)), never 9."""
    from vae_jax.evaluation import importance_chunk

    vae, params, _, _, draw = linear_gaussian()
    xs, p = draw(5), params(mean_scale=0.7, log_var_shift=0.8)
    out = evaluate(vae, p, xs, jax.random.key(3), k=7, chunk=3, batch_size=5)
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(jax.random.key(3), jnp.arange(5))
    parts = [importance_chunk(vae, p, jnp.asarray(xs), None, keys, j, size)[0] for j, size in ((0, 3), (1, 3), (2, 1))]
    expected = np.logaddexp.reduce(np.stack([np.asarray(a) for a in parts]), axis=0) - np.log(7)
    assert out["k"] == 7
    np.testing.assert_allclose(-out["nll"], expected.mean(), rtol=1e-6)
