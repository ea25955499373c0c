"""The models beyond the plain VAE: CVAE, autoencoder, IWAE, warm-up, free bits, 8-bit likelihoods."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from linear_gaussian import linear_gaussian

import vae_jax
from vae_jax import data, experiment, pictures
from vae_jax.config import Config
from vae_jax.data import tfds_source
from vae_jax.distributions import DiscretizedLogistic, DiscretizedLogisticMixture
from vae_jax.errors import UserError
from vae_jax.objectives import Batch, iwae_bound, per_example
from vae_jax.objectives.vae import ELBO, kl_weight

PATTERNS = np.array(
    [np.kron(np.eye(2)[[i // 2]].T @ np.eye(2)[[i % 2]], np.ones((4, 4))) for i in range(4)]
)  # 4 quadrants, 8x8


@pytest.fixture(scope="module")
def patterns_npz(tmp_path_factory):
    """400 8x8 images; the label (0..3) fully determines which quadrant is lit."""
    labels = np.arange(400) % 4
    path = tmp_path_factory.mktemp("data") / "quadrants.npz"
    np.savez(path, images=(PATTERNS[labels] * 255).astype(np.uint8), labels=labels)
    return str(path)


@pytest.mark.slow
def test_cvae_samples_follow_their_label(patterns_npz, tmp_path):
    config = Config(
        dataset=patterns_npz,
        conditional=True,
        hidden=(64,),
        latent_dim=2,
        epochs=40,
        batch_size=30,
        lr=3e-3,
        workdir=str(tmp_path),
        eval_k=5,
    )
    experiment.train(config)
    model = vae_jax.load(str(tmp_path))
    means = []
    for label in range(4):
        imgs = np.asarray(model.sample(jax.random.key(label), 20, labels=label))[..., 0]
        distances = [np.abs(imgs - p).mean() for p in PATTERNS]
        assert int(np.argmin(distances)) == label, (label, distances)
        means.append(imgs.mean(0))
    assert min(np.abs(a - b).mean() for i, a in enumerate(means) for b in means[i + 1 :]) > 0.2
    grid = pictures.samples(model)  # no label: one row of 8 per class
    assert grid.shape[0] == 4 * (8 + 2) + 2 and grid.shape[1] == 8 * (8 + 2) + 2
    with pytest.raises(UserError, match="conditional model"):
        model.sample(jax.random.key(0), 3)
    result = model.evaluate(
        data.load(patterns_npz).test_images / 255.0, k=10, labels=data.load(patterns_npz).test_labels
    )
    assert result["conditional"] is True and np.isfinite(result["nll"])


def test_iwae_bound_is_above_the_elbo_and_grows_with_k():
    vae, params, log_px, _, draw = linear_gaussian()
    proposal = params(mean_scale=0.6, log_var_shift=1.0)
    xs = jnp.asarray(draw(400))
    key = jax.random.key(0)
    bounds = [float(jnp.mean(per_example(iwae_bound, vae, proposal, xs, key, None, k))) for k in (1, 5, 50)]
    elbo = float(jnp.mean(vae_jax.batch_elbo(vae, proposal, xs, key).elbo))
    truth = float(np.mean([log_px(x[:, 0, 0]) for x in np.asarray(xs)]))
    assert elbo < bounds[1] < bounds[2] < truth, (elbo, bounds, truth)
    assert abs(bounds[0] - elbo) < 0.1  # k = 1 is an ELBO estimate too
    assert bounds[0] < bounds[1]


def test_free_bits_zero_the_kl_gradient_of_dimensions_below_the_floor():
    vae, params, _, _, draw = linear_gaussian(scales=(2.0, 0.3))
    p = params()
    xs, key = jnp.asarray(draw(64)), jax.random.key(0)
    kl_dims = np.asarray(jax.vmap(lambda x: vae_jax.kl_standard_normal(*vae.encode(p, x[None])))(xs)).mean((0, 1))
    floor = float(np.mean(kl_dims))  # between the two dimensions' KLs
    assert kl_dims[1] < floor < kl_dims[0]

    def grad(objective):
        return jax.grad(lambda q: objective.loss(vae, q, {}, Batch(xs, None, len(xs)), key, 0)[0])(p)["encoder"][
            "Dense_0"
        ]

    free, no_kl, full = grad(ELBO(free_bits=floor)), grad(ELBO(beta=0.0)), grad(ELBO())
    # columns 0, 1: means of dims 0, 1; columns 2, 3: their log variances
    for col in (1, 3):  # dimension 1 is below the floor: only the reconstruction pulls on it
        np.testing.assert_allclose(free["kernel"][:, col], no_kl["kernel"][:, col], atol=1e-5)
    for col in (0, 2):  # dimension 0 is above: its KL gradient is the full one
        np.testing.assert_allclose(free["kernel"][:, col], full["kernel"][:, col], atol=1e-5)
        assert not np.allclose(free["kernel"][:, col], no_kl["kernel"][:, col], atol=1e-3)


def test_kl_warmup_schedule():
    assert [float(kl_weight(s, 100)) for s in (0, 25, 50, 100, 250)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert kl_weight(0, 0) == 1.0


@pytest.mark.parametrize("head", [DiscretizedLogistic(), DiscretizedLogisticMixture(4)])
def test_8bit_likelihoods_sum_to_one_over_the_256_values(head):
    values = jnp.arange(256, dtype=jnp.float32) / 255.0
    rng = np.random.default_rng(0)
    for _ in range(5):
        raw = rng.normal(size=head.n_params) * 2
        if isinstance(head, DiscretizedLogistic):
            raw[1] = rng.uniform(-7, 2)
        out = jnp.broadcast_to(jnp.asarray(raw, jnp.float32), (256, head.n_params))
        logp = jax.vmap(lambda o, x: head.log_prob(o[None], x[None]))(out, values)
        assert abs(float(jnp.exp(jax.nn.logsumexp(logp))) - 1.0) < 1e-4
        assert np.all(np.isfinite(np.asarray(logp)))


def test_autoencoder_reports_no_likelihood(patterns_npz, tmp_path):
    config = Config(
        dataset=patterns_npz, objective="ae", hidden=(32,), latent_dim=2, epochs=2, batch_size=30, workdir=str(tmp_path)
    )
    metrics = experiment.train(config)
    assert "test_elbo" not in metrics and "test_recon" in metrics
    assert metrics["evaluation"]["autoencoder"] and "no likelihood" in metrics["evaluation"]["note"]
    assert "nll" not in metrics["evaluation"]
    assert vae_jax.load(str(tmp_path)).sample(jax.random.key(0), 4).shape == (4, 8, 8, 1)


@pytest.mark.parametrize(
    "options",
    [
        dict(conditional=True),
        dict(objective="ae"),
        dict(objective="iwae", k=3),
        dict(kl_warmup_epochs=2),
        dict(free_bits=0.25),
        dict(model="resnet", channels=(8, 8), depth=2),
        dict(model="conv", likelihood="logistic-mixture", mixtures=3),
        dict(likelihood="discretized-logistic"),
    ],
)
@pytest.mark.slow
def test_each_option_round_trips_through_a_checkpoint(patterns_npz, tmp_path, options):
    config = Config(
        dataset=patterns_npz,
        hidden=(16,),
        latent_dim=2,
        epochs=1,
        batch_size=60,
        workdir=str(tmp_path),
        eval_k=2,
        **options,
    )
    experiment.train(config)
    model = vae_jax.load(str(tmp_path))
    assert model.config == config.resolved()  # saved with its likelihood made concrete
    labels = np.zeros(3, int) if config.conditional else None
    x = data.load(patterns_npz).test_images[:3] / 255.0
    again = vae_jax.load(str(tmp_path))
    np.testing.assert_array_equal(model.reconstruct(x, labels), again.reconstruct(x, labels))
    with pytest.raises(UserError, match="different config"):
        experiment.train(dataclasses.replace(config, latent_dim=3))


def test_celeb_a_is_centre_cropped_to_64x64(prepared_tfds):
    with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = data.load("celeb_a")
    assert ds.train_images.shape == (3, 64, 64, 3) and ds.train_images.dtype == np.uint8
    image = np.zeros((218, 178, 3), np.uint8)
    image[39:179, 19:159] = 200  # exactly the central 140x140 square
    np.testing.assert_array_equal(tfds_source.centre_crop_resize(image, 140, 64), np.full((64, 64, 3), 200, np.uint8))


def test_npz_dataset_path_with_an_unsupported_shape_names_the_supported_ones(tmp_path):
    path = tmp_path / "odd.npz"
    np.savez(path, images=np.zeros((20, 30, 30), np.uint8))
    with pytest.raises(UserError, match="28x28x1, 32x32x3, 64x64x3.*got 30x30x1"):
        experiment.train(Config(dataset=str(path), model="conv", workdir=str(tmp_path / "w")))
