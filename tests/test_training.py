"""Training on the real MNIST sample, checkpoints, resume, config checks, non-finite losses."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import vae_jax
from vae_jax import data, experiment, training
from vae_jax.config import Config
from vae_jax.data.pixels import eval_images
from vae_jax.errors import NonFiniteLoss, UserError
from vae_jax.evaluation import split_metrics
from vae_jax.families import build
from vae_jax.objectives.vae import ELBO
from vae_jax.training import init_state, make_train_steps, run_keys

SMALL = dict(hidden=(200,), latent_dim=10, epochs=1, batch_size=100)


def _leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two epochs of the default model on the MNIST sample."""
    workdir = str(tmp_path_factory.mktemp("run"))
    config = Config(epochs=2, workdir=workdir)
    metrics = experiment.train(config)
    return config, metrics


def test_two_epochs_lower_test_neg_elbo_far_below_initialisation(trained):
    config, metrics = trained
    test = data.load("mnist").test_images
    vae = build(config, (28, 28, 1))
    init = vae.init(run_keys(config.seed)["init"])
    before = -split_metrics(vae, init, eval_images(jnp.asarray(test), True), jax.random.key(0))["elbo"]
    after = -metrics["test_elbo"]
    assert before > 450 and after < 200 and before - after > 250, (before, after)
    lines = [json.loads(l) for l in open(os.path.join(config.workdir, "metrics.jsonl"))]
    assert [l["epoch"] for l in lines] == [1, 2, 2]
    final = lines[-1].pop("evaluation")
    assert final["k"] == config.eval_k and final["data"]["split"] == "test" and final["data"]["size"] == 1000
    assert final["nll"] < -metrics["test_elbo"] + 5  # the k-sample bound is tighter than the ELBO
    lines = lines[:2]
    assert lines[-1]["test_elbo"] == pytest.approx(lines[-1]["test_recon"] - lines[-1]["test_kl"], abs=1e-3)
    for png in ("samples.png", "reconstructions.png", "curves.png", "history/epoch_0002.png"):
        assert os.path.getsize(os.path.join(config.workdir, png)) > 1000
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(config.workdir))


def test_checkpoint_round_trip_through_load(trained):
    config, _ = trained
    model = vae_jax.load(config.workdir)
    assert model.config == config.resolved() and model.epoch == 2 and model.step == 62  # 2 epochs of 31 steps
    x = eval_images(jnp.asarray(data.load("mnist").test_images[:16]), True)
    again = vae_jax.load(config.workdir)
    assert _leaves_equal(model.params, again.params)
    np.testing.assert_array_equal(model.encode(x)[0], again.encode(x)[0])
    imgs = model.sample(jax.random.key(0), 5)
    assert imgs.shape == (5, 28, 28, 1) and float(imgs.min()) >= 0 and float(imgs.max()) <= 1
    assert not np.array_equal(imgs, model.sample(jax.random.key(1), 5))
    e = model.elbo(jax.random.key(0), x)
    assert e.shape == (16,) and np.all(np.asarray(e) < 0)
    assert model.decode(jnp.zeros((2, 20))).shape == (2, 28, 28, 1)
    best = vae_jax.load(config.workdir, best=True)
    assert best.step == 62  # the second epoch has the better test ELBO


def test_resume_gives_the_same_params_as_never_stopping(tmp_path, trained):
    config, _ = trained
    half = dataclasses.replace(config, epochs=1, workdir=str(tmp_path))
    experiment.train(half)
    assert vae_jax.load(str(tmp_path)).epoch == 1
    experiment.train(dataclasses.replace(half, epochs=2))
    resumed, straight = vae_jax.load(str(tmp_path)), vae_jax.load(config.workdir)
    assert resumed.step == straight.step == 62
    assert _leaves_equal(resumed.params, straight.params)


def test_a_different_config_is_refused_and_fresh_moves_the_old_run_aside(tmp_path):
    config = Config(**SMALL, workdir=str(tmp_path))
    experiment.train(config)
    other = dataclasses.replace(config, latent_dim=5, lr=1e-2)
    with pytest.raises(UserError, match=r"latent_dim: 10 -> 5.*lr: 0.001 -> 0.01"):
        experiment.train(other)
    experiment.train(other, fresh=True)
    moved = [e for e in os.listdir(tmp_path) if e.startswith("previous-")]
    assert len(moved) == 1 and "metrics.jsonl" in os.listdir(tmp_path / moved[0])
    assert vae_jax.load(str(tmp_path)).config.latent_dim == 5


def test_non_finite_loss_stops_without_touching_the_last_checkpoint(tmp_path, monkeypatch):
    config = Config(**SMALL, workdir=str(tmp_path))
    experiment.train(config)
    before = vae_jax.load(str(tmp_path))
    real = make_train_steps

    def poisoned(*args, **kwargs):
        steps = real(*args, **kwargs)

        def skipped(fn):
            def every_step_skipped(*a, **k):
                state, stats = fn(*a, **k)
                return state, {**stats, "skipped": jnp.ones_like(stats["skipped"])}

            return every_step_skipped

        return steps._replace(run=skipped(steps.run), run_batch=skipped(steps.run_batch))

    monkeypatch.setattr(training, "make_train_steps", poisoned)
    with pytest.raises(NonFiniteLoss, match="10 consecutive steps with a non-finite loss"):
        experiment.train(dataclasses.replace(config, epochs=2))
    after = vae_jax.load(str(tmp_path))
    assert after.step == before.step and _leaves_equal(after.params, before.params)


LIKELIHOODS = ["bernoulli", "gaussian", "gaussian-learned", "discretized-logistic", "logistic-mixture"]


@pytest.mark.parametrize(
    "model, likelihood, shape",
    [(m, lik, (28, 28, 1)) for m in ("mlp", "conv", "resnet") for lik in LIKELIHOODS]
    + [
        (m, lik, shape)
        for m in ("conv", "resnet")
        for lik in ("bernoulli", "logistic-mixture")
        for shape in ((32, 32, 3), (64, 64, 3))
    ],
)
@pytest.mark.slow
def test_every_model_and_likelihood_trains_on_supported_shapes(model, likelihood, shape):
    config = Config(
        model=model, likelihood=likelihood, hidden=(64,), channels=(8, 16), latent_dim=4, batch_size=8, mixtures=3
    )
    vae = build(config, shape)
    optimizer = optax.adam(3e-3)
    state = init_state(vae, optimizer, ELBO(), jax.random.key(0))
    images = jax.random.randint(jax.random.key(3), (8, *shape), 0, 256).astype(jnp.uint8)
    same_batch = jnp.tile(jnp.arange(8), 10)  # every step sees the same 8 images
    run = make_train_steps(vae, optimizer, ELBO(), likelihood == "bernoulli", 8).run
    state, stats = run(state, images, None, same_batch, jax.random.key(1), jnp.int32(0), n_steps=10)
    losses = stats["loss"]
    assert np.all(np.isfinite(np.asarray(losses))) and int(state.step) == 10
    assert float(losses[-3:].mean()) < float(losses[:3].mean())


@pytest.mark.parametrize("model", ["conv", "resnet"])
def test_conv_and_resnet_reject_unsupported_image_shapes(model):
    with pytest.raises(UserError, match="divisible by 4.*28x28x1, 32x32x3, 64x64x3.*got 30x30x1"):
        build(Config(model=model), (30, 30, 1))


def test_static_binarization_and_beta_run(tmp_path):
    config = Config(**SMALL, binarize="static", beta=0.5, workdir=str(tmp_path))
    metrics = experiment.train(config)
    assert np.isfinite(metrics["test_elbo"]) and metrics["test_elbo"] < 0


def test_pictures_are_drawn_in_the_background_and_their_failures_surface(tmp_path, monkeypatch):
    from vae_jax import outputs

    metrics = {"epoch": 1, "step": 9, "train_loss": 9.0, "test_elbo": -9.0, "test_recon": -8.0, "test_kl": 1.0}
    images, samples = np.full((32, 4, 4, 1), 0.5), np.zeros((64, 4, 4, 1))
    with outputs.RunOutputs(str(tmp_path), enabled=True) as out:
        out.epoch({**metrics, "seconds": 0.1}, images, images, samples)
    for name in ("samples.png", "reconstructions.png", "curves.png", "history/epoch_0001.png", "metrics.jsonl"):
        assert (tmp_path / name).exists(), name
    monkeypatch.setattr(outputs, "save_png", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    out = outputs.RunOutputs(str(tmp_path), enabled=True)
    out.epoch({**metrics, "epoch": 2, "seconds": 0.1}, images, images, samples)  # returns at once
    assert len(open(tmp_path / "metrics.jsonl").readlines()) == 2  # the metrics line is written at once
    with pytest.raises(OSError, match="No space left"):
        out.close()


def test_curves_are_redrawn_at_most_every_so_often_and_brought_up_to_date_at_the_end(tmp_path, monkeypatch):
    from vae_jax import outputs

    drawn = []
    real = outputs.training_curves
    monkeypatch.setattr(outputs, "training_curves", lambda records: drawn.append(len(records)) or real(records))
    monkeypatch.setattr(outputs, "CURVES_EVERY_S", 3600.0)
    images, samples = np.full((32, 4, 4, 1), 0.5), np.zeros((64, 4, 4, 1))
    with outputs.RunOutputs(str(tmp_path), enabled=True) as out:
        for epoch in (1, 2, 3):
            metrics = {"epoch": epoch, "step": 9 * epoch, "train_loss": 9.0, "test_elbo": -9.0, "test_recon": -8.0}
            out.epoch({**metrics, "test_kl": 1.0, "seconds": 0.1}, images, images, samples)
            out._worker.submit(lambda: None).result()  # this epoch's pictures are done
        assert drawn == [1] and (tmp_path / "curves.png").exists()  # the first epoch's, then not again
    assert drawn == [1, 3]  # closing the run draws all three epochs
    monkeypatch.setattr(outputs, "CURVES_EVERY_S", 0.0)
    with outputs.RunOutputs(str(tmp_path), enabled=True) as out:
        out.epoch({**metrics, "epoch": 4, "test_kl": 1.0, "seconds": 0.1}, images, images, samples)
    assert drawn == [1, 3, 4]  # drawn with its epoch; nothing left to draw at the end


def test_conv_nets_take_one_step_per_call_only_on_cpus_and_a_scan_trains_the_same():
    assert training.steps_per_call(True, "device", 468, "cpu") == 1
    assert training.steps_per_call(True, "device", 468, "gpu") == training.steps_per_call(False, "device", 468, "cpu")
    assert training.steps_per_call(True, "device", 468, "tpu") == 47
    assert training.steps_per_call(False, "host", 468, "gpu") == 1
    assert training.steps_per_call(True, "stream", 468, "gpu") == 1
    # what a GPU runs (three conv steps in one lax.scan) gives what a CPU runs (three calls)
    vae = build(Config(model="conv", channels=(8, 16), latent_dim=4, batch_size=4), (28, 28, 1))
    optimizer = optax.adam(3e-3)
    images = jax.random.randint(jax.random.key(3), (12, 28, 28, 1), 0, 256).astype(jnp.uint8)
    run = make_train_steps(vae, optimizer, ELBO(), True, 4).run
    args = (images, None, jax.random.permutation(jax.random.key(2), 12), jax.random.key(1))
    scanned, scan_stats = run(init_state(vae, optimizer, ELBO(), jax.random.key(0)), *args, jnp.int32(0), n_steps=3)
    state, losses = init_state(vae, optimizer, ELBO(), jax.random.key(0)), []
    for i in range(3):
        state, stats = run(state, *args, jnp.int32(i), n_steps=1)
        losses.append(float(stats["loss"][0]))
    np.testing.assert_allclose(np.asarray(scan_stats["loss"]), losses, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(scanned.params), jax.tree.leaves(state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
