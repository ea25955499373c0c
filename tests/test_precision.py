"""The precision policy: what we report is traced with float32 ("highest") matmuls on every
backend; training with --matmul-precision. On a CPU the numbers cannot tell (its float32 matmuls
are exact anyway), so the tests record the precision in force while the networks are traced."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae_jax import evaluation, loop, parallel, training
from vae_jax.api import Model
from vae_jax.config import Config
from vae_jax.families import build
from vae_jax.families.vae import VAE


@pytest.fixture
def traced(monkeypatch):
    """The matmul precision in force each time a decoder is traced (a fresh VAE is traced anew)."""
    seen = []
    decode = VAE.decode

    def recording(self, *args, **kwargs):
        seen.append(jax.config.jax_default_matmul_precision)
        return decode(self, *args, **kwargs)

    monkeypatch.setattr(VAE, "decode", recording)
    return seen


def _model(**options):
    config = Config(hidden=(16,), latent_dim=2, **options)
    vae = build(config, (4, 4, 1))
    return config, vae, vae.init(jax.random.key(0))


X = (np.arange(6 * 16).reshape(6, 4, 4, 1) % 2).astype(np.float32)


@pytest.mark.parametrize("entry", ["evaluate", "split_metrics", "autoencoder"])
def test_evaluation_traces_with_float32_matmuls(traced, entry):
    _, vae, params = _model()
    if entry == "evaluate":
        evaluation.evaluate(vae, params, X, jax.random.key(1), k=4)
    elif entry == "split_metrics":
        evaluation.split_metrics(vae, params, X, jax.random.key(1))
    else:
        evaluation.evaluate(vae, params, X, jax.random.key(1), likelihood=False)
    assert traced and set(traced) == {"highest"}


def test_the_api_traces_with_float32_matmuls(traced):
    config, vae, params = _model()
    model = Model(config, params, vae, 0, 0, {})
    model.elbo(jax.random.key(0), X)
    model.decode(jnp.zeros((3, 2)))
    model.reconstruct(X)
    assert traced and set(traced) == {"highest"}


@pytest.mark.parametrize("precision, expected", [("default", None), ("high", "high"), ("highest", "highest")])
def test_training_steps_use_the_configured_precision(traced, precision, expected):
    config, vae, _ = _model(matmul_precision=precision, batch_size=2)
    images = (np.arange(8 * 16).reshape(8, 4, 4, 1) % 256).astype(np.uint8)
    state, batches = training.prepare(
        config, vae, images, np.zeros(8, np.int32), parallel.layout(), training.run_keys(0)
    )
    loop.run_epoch(batches, state, 0)
    assert traced and set(traced) == {expected}


def test_the_flag_is_checked_and_recorded():
    from vae_jax.errors import UserError

    assert Config.from_dict(Config(matmul_precision="high").to_dict()).matmul_precision == "high"
    old = Config().to_dict()
    del old["matmul_precision"]  # a checkpoint written before the flag existed
    assert Config.from_dict(old).matmul_precision == "default"
    with pytest.raises(UserError, match="matmul-precision"):
        Config(matmul_precision="tf32")
