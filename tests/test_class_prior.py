"""A conditional VAE's learned prior per class, p(z|y) = N(mean_y, diag exp(log_var_y)): samples for
a label are drawn from its class's Gaussian, the KL and log p(z|y) are that Gaussian's, old
checkpoints (whose prior was N(0, I)) still load, and unconditional models are unchanged."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae_jax import runmeta
from vae_jax.config import Config
from vae_jax.distributions import gaussian_log_prob, kl_gaussians
from vae_jax.errors import UserError
from vae_jax.families import build
from vae_jax.families.vae import VAE
from vae_jax.priors.classes import ClassPrior


def _cvae(prior: str = "auto") -> tuple[VAE, dict]:
    vae = build(Config(hidden=(16,), latent_dim=3, conditional=True, prior=prior), (4, 4, 1), num_classes=2)
    params = vae.init(jax.random.key(0))
    return vae, params


def test_a_conditional_vae_draws_its_samples_from_the_prior_of_the_label(monkeypatch):
    vae, params = _cvae()
    assert isinstance(vae.prior, ClassPrior) and params["prior"]["mean"].shape == (2, 3)
    params["prior"] = {"mean": jnp.array([[0.0, 0, 0], [10.0, -10.0, 5.0]]), "log_var": jnp.full((2, 3), np.log(4.0))}
    monkeypatch.setattr(VAE, "decode", lambda self, params, z, c=None: z)  # generate then returns the drawn z
    z = np.asarray(vae.generate(params, jax.random.key(1), 4000, vae.condition(jnp.ones(4000, jnp.int32))))
    np.testing.assert_allclose(z.mean(0), [10.0, -10.0, 5.0], atol=0.15)
    np.testing.assert_allclose(z.std(0), [2.0, 2.0, 2.0], rtol=0.05)
    cold = np.asarray(vae.generate(params, jax.random.key(1), 10, vae.condition(jnp.ones(10, jnp.int32)), 0.0))
    np.testing.assert_allclose(cold, np.tile([10.0, -10.0, 5.0], (10, 1)))  # temperature 0: the class's mean


def test_the_kl_and_log_p_of_a_draw_are_those_of_the_class_gaussian(monkeypatch):
    vae, params = _cvae()
    means, log_vars = jnp.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]]), jnp.array([[0.5] * 3, [-1.0] * 3])
    params["prior"] = {"mean": means, "log_var": log_vars}
    x, c = jnp.full((4, 4, 1), 0.5), vae.condition(jnp.array([1]))[0]
    mean, log_var = vae.encode(params, x[None], c[None])
    monkeypatch.setattr(VAE, "decode", lambda self, params, z, c=None: z)  # the draw's `out` is its z
    draw = vae.posterior(params, x, jax.random.key(2), 5, c)
    np.testing.assert_allclose(draw.kl[0], kl_gaussians(mean[0], log_var[0], means[1], log_vars[1]), rtol=1e-6)
    np.testing.assert_allclose(draw.log_p, gaussian_log_prob(draw.out, means[1], log_vars[1]).sum(-1), rtol=1e-6)
    np.testing.assert_allclose(draw.log_q, gaussian_log_prob(draw.out, mean, log_var).sum(-1), rtol=1e-6)
    z = vae.from_standard(params, jnp.zeros((1, 3)), c[None])
    np.testing.assert_allclose(z[0], means[1])
    np.testing.assert_allclose(vae.to_standard(params, z, c[None]), 0.0, atol=1e-7)


def test_the_class_prior_is_a_choice_and_needs_labels():
    vae, params = _cvae("normal")
    assert not isinstance(vae.prior, ClassPrior) and "prior" not in params
    plain = build(Config(hidden=(16,), latent_dim=3), (4, 4, 1))
    assert not isinstance(plain.prior, ClassPrior) and "prior" not in plain.init(jax.random.key(0))
    with pytest.raises(UserError, match="needs --conditional"):
        Config(prior="class")


def test_a_checkpoint_written_before_the_choice_reads_as_the_prior_it_had():
    saved = Config(conditional=True).to_dict()
    del saved["prior"]
    meta = {"config": saved, "image_shape": [28, 28, 1], "num_classes": 10, "key": [0, 0]}
    assert runmeta.from_json(meta, "old").config.prior == "normal"
    unconditional = Config().to_dict()
    del unconditional["prior"]
    meta = {"config": unconditional, "image_shape": [28, 28, 1], "num_classes": 10}
    assert runmeta.from_json(meta, "old").config == Config()  # resumes with today's defaults
