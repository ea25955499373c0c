"""The maths: KL, likelihoods, the ELBO against an analytic log p(x), vmap batching, seeds."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from linear_gaussian import linear_gaussian
from scipy import integrate, stats

from vae_jax import batch_elbo, elbo, kl_standard_normal, make_likelihood, reparameterize
from vae_jax.config import Config
from vae_jax.distributions import Bernoulli, GaussianLearned, bernoulli_log_prob
from vae_jax.families import build


def test_kl_closed_form_matches_monte_carlo():
    mean = jnp.array([0.5, -1.0, 2.0])
    log_var = jnp.array([-1.0, 0.5, 0.0])
    z = reparameterize(jax.random.key(0), jnp.broadcast_to(mean, (200_000, 3)), jnp.broadcast_to(log_var, (200_000, 3)))
    log_q = stats.norm.logpdf(np.asarray(z), np.asarray(mean), np.exp(0.5 * np.asarray(log_var)))
    log_p = stats.norm.logpdf(np.asarray(z))
    mc = (log_q - log_p).mean(0)
    se = (log_q - log_p).std(0) / math.sqrt(len(z))
    closed = np.asarray(kl_standard_normal(mean, log_var))
    assert np.all(np.abs(mc - closed) < 4 * se + 1e-4), (mc, closed, se)
    assert float(kl_standard_normal(jnp.zeros(3), jnp.zeros(3)).sum()) == 0.0


def test_bernoulli_log_prob_is_finite_and_exact_at_huge_logits():
    logits = jnp.array([1e3, -1e3, 1e3, -1e3, 0.0])
    x = jnp.array([1.0, 0.0, 0.0, 1.0, 1.0])
    lp = bernoulli_log_prob(x, logits)
    np.testing.assert_allclose(np.asarray(lp), [0.0, 0.0, -1e3, -1e3, -math.log(2)], rtol=1e-6, atol=1e-6)
    grads = jax.grad(lambda l: bernoulli_log_prob(x, l).sum())(logits)
    assert np.all(np.isfinite(np.asarray(grads)))
    # probabilities of the two outcomes sum to one
    total = jnp.exp(bernoulli_log_prob(1.0, logits)) + jnp.exp(bernoulli_log_prob(0.0, logits))
    np.testing.assert_allclose(np.asarray(total), 1.0, rtol=1e-6)


def test_bernoulli_log_prob_and_its_gradient_match_float64_over_all_logits():
    logits = np.concatenate([np.linspace(-40, 40, 4001), [-1e-7, 0.0, 1e-7, 17.0, 17.5, 88.0, -88.0]])
    for x in (0.0, 1.0):
        exact = x * logits - np.logaddexp(0.0, logits)  # float64
        lp = np.asarray(bernoulli_log_prob(x, jnp.asarray(logits, jnp.float32)), np.float64)
        np.testing.assert_allclose(lp, exact, rtol=1e-6, atol=1e-6)
        grads = jax.vmap(jax.grad(lambda l, x=x: bernoulli_log_prob(x, l)))(jnp.asarray(logits, jnp.float32))
        np.testing.assert_allclose(np.asarray(grads), x - 1 / (1 + np.exp(-logits)), atol=1e-6)


@pytest.mark.parametrize("name", ["gaussian", "gaussian-learned"])
def test_gaussian_likelihoods_are_normalised_densities(name):
    head = make_likelihood(name, sigma=0.3)
    out = jnp.array([[0.2, math.log(0.3)]])[:, : head.n_params]  # one pixel: mean 0.2, sigma 0.3

    def density(x: float) -> float:
        return math.exp(float(head.log_prob(out, jnp.array([x]))))

    mass, _ = integrate.quad(density, -10, 10, points=[0.2])
    assert abs(mass - 1.0) < 1e-5
    sigma = 0.3 if name == "gaussian" else float(jnp.exp(GaussianLearned().log_sigma(out))[0])
    assert abs(sigma - 0.3) < 1e-3
    assert abs(math.log(density(0.7)) - stats.norm.logpdf(0.7, 0.2, sigma)) < 1e-4


def test_learned_sigma_stays_above_its_floor():
    head = GaussianLearned()
    out = jnp.array([[0.0, -1e4]])
    assert float(head.log_sigma(out)[0]) >= head.min_log_sigma - 1e-6
    assert np.isfinite(float(head.log_prob(out, jnp.zeros(1))))


def _mc_elbo(vae, params, x, n=20_000):
    terms = batch_elbo(
        vae,
        params,
        jnp.broadcast_to(jnp.asarray(x, jnp.float32).reshape(1, -1, 1, 1), (n, len(x), 1, 1)),
        jax.random.key(1),
    )
    e = np.asarray(terms.elbo, np.float64)
    return e.mean(), e.std() / math.sqrt(n)


def test_elbo_equals_log_px_at_the_exact_posterior_and_is_below_it_elsewhere():
    vae, params, log_px, x, _ = linear_gaussian()
    truth = log_px(x)
    exact, se = _mc_elbo(vae, params(), x)
    assert abs(exact - truth) < 4 * se + 1e-3, (exact, truth, se)
    for wrong in (params(mean_scale=0.5), params(log_var_shift=1.0), params(log_var_shift=-1.5)):
        value, se = _mc_elbo(vae, wrong, x)
        assert value + 4 * se < truth, (value, truth)


def test_vmapped_elbo_equals_hand_batched_computation():
    config = Config(hidden=(32,), latent_dim=4)
    vae = build(config, (6, 5, 1))
    params = vae.init(jax.random.key(0))
    xs = jax.random.bernoulli(jax.random.key(1), 0.4, (7, 6, 5, 1)).astype(jnp.float32)
    key = jax.random.key(2)
    got = batch_elbo(vae, params, xs, key)
    # by hand: one batched encoder/decoder call, the same per-example noise
    keys = jax.random.split(key, 7)
    mean, log_var = vae.encode(params, xs)
    eps = jnp.stack([jax.random.normal(k, (1, 4))[0] for k in keys])
    z = mean + jnp.exp(0.5 * log_var) * eps
    logits = vae.decode(params, z)[..., 0]
    recon = jnp.sum(xs * logits - jax.nn.softplus(logits), axis=(1, 2, 3))
    kl = 0.5 * jnp.sum(jnp.exp(log_var) + mean**2 - 1 - log_var, axis=1)
    np.testing.assert_allclose(np.asarray(got.recon), np.asarray(recon), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(np.asarray(got.kl), np.asarray(kl), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got.elbo), np.asarray(recon - kl), rtol=1e-5, atol=1e-4)
    one = elbo(vae, params, xs[3], keys[3])
    np.testing.assert_allclose(float(one.elbo), float(got.elbo[3]), rtol=1e-6)


def test_same_seed_same_params_different_key_different_samples():
    vae = build(Config(), (28, 28, 1))
    a, b = vae.init(jax.random.key(3)), vae.init(jax.random.key(3))
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    c = vae.init(jax.random.key(4))
    assert not all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(c)))
    mean, log_var = jnp.zeros((1, 20)), jnp.zeros((1, 20))
    z1 = reparameterize(jax.random.key(0), mean, log_var)
    assert np.array_equal(z1, reparameterize(jax.random.key(0), mean, log_var))
    assert not np.array_equal(z1, reparameterize(jax.random.key(1), mean, log_var))
    s1 = Bernoulli().sample(jax.random.key(0), jnp.zeros((28, 28, 1, 1)))
    s2 = Bernoulli().sample(jax.random.key(1), jnp.zeros((28, 28, 1, 1)))
    assert not np.array_equal(s1, s2)
