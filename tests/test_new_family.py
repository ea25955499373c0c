"""A model family added from outside the package, in this one file: a linear-Gaussian VAE,
p(z) = N(0, I), p(x|z) = N(W z + b, sigma^2 I), whose log p(x) = log N(x; b, W W^T + sigma^2 I)
is known in closed form. Registered with vae_jax.register, it goes through every command as the
families shipped do: train.py trains and resumes it, sample.py and encode.py use it, and
evaluate.py's importance-sampled NLL matches the closed form for the trained parameters."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from scipy import stats

import vae_jax
from vae_jax import data
from vae_jax.commands import encode, evaluate, sample, train
from vae_jax.distributions import gaussian_log_prob, kl_standard_normal, reparameterize

SIDE, LATENT, SIGMA = 4, 2, 0.05


class Linear(nn.Module):
    """A dense layer from flat inputs (B, ...) to (B, *out_shape)."""

    out_shape: tuple[int, ...]

    @nn.compact
    def __call__(self, h: jax.Array, c: jax.Array | None = None) -> jax.Array:
        return nn.Dense(math.prod(self.out_shape))(h.reshape(h.shape[0], -1)).reshape(h.shape[0], *self.out_shape)


@dataclass(frozen=True, eq=False)
class LinearGaussian:
    """A latent.LatentModel: linear encoder to (mean, log_var) of q(z|x), linear decoder to the mean of p(x|z)."""

    likelihood: object
    image_shape: tuple[int, int, int]
    latent_dim: int
    n_conditions: int = 0

    group_shapes = property(lambda self: ((self.latent_dim,),))
    groups = property(lambda self: (self.latent_dim,))
    convolutional = False
    kl_analytic = True
    discrete = False
    description = {"prior": "N(0, I)", "posterior": "diagonal Gaussian, linear in x", "kl": "closed form"}

    def condition(self, labels):
        return None

    def init(self, key):
        k_enc, k_dec = jax.random.split(key)
        x, z = jnp.zeros((1, *self.image_shape)), jnp.zeros((1, self.latent_dim))
        return {
            "encoder": Linear((2 * self.latent_dim,)).init(k_enc, x)["params"],
            "decoder": Linear((*self.image_shape, 1)).init(k_dec, z)["params"],
        }

    def encode(self, params, x, c=None):
        out = Linear((2 * self.latent_dim,)).apply({"params": params["encoder"]}, x)
        return out[:, : self.latent_dim], out[:, self.latent_dim :]

    def decode(self, params, z, c=None):
        return Linear((*self.image_shape, 1)).apply({"params": params["decoder"]}, z)

    def decode_mean(self, params, z, c=None):
        return self.likelihood.mean(self.decode(params, z))

    def decode_top(self, params, z_top, c=None):
        return self.decode_mean(params, z_top)

    def mean_shift(self, params, x, c=None):
        return self.encode(params, x)[0]

    def log_prior(self, params, z_top, c=None):
        return jnp.sum(gaussian_log_prob(z_top, 0.0, 0.0), -1)

    def to_standard(self, params, z_top, c=None):
        return z_top

    def from_standard(self, params, u, c=None):
        return u

    def posterior(self, params, x, key, n, c=None):
        mean, log_var = self.encode(params, x[None])
        z = reparameterize(
            key, jnp.broadcast_to(mean, (n, self.latent_dim)), jnp.broadcast_to(log_var, (n, self.latent_dim))
        )
        log_q = jnp.sum(gaussian_log_prob(z, mean, log_var), -1)
        log_p = jnp.sum(gaussian_log_prob(z, 0.0, 0.0), -1)
        kl = jnp.broadcast_to(kl_standard_normal(mean, log_var), z.shape)
        return vae_jax.Draw(self.decode(params, z), kl, log_q, log_p, z)

    def sample_prior(self, params, key, n, c=None, temperature=1.0):
        return float(np.ravel(temperature)[0]) * jax.random.normal(key, (n, self.latent_dim))

    def generate(self, params, key, n, c=None, temperature=1.0):
        return self.decode(params, self.sample_prior(params, key, n, c, temperature))


def build_linear(config, likelihood, image_shape, n_conditions):
    return LinearGaussian(likelihood, image_shape, config.latent_dim, n_conditions)


def log_px(params, x: np.ndarray) -> np.ndarray:
    """Closed-form log p(x) of the linear-Gaussian model: x (N, H, W, C) in [0, 1] -> (N,)."""
    w = np.asarray(params["decoder"]["Dense_0"]["kernel"], np.float64).T  # (D, latent)
    b = np.asarray(params["decoder"]["Dense_0"]["bias"], np.float64)
    return stats.multivariate_normal.logpdf(x.reshape(len(x), -1), b, w @ w.T + SIGMA**2 * np.eye(len(b)))


vae_jax.register("linear", build_linear)


def run(command, monkeypatch, *argv: str) -> None:
    monkeypatch.setattr(sys, "argv", [command.__name__, *map(str, argv)])
    command.run()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """640 images of 4x4 pixels drawn from a linear-Gaussian model, as uint8, in an .npz."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(SIDE * SIDE, LATENT)) * 0.12
    x = 0.5 + rng.normal(size=(640, LATENT)) @ w.T + SIGMA * rng.normal(size=(640, SIDE * SIDE))
    images = np.clip(np.round(x * 255), 0, 255).astype(np.uint8).reshape(640, SIDE, SIDE)
    path = tmp_path_factory.mktemp("linear") / "linear.npz"
    np.savez(path, images=images)
    return path


def test_a_family_registered_in_one_file_goes_through_every_command(dataset, tmp_path, monkeypatch):
    flags = ["--model", "linear", "--dataset", dataset, "--likelihood", "gaussian", "--sigma", SIGMA]
    flags += ["--latent-dim", LATENT, "--batch-size", 32, "--lr", "3e-2", "--eval-k", 10]
    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    run(train, monkeypatch, *flags, "--epochs", 8, "--workdir", resumed)
    assert vae_jax.load(str(resumed)).epoch == 8
    run(train, monkeypatch, *flags, "--epochs", 10, "--workdir", resumed)  # resumes at epoch 8
    run(train, monkeypatch, *flags, "--epochs", 10, "--workdir", straight)
    model, uninterrupted = vae_jax.load(str(resumed), ema=False), vae_jax.load(str(straight), ema=False)
    assert model.epoch == 10 and isinstance(model.vae, LinearGaussian)
    for a, b in zip(jax.tree.leaves(model.params), jax.tree.leaves(uninterrupted.params)):
        np.testing.assert_array_equal(a, b)

    run(sample, monkeypatch, "--ckpt", resumed, "--out", tmp_path / "s.png", "--n", 4)
    assert Image.open(tmp_path / "s.png").size[0] >= 2 * SIDE

    folder = tmp_path / "images"
    folder.mkdir()
    test_images = data.load(str(dataset)).test_images
    for i in range(3):
        Image.fromarray(test_images[i, ..., 0]).save(folder / f"{i}.png")
    run(encode, monkeypatch, "--ckpt", resumed, "--images", folder, "--out", tmp_path / "z.npz")
    z = np.load(tmp_path / "z.npz")
    mean, _ = vae_jax.load(str(resumed)).encode(test_images[:3].astype(np.float32) / 255)
    np.testing.assert_allclose(z["mean"], mean, rtol=1e-5, atol=1e-6)

    run(evaluate, monkeypatch, "--ckpt", resumed, "--k", 2000, "--out", tmp_path / "eval.json")
    result = json.loads((tmp_path / "eval.json").read_text())
    exact = -np.mean(log_px(vae_jax.load(str(resumed)).params, test_images.astype(np.float64) / 255))
    assert result["nll"] == pytest.approx(exact, abs=0.05), (result["nll"], exact)
    assert result["nll"] >= exact - 0.05  # an importance-sampled estimate of log p(x) is low on average


@dataclass(frozen=True, eq=False)
class Coded(LinearGaussian):
    """The same networks, said to have a discrete z: what only a continuous z has is refused."""

    discrete = True


def test_a_discrete_latent_is_not_given_what_only_a_continuous_one_has():
    from vae_jax.explorer.session import open_session

    vae = Coded(vae_jax.make_likelihood("gaussian", SIGMA, 1), (SIDE, SIDE, 1), LATENT)
    params = vae.init(jax.random.key(0))
    model = vae_jax.Model(vae_jax.Config(latent_dim=LATENT), params, vae, 0, 0, None)
    assert model.sample(jax.random.key(0), 2).shape == (2, SIDE, SIDE, 1)  # at temperature 1: drawn from p(z)
    x = np.full((1, SIDE, SIDE, 1), 0.5, np.float32)
    for refused in (lambda: model.encode(x), lambda: model.sample(jax.random.key(0), 2, 0.5)):
        with pytest.raises(vae_jax.UserError, match="this model's z is discrete"):
            refused()
    session = open_session(model, None, None)  # the explorer: no sliders, map or interpolation for it
    with pytest.raises(vae_jax.UserError, match="no sliders: a code is one of the codebook's vectors"):
        session.show(np.zeros((1, LATENT)), None)
