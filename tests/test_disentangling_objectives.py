"""The maths of the disentangling objectives against their definitions: β-TCVAE's three parts of the
KL against a brute-force computation over a whole (small) dataset of known Gaussian posteriors, and
their sum against the KL in closed form; FactorVAE's density-ratio trick against the total correlation
of a known Gaussian; DIP-VAE's covariances and penalties on known covariances; AnnealedVAE's capacity;
and the refusal of models whose q(z|x) is not one diagonal Gaussian."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.special import logsumexp
from scipy.stats import norm

from vae_jax import objectives
from vae_jax.config import Config
from vae_jax.errors import UserError
from vae_jax.families import build
from vae_jax.objectives import Batch, annealed, betatc, dip, factorvae

N, D, B = 1000, 3, 200  # a dataset of N posteriors q(z|x_n) = N(mu_n, diag var_n), batches of B


@pytest.fixture(scope="module")
def posteriors():
    rng = np.random.default_rng(0)
    mix = np.array([[1.0, 0.0, 0.0], [0.9, 0.6, 0.0], [0.2, -0.5, 0.8]])  # correlated means: a TC > 0
    return 1.5 * rng.normal(size=(N, D)) @ mix.T, np.log(rng.uniform(0.3, 1.0, size=(N, D)))


def draws(mu, log_var, idx, rng):
    return mu[idx] + np.exp(log_var[idx] / 2) * rng.normal(size=(len(idx), D))


def brute_force(mu, log_var, rng, n=8000):
    """MI, TC and dim-wise KL with q(z) and each q(z_j) summed over all N posteriors: (mean, SE) each."""
    idx = rng.integers(N, size=n)
    z = draws(mu, log_var, idx, rng)
    per_unit = norm.logpdf(z[:, None, :], mu[None], np.exp(log_var[None] / 2))  # (n, N, D)
    log_q_zx = per_unit[np.arange(n), idx].sum(-1)
    log_qz = logsumexp(per_unit.sum(-1), axis=1) - np.log(N)
    log_marginals = (logsumexp(per_unit, axis=1) - np.log(N)).sum(-1)
    parts = (log_q_zx - log_qz, log_qz - log_marginals, log_marginals - norm.logpdf(z).sum(-1))
    return [(p.mean(), p.std() / np.sqrt(n)) for p in parts]


def batch_estimates(mu, log_var, rng, estimator, batches=200):
    out = []
    for _ in range(batches):
        idx = rng.choice(N, B, replace=False)
        z = draws(mu, log_var, idx, rng)
        args = (z, mu[idx], log_var[idx], norm.logpdf(z).sum(-1))
        parts = betatc.decomposition(*(jnp.asarray(a, jnp.float32) for a in args), N, estimator)
        out.append([float(parts[k]) for k in ("mi", "tc", "dimwise_kl")])
    return np.mean(out, axis=0)


def test_the_stratified_weights_of_each_row_sum_to_one_and_the_weighted_ones_as_the_paper_writes():
    w = np.exp(np.asarray(betatc.log_weights(5, 100, "mss")))
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.diag(w), 1 / 100, rtol=1e-6)
    assert np.isclose(w[0, 1], (100 - 4) / (100 * 4)) and np.isclose(w[4, 0], (100 - 4) / (100 * 4))
    np.testing.assert_allclose(np.exp(np.asarray(betatc.log_weights(5, 100, "mws"))), 1 / 500, rtol=1e-6)


def test_beta_tc_parts_match_a_brute_force_sum_over_the_whole_dataset(posteriors):
    rng = np.random.default_rng(1)
    truth = brute_force(*posteriors, rng)
    assert truth[1][0] > 0.2  # the means are correlated: a total correlation to find
    mss = batch_estimates(*posteriors, rng, "mss")
    for got, (want, se), tolerance in zip(mss, truth, (0.08, 0.06, 0.12)):
        assert abs(got - want) < tolerance + 3 * se, (got, want)
    # minibatch weighted sampling: the same up to the constants its weights 1 / (N B) put in each part
    offsets = np.array([np.log(N), (D - 1) * np.log(N), -D * np.log(N)])
    mws = batch_estimates(*posteriors, rng, "mws") - offsets
    for got, (want, se), tolerance in zip(mws, truth, (0.1, 0.06, 0.12)):
        assert abs(got - want) < tolerance + 3 * se, (got, want)


def test_the_three_parts_sum_to_the_kl_in_closed_form_within_monte_carlo_error(posteriors):
    mu, log_var = posteriors
    rng = np.random.default_rng(2)
    sums, kls = [], []
    for _ in range(50):
        idx = rng.choice(N, B, replace=False)
        z = draws(mu, log_var, idx, rng)
        args = (z, mu[idx], log_var[idx], norm.logpdf(z).sum(-1))
        parts = betatc.decomposition(*(jnp.asarray(a, jnp.float32) for a in args), N, "mss")
        sums.append(float(sum(parts.values())))
        kls.append(np.mean(0.5 * (np.exp(log_var[idx]) + mu[idx] ** 2 - 1 - log_var[idx]).sum(-1)))
    se = np.std(np.subtract(sums, kls)) / np.sqrt(len(sums))
    assert abs(np.mean(sums) - np.mean(kls)) < 3 * se + 1e-3


def test_the_density_ratio_trick_finds_the_total_correlation_of_a_known_gaussian():
    """An optimal discriminator's mean logit on z ~ N(0, S) is KL(N(0, S) || N(0, diag S)) = -log det(corr) / 2."""
    corr = np.array([[1.0, 0.8, 0.3], [0.8, 1.0, 0.5], [0.3, 0.5, 1.0]])
    tc = -0.5 * np.linalg.slogdet(corr)[1]
    chol, hidden = jnp.asarray(np.linalg.cholesky(corr), jnp.float32), (64, 64)
    disc = factorvae.Discriminator(hidden).init(jax.random.key(0), jnp.zeros((1, 3)))["params"]
    opt = optax.adam(1e-3)
    state = opt.init(disc)

    @jax.jit
    def step(disc, state, key):
        k_z, k_perm = jax.random.split(key)
        z = jax.random.normal(k_z, (512, 3)) @ chol.T
        grads = jax.grad(lambda d: factorvae.density_ratio_loss(d, z, k_perm, hidden)[0])(disc)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(disc, updates), state

    for key in jax.random.split(jax.random.key(1), 3000):
        disc, state = step(disc, state, key)
    z = jax.random.normal(jax.random.key(2), (50_000, 3)) @ chol.T
    estimate = float(jnp.mean(factorvae.Discriminator(hidden).apply({"params": disc}, z)))
    assert estimate == pytest.approx(tc, rel=0.15), (estimate, tc)


def test_permuting_each_unit_keeps_its_values_and_breaks_their_joint():
    z = jax.random.normal(jax.random.key(0), (4000, 2)) @ jnp.array([[1.0, 0.9], [0.0, 0.4]])
    permuted = factorvae.permute_dims(z, jax.random.key(1))
    for j in range(2):
        np.testing.assert_array_equal(np.sort(permuted[:, j]), np.sort(z[:, j]))
    assert abs(np.corrcoef(np.asarray(z).T)[0, 1]) > 0.8 and abs(np.corrcoef(np.asarray(permuted).T)[0, 1]) < 0.06


def test_dip_covariances_and_penalties_on_a_known_covariance():
    rng = np.random.default_rng(3)
    mean, log_var = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    cov_i = np.cov(mean.T, bias=True)
    np.testing.assert_allclose(dip.covariance(jnp.asarray(mean), jnp.asarray(log_var), "i"), cov_i, rtol=1e-5)
    cov_ii = cov_i + np.diag(np.exp(log_var).mean(0))
    np.testing.assert_allclose(dip.covariance(jnp.asarray(mean), jnp.asarray(log_var), "ii"), cov_ii, rtol=1e-5)
    known = np.array([[2.0, 0.5], [0.5, 1.0]])  # off-diagonal 0.5 twice, diagonal 1 away from 1 once
    assert float(dip.penalty(jnp.asarray(known), 10.0, 100.0)) == pytest.approx(10 * 2 * 0.25 + 100 * 1.0)
    assert float(dip.penalty(jnp.eye(3), 10.0, 100.0)) == 0.0
    assert dip.DIPVAE("i", 10.0).diagonal_weight == 100.0 and dip.DIPVAE("ii", 10.0).diagonal_weight == 10.0
    assert dip.DIPVAE("ii", 10.0, 3.0).diagonal_weight == 3.0


def test_the_annealed_capacity_rises_linearly_to_its_maximum_and_the_loss_keeps_the_kl_near_it():
    assert [float(annealed.capacity(s, 25.0, 100)) for s in (0, 40, 100, 500)] == [0.0, 10.0, 25.0, 25.0]
    assert float(annealed.capacity(7, 25.0, 0)) == 25.0
    model = build(Config(hidden=(16,), latent_dim=3), (8, 8, 1))
    params = model.init(jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(0).random((6, 8, 8, 1)) > 0.5, jnp.float32)
    objective = annealed.AnnealedVAE(gamma=1000.0, c_max=25.0, steps=100)
    for step in (0, 50, 200):
        value, stats = objective.loss(model, params, {}, Batch(x, None, 6), jax.random.key(1), jnp.int32(step))
        want = -(stats["recon"] - 1000.0 * abs(stats["kl"] - min(25.0, 0.25 * step)))
        assert float(value) == pytest.approx(float(want), rel=1e-6) and float(stats["capacity"]) == min(25, step / 4)


@pytest.mark.parametrize("name", ["beta-tc", "factor", "dip-i", "dip-ii"])
def test_an_objective_that_reads_the_gaussian_refuses_a_flow_and_a_hierarchy(name):
    for changes in ({"flow": "iaf"}, {"model": "hvae"}):
        config = Config(hidden=(16,), latent_dim=4, objective=name, **changes)
        model = build(config, (8, 8, 1))
        with pytest.raises(UserError, match=f"--objective {name} needs q.z.x. to be one diagonal Gaussian"):
            objectives.of(config).init(model, model.init(jax.random.key(0)), jax.random.key(1))
