"""The maths of the mixture priors (VampPrior, mixture of Gaussians), the IAF posterior and the
fitted sampler: against scipy, jax.jacfwd and closed forms."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from linear_gaussian import linear_gaussian
from scipy import stats

from vae_jax.config import Config
from vae_jax.evaluation import evaluate
from vae_jax.families import build
from vae_jax.families.networks import MLPEncoder
from vae_jax.families.vae import VAE
from vae_jax.flows.iaf import IAF, IAFStep
from vae_jax.objectives import elbo, log_importance_weights, per_example
from vae_jax.priors.mixture import MixtureOfGaussians, mixture_log_prob, mixture_moments, mixture_sample
from vae_jax.priors.vamp import VampPrior
from vae_jax.samplers import gmm as fitted_gmm


def _mixture(seed: int = 0, k: int = 3, d: int = 4, dtype=jnp.float32):
    r = np.random.default_rng(seed)
    means, log_vars = r.normal(size=(k, d)) * 2, r.normal(size=(k, d)) * 0.5
    w = r.dirichlet(np.ones(k))
    return tuple(jnp.asarray(a, dtype) for a in (means, log_vars, np.log(w)))


def test_mixture_log_density_matches_scipy_in_float64():
    with jax.enable_x64(True):
        comps = _mixture(dtype=jnp.float64)
        z = jnp.asarray(np.random.default_rng(1).normal(size=(50, 4)) * 3)
        ours = np.asarray(mixture_log_prob(z, comps))
        assert ours.dtype == np.float64
    means, log_vars, log_w = (np.asarray(a) for a in comps)
    densities = [
        np.exp(lw) * stats.multivariate_normal.pdf(np.asarray(z), m, np.diag(np.exp(lv)))
        for m, lv, lw in zip(means, log_vars, log_w)
    ]
    np.testing.assert_allclose(ours, np.log(np.sum(densities, 0)), rtol=1e-12, atol=1e-12)


def test_prior_samples_have_the_prior_moments():
    comps = _mixture(seed=2)
    draws = np.asarray(mixture_sample(jax.random.key(0), comps, 400_000), np.float64)
    mean, log_var = (np.asarray(a) for a in mixture_moments(comps))
    means, log_vars, log_w = (np.asarray(a, np.float64) for a in comps)
    w = np.exp(log_w)[:, None]
    exact_mean = (w * means).sum(0)
    exact_var = (w * (np.exp(log_vars) + means**2)).sum(0) - exact_mean**2
    np.testing.assert_allclose(mean, exact_mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.exp(log_var), exact_var, rtol=1e-4)
    se = np.sqrt(exact_var / len(draws))
    assert np.all(np.abs(draws.mean(0) - exact_mean) < 5 * se)
    np.testing.assert_allclose(draws.var(0), exact_var, rtol=0.02)
    # the component weights: the share of draws nearest each component's mean is about its weight
    # (components 2 nats apart overlap, so only the whole: the mean of the first unit checks the mixing)


def _with_pseudo_input_at_standard_normal(vae: VAE, params):
    """The VampPrior model's params changed so that its single pseudo-input encodes to exactly
    N(0, I): the encoder's last bias less its output there."""
    u = vae.prior.pseudo_inputs(params["prior"])
    out = vae.encoder.apply({"params": params["encoder"]}, u)
    last = sorted(params["encoder"])[-1]
    encoder = {**params["encoder"], last: {**params["encoder"][last], "bias": params["encoder"][last]["bias"] - out[0]}}
    return {**params, "encoder": encoder}


def test_vamp_prior_with_one_pseudo_input_at_standard_normal_gives_the_standard_elbo():
    shape = (6, 6, 1)
    vamp = build(Config(hidden=(16,), latent_dim=3, prior="vamp", pseudo_inputs=1), shape)
    plain = build(Config(hidden=(16,), latent_dim=3), shape)
    params = _with_pseudo_input_at_standard_normal(vamp, vamp.init(jax.random.key(0)))
    means, log_vars, _ = vamp.prior.components(params["prior"], lambda u: vamp.gaussian(params, u)[:2])
    assert float(jnp.max(jnp.abs(means))) < 1e-6 and float(jnp.max(jnp.abs(log_vars))) < 1e-6
    plain_params = {"encoder": params["encoder"], "decoder": params["decoder"]}
    x = (jax.random.uniform(jax.random.key(1), shape) > 0.5).astype(jnp.float32)
    keys = jax.random.split(jax.random.key(2), 20_000)
    draws_vamp = jax.vmap(lambda k: vamp.posterior(params, x, k, 1))(keys)
    draws_plain = jax.vmap(lambda k: plain.posterior(plain_params, x, k, 1))(keys)
    # the same z: the same log q, and log p(z) of the one-component mixture is log N(z; 0, I)
    np.testing.assert_allclose(draws_vamp.log_q, draws_plain.log_q, rtol=0, atol=1e-6)
    np.testing.assert_allclose(draws_vamp.log_p, draws_plain.log_p, rtol=0, atol=1e-5)
    # its single-sample ELBO estimate averages to the closed-form ELBO of the standard model
    vamp_elbos = np.asarray(jax.vmap(lambda k: elbo(vamp, params, x, k).elbo)(keys), np.float64)
    plain_elbos = np.asarray(jax.vmap(lambda k: elbo(plain, plain_params, x, k).elbo)(keys), np.float64)
    diff = vamp_elbos - plain_elbos  # KL estimate less the closed form: mean 0
    assert abs(diff.mean()) < 4 * diff.std() / math.sqrt(len(diff))
    assert vamp.kl_analytic is False and plain.kl_analytic is True


def test_iaf_at_its_start_is_the_identity_and_gives_the_plain_posterior():
    shape = (6, 6, 1)
    flow_model = build(Config(hidden=(16,), latent_dim=3, flow="iaf", flow_steps=2, flow_hidden=8), shape)
    plain = build(Config(hidden=(16,), latent_dim=3), shape)
    params = flow_model.init(jax.random.key(0))
    last = sorted(params["encoder"])[-1]
    trimmed = {n: a[..., :6] for n, a in params["encoder"][last].items()}  # the Gaussian's outputs only
    plain_params = {"encoder": {**params["encoder"], last: trimmed}, "decoder": params["decoder"]}
    x = (jax.random.uniform(jax.random.key(1), shape) > 0.5).astype(jnp.float32)
    a, b = flow_model.posterior(params, x, jax.random.key(3), 5), plain.posterior(plain_params, x, jax.random.key(3), 5)
    for name in ("out", "log_q", "log_p"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(flow_model.encode(params, x[None])[0], plain.encode(plain_params, x[None])[0])


def _random_step(d: int = 4, hidden: int = 12, reverse: bool = False, seed: int = 0):
    step = IAFStep(d, hidden, reverse)
    params = step.init(jax.random.key(seed), jnp.zeros((1, d)), jnp.zeros((1, 5)))["params"]
    leaves, tree = jax.tree.flatten(params)  # nonzero everywhere, the output layer included
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    leaves = [0.5 * jax.random.normal(k, a.shape) for k, a in zip(keys, leaves)]
    return step, jax.tree.unflatten(tree, leaves)


@pytest.mark.parametrize("reverse", [False, True])
def test_an_iaf_step_is_autoregressive(reverse):
    d = 5
    step, params = _random_step(d, reverse=reverse)
    z, h = jax.random.normal(jax.random.key(7), (d,)), jax.random.normal(jax.random.key(8), (5,))
    order = np.arange(d)[::-1] if reverse else np.arange(d)  # position of unit i in the step's order
    rank = np.argsort(order)
    for which in (0, 1):  # m and log s
        jac = np.asarray(jax.jacfwd(lambda z: step.apply({"params": params}, z[None], h[None])[which][0])(z))
        for i in range(d):
            for j in range(d):
                if rank[j] >= rank[i]:
                    assert jac[i, j] == 0.0, (which, i, j)
        assert np.any(jac != 0)


@pytest.mark.parametrize("steps", [1, 3])
def test_flow_log_determinant_matches_jacfwd_in_float64(steps):
    with jax.enable_x64(True):
        d = 4
        flow = IAF(d, steps, 12)
        params = flow.init(jax.random.key(0))
        leaves, tree = jax.tree.flatten(params)
        keys = jax.random.split(jax.random.key(1), len(leaves))
        params = jax.tree.unflatten(
            tree, [0.4 * jax.random.normal(k, a.shape, jnp.float64) for k, a in zip(keys, leaves)]
        )
        z = jax.random.normal(jax.random.key(2), (d,), jnp.float64)
        h = jax.random.normal(jax.random.key(3), (12,), jnp.float64)
        jac = jax.jacfwd(lambda z: flow(params, z[None], h[None])[0][0])(z)
        _, log_s = flow(params, z[None], h[None])
        ours = float(jnp.sum(log_s))
        sign, log_det = np.linalg.slogdet(np.asarray(jac))
    assert sign > 0 and np.asarray(jac).dtype == np.float64
    np.testing.assert_allclose(ours, log_det, rtol=1e-10, atol=1e-10)


def _linear_mixture_model(flow: IAF | None = None, k: int = 3):
    """The linear-Gaussian model of linear_gaussian with a mixture prior; its exact log p(x)."""
    vae, params_of, _, _, draw = linear_gaussian(latent=2, dim=5, sigma=0.5)
    means, log_vars, log_w = _mixture(seed=4, k=k, d=2)
    context = flow.context if flow else 0
    encoder = MLPEncoder((), 4 + context)
    vae = VAE(encoder, vae.decoder, vae.likelihood, 2, vae.image_shape, prior=MixtureOfGaussians(k, 2), flow=flow)
    params = params_of(log_var_shift=0.5)  # q wider than the N(0, I) model's posterior: a safe proposal
    enc = params["encoder"]["Dense_0"]
    if flow:  # context: zeros; the flow starts at the identity, so give it small random layers
        noise = lambda a: 0.05 * jax.random.normal(jax.random.key(5), a.shape)  # noqa: E731
        params["flow"] = jax.tree.map(noise, flow.init(jax.random.key(6)))
        pad = lambda a: jnp.concatenate([a, jnp.zeros((*a.shape[:-1], context))], -1)  # noqa: E731
        params["encoder"] = {"Dense_0": {n: pad(a) for n, a in enc.items()}}
    params["prior"] = {"means": means, "log_vars": log_vars, "logits": log_w}
    w = np.asarray(params["decoder"]["Dense_0"]["kernel"], np.float64).T
    b = np.asarray(params["decoder"]["Dense_0"]["bias"], np.float64)

    def log_px(x):
        parts = [
            lw + stats.multivariate_normal.logpdf(x, w @ m + b, w @ np.diag(np.exp(lv)) @ w.T + 0.25 * np.eye(5))
            for m, lv, lw in zip(np.asarray(means, np.float64), np.asarray(log_vars, np.float64), np.asarray(log_w))
        ]
        return np.logaddexp.reduce(parts, axis=0)

    return vae, params, log_px, draw


@pytest.mark.parametrize("flow", [None, IAF(2, 2, 8)], ids=["gaussian posterior", "iaf posterior"])
def test_importance_sampled_log_px_converges_to_the_closed_form_under_a_mixture_prior(flow):
    vae, params, log_px, draw = _linear_mixture_model(flow)
    x = draw(6, seed=3)
    exact = log_px(x.reshape(6, -1))
    result = evaluate(vae, params, jnp.asarray(x), jax.random.key(0), k=20_000)
    per_x = -np.asarray(
        [evaluate(vae, params, jnp.asarray(x[i : i + 1]), jax.random.key(0), k=20_000)["nll"] for i in range(6)]
    )
    np.testing.assert_allclose(per_x, exact, atol=0.05)
    assert abs(-result["nll"] - exact.mean()) < 0.05
    # never below the ELBO on average: the mean log weight is the ELBO
    log_w, _, _ = per_example(log_importance_weights, vae, params, jnp.asarray(x), jax.random.key(1), None, 5000)
    elbos = np.asarray(log_w, np.float64).mean(1)
    assert np.all(elbos <= per_x + 1e-3) and np.all(elbos < exact)


def test_fitted_sampler_recovers_a_known_mixture():
    rng = np.random.default_rng(0)
    means = np.array([[-4.0, 0.0], [4.0, 1.0], [0.0, 5.0]])
    covs = np.array([[[1, 0.5], [0.5, 1]], [[0.3, 0], [0, 2]], [[0.5, -0.2], [-0.2, 0.4]]])
    weights = np.array([0.5, 0.3, 0.2])
    idx = rng.choice(3, 20_000, p=weights)
    z = np.stack([rng.multivariate_normal(means[i], covs[i]) for i in idx]).astype(np.float32)
    gmm, log_lik = fitted_gmm.em(jnp.asarray(z), jax.random.key(0), 3, 200)
    assert np.all(np.diff(np.asarray(log_lik)) > -1e-4)  # EM never lowers the likelihood
    match = [int(np.argmin(np.linalg.norm(np.asarray(gmm.means) - m, axis=1))) for m in means]
    assert sorted(match) == [0, 1, 2]
    np.testing.assert_allclose(np.asarray(gmm.means)[match], means, atol=0.06)
    np.testing.assert_allclose(np.exp(np.asarray(gmm.log_weights))[match], weights, atol=0.015)
    fitted_covs = np.einsum("kij,klj->kil", gmm.chols, gmm.chols)[match]
    np.testing.assert_allclose(fitted_covs, covs, atol=0.08)
    draws = np.asarray(fitted_gmm.sample(gmm.arrays(), jax.random.key(1), 50_000))
    np.testing.assert_allclose(draws.mean(0), (weights[:, None] * means).sum(0), atol=0.05)
    fitted_density = np.asarray(fitted_gmm.log_prob(gmm.arrays(), jnp.asarray(z[:500])))
    true_density = np.log(
        sum(w * stats.multivariate_normal.pdf(z[:500], m, c) for w, m, c in zip(weights, means, covs))
    )
    assert np.mean(np.abs(fitted_density - true_density)) < 0.03 and np.max(np.abs(fitted_density - true_density)) < 0.2


def test_a_vamp_prior_is_a_mixture_of_the_encoders_gaussians_at_its_pseudo_inputs():
    vae = build(Config(hidden=(16,), latent_dim=3, prior="vamp", pseudo_inputs=4), (6, 6, 1))
    params = vae.init(jax.random.key(0))
    assert isinstance(vae.prior, VampPrior) and params["prior"]["pseudo_inputs"].shape == (4, 6, 6, 1)
    means, log_vars, log_w = vae.prior.components(params["prior"], lambda u: vae.gaussian(params, u)[:2])
    expect_mean, expect_log_var = vae.encode(params, jnp.clip(params["prior"]["pseudo_inputs"], 0, 1))
    np.testing.assert_array_equal(means, expect_mean)
    np.testing.assert_array_equal(log_vars, expect_log_var)
    np.testing.assert_allclose(np.exp(log_w), 0.25)
    z = jax.random.normal(jax.random.key(1), (7, 3))
    np.testing.assert_allclose(vae.log_prior(params, z), mixture_log_prob(z, (means, log_vars, log_w)), rtol=1e-6)
    # to_standard uses the mixture's moments, and from_standard inverts it
    np.testing.assert_allclose(vae.from_standard(params, vae.to_standard(params, z)), z, atol=1e-5)


@pytest.mark.slow  # two conv models compiled with a VampPrior and a flow: 20 s
@pytest.mark.parametrize("model", ["conv", "resnet"])
def test_the_convolutional_families_take_a_vamp_prior_and_a_flow(model):
    config = Config(model=model, channels=(4, 8), latent_dim=3, prior="vamp", pseudo_inputs=3, flow="iaf")
    vae = build(config, (8, 8, 1))
    params = vae.init(jax.random.key(0))
    assert params["prior"]["pseudo_inputs"].shape == (3, 8, 8, 1) and "flow" in params
    x = (jax.random.uniform(jax.random.key(1), (4, 8, 8, 1)) > 0.5).astype(jnp.float32)
    result = evaluate(vae, params, x, jax.random.key(2), k=8)
    assert np.isfinite(result["nll"]) and result["kl_per_dim"] is None and "IAF" in result["latent"]["posterior"]
    assert vae.generate(params, jax.random.key(3), 5).shape == (5, 8, 8, 1, vae.likelihood.n_params)


def test_a_fitted_sampler_is_stored_beside_a_trained_model_and_read_back(tiny_run, tmp_path):
    import shutil

    import vae_jax
    from vae_jax import fitted

    ckpt = str(tmp_path / "run")
    shutil.copytree(tiny_run.workdir, ckpt)
    model = vae_jax.load(ckpt)
    first = fitted.load_or_fit(model, ckpt, components=2)
    assert first.path == fitted.path_of(ckpt, model, components=2) and first.report["components"] == 2
    assert first.report["test_images"] == 48 and "under the prior" in fitted.summary(first.report)
    again = fitted.load_or_fit(model, ckpt, components=2)
    assert again.report == first.report
    assert first.state.keys() == again.state.keys()
    for name, a in first.state.items():
        np.testing.assert_array_equal(a, again.state[name])
    images = np.asarray(again.sample(model, jax.random.key(0), 5))
    assert images.shape == (5, 8, 8, 1) and images.min() >= 0 and images.max() <= 1
