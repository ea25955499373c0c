"""The maths of the objectives of the literature against their definitions: the MMD estimators
against a brute-force double sum, the multi-sample bounds against their formulas and their order,
InfoVAE and WAE at the settings where they reduce to the ELBO and the autoencoder, the RAE's
gradient penalty against the Jacobian's norm, the SSIM against scikit-image's, and where each
loss's gradient flows (AAE, VAE-GAN, PIWAE, RAE-L2)."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from vae_jax import objectives
from vae_jax.config import Config
from vae_jax.families import build
from vae_jax.objectives import Batch
from vae_jax.objectives import mmd as mmd_terms
from vae_jax.objectives import ssim as ssim_terms
from vae_jax.objectives.aae import AAE, discriminator_loss, init_discriminator
from vae_jax.objectives.ciwae import ciwae_of
from vae_jax.objectives.miwae import miwae_of
from vae_jax.objectives.rae import RAE, jacobian_penalty
from vae_jax.objectives.terms import INFERENCE, batch_log_weights, log_mean_exp
from vae_jax.objectives.vaegan import VAEGAN
from vae_jax.objectives.vaegan import discriminator_loss as vaegan_discriminator_loss
from vae_jax.objectives.vaegan import init_discriminator as init_image_discriminator


def kernel(u: np.ndarray, v: np.ndarray, name: str) -> float:
    """k(u, v) from its definition, one pair at a time (C = 2 D)."""
    c, d2 = 2.0 * len(u), float(np.sum((u - v) ** 2))
    return math.exp(-d2 / c) if name == "rbf" else sum(s * c / (s * c + d2) for s in mmd_terms.IMQ_SCALES)


def brute_mmd(a: np.ndarray, b: np.ndarray, name: str, unbiased: bool) -> float:
    """The double sums of the U- or V-statistic, pair by pair."""

    def mean_within(s):
        pairs = [(i, j) for i, j in itertools.product(range(len(s)), repeat=2) if i != j or not unbiased]
        return sum(kernel(s[i], s[j], name) for i, j in pairs) / len(pairs)

    cross = sum(kernel(u, v, name) for u in a for v in b) / (len(a) * len(b))
    return mean_within(a) + mean_within(b) - 2 * cross


@pytest.mark.parametrize("name", mmd_terms.KERNELS)
@pytest.mark.parametrize("unbiased", [True, False])
def test_the_mmd_is_its_double_sum(name, unbiased):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(7, 3)), rng.normal(0.5, 1.5, size=(9, 3))
    got = float(mmd_terms.mmd(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), name, unbiased))
    assert got == pytest.approx(brute_mmd(a, b, name, unbiased), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("name", mmd_terms.KERNELS)
def test_the_mmd_of_equal_distributions_is_zero_and_grows_with_their_distance(name):
    rng = np.random.default_rng(2)
    a, b = (jnp.asarray(rng.normal(size=(400, 4)), jnp.float32) for _ in range(2))
    assert float(mmd_terms.mmd(a, a, name, unbiased=False)) == pytest.approx(0.0, abs=1e-5)  # one sample: exactly 0
    same = float(mmd_terms.mmd(a, b, name))  # two samples of one distribution: 0 in expectation
    shifted = [float(mmd_terms.mmd(a, b + shift, name)) for shift in (0.25, 0.5, 1.0, 2.0)]
    assert abs(same) < 0.2 * shifted[0]
    assert all(x < y for x, y in zip(shifted, shifted[1:]))


def test_the_multi_sample_bounds_are_their_definitions_and_ordered():
    rng = np.random.default_rng(3)
    m, k = 3, 4
    log_w = rng.normal(-100, 3, size=(5, m * k))
    grid = log_w.reshape(5, m, k)
    miwae = np.mean(logsumexp(grid, axis=-1) - math.log(k), axis=-1)
    np.testing.assert_allclose(miwae_of(jnp.asarray(log_w), m), miwae, rtol=1e-6)
    iwae_k = logsumexp(log_w[:, :k], axis=-1) - math.log(k)
    elbo_k = log_w[:, :k].mean(-1)
    for beta in (0.0, 0.3, 1.0):
        expected = beta * elbo_k + (1 - beta) * iwae_k
        np.testing.assert_allclose(ciwae_of(jnp.asarray(log_w[:, :k]), beta), expected, rtol=1e-6)
    # ELBO <= MIWAE(M, K) <= IWAE-(M K) on the same draws; the ELBO <= CIWAE <= IWAE-K
    elbo, iwae_mk = log_w.mean(-1), logsumexp(log_w, axis=-1) - math.log(m * k)
    assert np.all(elbo <= miwae + 1e-9) and np.all(miwae <= iwae_mk + 1e-9)
    c = np.asarray(ciwae_of(jnp.asarray(log_w[:, :k]), 0.5))
    assert np.all(elbo_k <= c + 1e-6) and np.all(c <= iwae_k + 1e-6)
    np.testing.assert_allclose(miwae_of(jnp.asarray(log_w), 1), log_mean_exp(jnp.asarray(log_w)), rtol=1e-6)


def tiny(objective: str, **options):
    """A small mlp VAE on 6 x 5 images, its parameters, a batch and the objective."""
    config = Config(hidden=(8,), latent_dim=3, objective=objective, **options).resolved()
    vae = build(config, (6, 5, 1))
    params = vae.init(jax.random.key(0))
    x = (jax.random.uniform(jax.random.key(1), (6, 6, 5, 1)) > 0.5).astype(jnp.float32)
    return vae, params, Batch(x, None, 60), objectives.of(config)


def loss_of(objective, vae, params, batch, key=None, aux=None):
    key = jax.random.key(7) if key is None else key
    aux = {"state": {}, "groups": {}} if aux is None else aux
    return objective.loss(vae, params, aux, batch, key, jnp.int32(0))[0]


def sides(grads) -> tuple[float, float]:
    """(the largest |gradient| over q's parameters, over p's)."""
    big = lambda tree: max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(tree))  # noqa: E731
    return big({n: g for n, g in grads.items() if n in INFERENCE}), big(
        {n: g for n, g in grads.items() if n not in INFERENCE}
    )


def test_infovae_at_alpha_0_lambda_1_is_the_elbo_and_wae_at_lambda_0_the_autoencoder():
    vae, params, batch, info = tiny("infovae", info_alpha=0.0, info_lambda=1.0)
    _, _, _, elbo = tiny("vae")
    # the same key draws the same z ~ q(z|x): InfoVAE splits it, so give the ELBO the first half
    k_q = jax.random.split(jax.random.key(7))[0]
    assert float(loss_of(info, vae, params, batch)) == pytest.approx(float(loss_of(elbo, vae, params, batch, k_q)))
    _, _, _, wae = tiny("wae", wae_lambda=0.0)
    _, _, _, ae = tiny("ae")
    assert float(loss_of(wae, vae, params, batch)) == pytest.approx(float(loss_of(ae, vae, params, batch)))
    _, _, _, wae10 = tiny("wae")
    assert float(loss_of(wae10, vae, params, batch)) != pytest.approx(float(loss_of(ae, vae, params, batch)))


def test_piwae_trains_the_decoder_on_iwae_mk_and_the_encoder_on_miwae():
    vae, params, batch, piwae = tiny("piwae", m=2, k=3)
    key = jax.random.key(7)

    def bound(fn):
        return lambda p: -jnp.mean(fn(batch_log_weights(vae, p, batch.x, key, None, 6)))

    want_q = jax.grad(bound(lambda w: miwae_of(w, 2)))(params)
    want_p = jax.grad(bound(log_mean_exp))(params)
    got = jax.grad(lambda p: loss_of(piwae, vae, p, batch, key))(params)
    for name in params:
        want = want_q[name] if name in INFERENCE else want_p[name]
        for g, w in zip(jax.tree.leaves(got[name]), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(g, w, rtol=2e-4, atol=1e-5)
    assert sides(want_q) != sides(want_p)  # the two bounds' gradients differ: the test can fail


def test_the_rae_gradient_penalty_estimates_the_jacobians_norm():
    vae, params, batch, _ = tiny("rae-gp")
    z = jax.random.normal(jax.random.key(2), (4, 3))
    exact = np.mean([float(jnp.sum(jax.jacfwd(lambda u: vae.decode_mean(params, u[None])[0])(zi) ** 2)) for zi in z])
    draws = [float(jacobian_penalty(vae, params, z, None, jax.random.key(s))) for s in range(400)]
    assert np.mean(draws) == pytest.approx(exact, rel=0.05)


def test_the_rae_l2_penalty_reaches_the_decoder_only():
    vae, params, batch, _ = tiny("rae-l2")
    regulariser_only = RAE("l2", beta=0.0, weight=1.0)
    plain = RAE("l2", beta=0.0, weight=0.0)
    grads = jax.grad(lambda p: loss_of(regulariser_only, vae, p, batch) - loss_of(plain, vae, p, batch))(params)
    q_side, p_side = sides(grads)
    assert q_side == 0.0 and p_side > 0.0


def test_the_adversarial_losses_reach_only_their_own_side():
    vae, params, batch, aae = tiny("aae")
    disc = init_discriminator(vae, jax.random.key(3))
    aux = {"state": {}, "groups": {"discriminator": {"params": disc, "opt_state": None}}}
    key, step = jax.random.key(5), jnp.int32(0)
    # the discriminator's loss: its gradient reaches no parameter of the model
    d_model = jax.grad(lambda p: discriminator_loss(vae, p, disc, aux, batch, key, step)[0])(params)
    assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree.leaves(d_model))
    d_disc = jax.grad(lambda d: discriminator_loss(vae, params, d, aux, batch, key, step)[0])(disc)
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(d_disc)) > 0
    # the model's adversarial term (its loss less the reconstruction alone) reaches the encoder only
    fool_only = jax.grad(lambda p: loss_of(aae, vae, p, batch, key, aux) - loss_of(AAE(0.0), vae, p, batch, key, aux))
    q_side, p_side = sides(fool_only(params))
    assert q_side > 0.0 and p_side == 0.0


def test_the_ssim_is_scikit_images():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(4)
    x = rng.uniform(size=(28, 28)).astype(np.float32)
    y = np.clip(x + rng.normal(0, 0.2, size=x.shape), 0, 1).astype(np.float32)
    luminance, contrast = ssim_terms.ssim_maps(jnp.asarray(x)[None, ..., None], jnp.asarray(y)[None, ..., None])
    pad = ssim_terms.WINDOW // 2  # scikit-image averages the map where the window lies inside the image
    ours = float(jnp.mean((luminance * contrast)[0, pad:-pad, pad:-pad, 0]))
    theirs = structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
    assert ours == pytest.approx(theirs, abs=1e-4)


@pytest.mark.parametrize("shape", [(28, 28), (14, 9), (7, 7)])
def test_the_ssim_window_reflects_the_edges_as_scipys_filter(shape):
    from scipy.ndimage import correlate1d

    x = np.random.default_rng(5).uniform(size=(2, *shape, 3)).astype(np.float32)
    taps = ssim_terms._window()
    theirs = correlate1d(correlate1d(x, taps, axis=1, mode="reflect"), taps, axis=2, mode="reflect")
    np.testing.assert_allclose(np.asarray(ssim_terms._blur(jnp.asarray(x))), theirs, atol=1e-6)


def test_the_ms_ssim_is_one_for_equal_images_and_falls_with_noise():
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.uniform(size=(3, 28, 28, 1)), jnp.float32)
    assert ssim_terms.scales(28, 28) == 3 and ssim_terms.scales(64, 64) == 4 and ssim_terms.scales(8, 8) == 1
    np.testing.assert_allclose(ssim_terms.ms_ssim(x, x), 1.0, atol=1e-5)
    noisy = [
        float(jnp.mean(ssim_terms.ms_ssim(x, jnp.clip(x + s * rng.normal(size=x.shape), 0, 1))))
        for s in (0.05, 0.2, 0.5)
    ]
    assert 1.0 > noisy[0] > noisy[1] > noisy[2] >= 0.0


def test_the_ms_ssim_has_a_finite_gradient_where_a_scale_is_dissimilar():
    rng = np.random.default_rng(6)
    x = jnp.asarray(rng.uniform(size=(2, 28, 28, 1)), jnp.float32)
    y = 1.0 - x  # anti-correlated: each scale's contrast term is negative, clipped
    grad = jax.grad(lambda y: jnp.sum(ssim_terms.ms_ssim(x, y)))(y)
    assert bool(jnp.all(jnp.isfinite(grad)))


def test_the_vae_gan_losses_reach_only_their_own_sides():
    vae, params, batch, vaegan = tiny("vaegan", vaegan_gamma=0.25)
    disc = init_image_discriminator(vae, jax.random.key(3))
    aux = {"state": {}, "groups": {"discriminator": {"params": disc, "opt_state": None}}}
    key, step = jax.random.key(5), jnp.int32(0)
    d_model = jax.grad(lambda p: vaegan_discriminator_loss(vae, p, disc, aux, batch, key, step)[0])(params)
    assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree.leaves(d_model))

    def part(name, gamma):
        """The gradient of one term of the model's loss (the statistics it reports)."""
        objective = VAEGAN(gamma)
        return jax.grad(lambda p: objective.loss(vae, p, aux, batch, key, step)[1][name])(params)

    # the GAN term: the decoder only (the encoder's codes held fixed)
    q_side, p_side = sides(part("gan", 0.25))
    assert q_side == 0.0 and p_side > 0.0
    # the feature-wise reconstruction: all of it to the encoder, gamma of it to the decoder
    full = jax.grad(lambda p: VAEGAN(0.25).loss(vae, p, aux, batch, key, step)[0])(params)
    gan, feature, kl = part("gan", 0.25), part("feature_error", 1.0), part("kl", 0.25)
    for name in ("encoder", "decoder"):
        weight = 1.0 if name == "encoder" else 0.25
        expected = jax.tree.map(lambda f, g, k: weight * f - 0.75 * g + k, feature[name], gan[name], kl[name])
        for a, b in zip(jax.tree.leaves(full[name]), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
