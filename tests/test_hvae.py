"""The hierarchical VAE: its maths against a one-latent VAE and a closed-form hierarchy, its shapes,
and a run through the CLI (train, resume, sample, evaluate) and the API."""

import dataclasses
import json
import os
import struct
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from test_cli import assert_one_line_error, run

import vae_jax
from vae_jax import experiment
from vae_jax.config import Config
from vae_jax.distributions import Gaussian
from vae_jax.errors import UserError
from vae_jax.evaluation import evaluate, split_metrics
from vae_jax.families import build
from vae_jax.families.hvae import HVAE
from vae_jax.families.vae import VAE
from vae_jax.objectives import elbo, elbo_parts, iwae_bound, log_importance_weights, per_example

SMALL = dict(model="hvae", channels=(8, 16), latent_dim=4, batch_size=100)


def _perturbed(params, key, scale=0.5):
    """params with every leaf moved by noise of about `scale` / sqrt(fan-in): heads that start at
    zero become non-trivial, activations stay of order one."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    moved = [
        p + scale * jax.random.normal(k, p.shape) / np.sqrt(np.prod(p.shape[:-1]) or 1) for p, k in zip(leaves, keys)
    ]
    return tree.unflatten(moved)


@dataclasses.dataclass(frozen=True, eq=False)
class OneLatent(VAE):
    """The one-latent VAE whose encoder and decoder are a one-group hierarchy's networks."""

    hvae: Any = None

    def gaussian(self, params, x, c=None):
        return (*self.hvae.encode(params, x), None)

    def decode(self, params, z, c=None):
        return self.hvae.decode(params, z)


def test_one_group_gives_exactly_the_numbers_of_the_one_latent_elbo():
    hvae = build(Config(**SMALL, groups=1), (28, 28, 1))
    assert len(hvae.groups) == 1 and hvae.group_shapes == ((7, 7, 4),)
    params = _perturbed(hvae.init(jax.random.key(0)), jax.random.key(1))
    one = OneLatent(None, None, hvae.likelihood, hvae.latent_dim, hvae.image_shape, hvae=hvae)
    x = (jax.random.uniform(jax.random.key(2), (28, 28, 1)) > 0.5).astype(jnp.float32)
    key = jax.random.key(3)
    ours, theirs = elbo(hvae, params, x, key), elbo(one, params, x, jax.random.fold_in(key, 0))
    assert float(ours.kl) > 1.0  # not the trivial q = p of fresh parameters
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(float(a), float(b), rtol=1e-6)
    ours_w = log_importance_weights(hvae, params, x, key, 16)
    theirs_w = log_importance_weights(one, params, x, jax.random.fold_in(key, 0), 16)
    for a, b in zip(ours_w, theirs_w):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-4)


def test_each_group_kl_is_the_expected_log_ratio_of_posterior_and_prior():
    """Analytic KL given the groups above, averaged over draws, equals E_q[log q(z) - log p(z)]."""
    hvae = build(Config(**SMALL), (28, 28, 1))
    params = _perturbed(hvae.init(jax.random.key(0)), jax.random.key(5))
    x = (jax.random.uniform(jax.random.key(2), (28, 28, 1)) > 0.5).astype(jnp.float32)
    draw = jax.jit(lambda p, k: hvae.posterior(p, x, k, 4000))(params, jax.random.key(7))
    kl = np.asarray(draw.kl).sum(1)
    log_ratio = np.asarray(draw.log_q - draw.log_p)
    assert np.all(np.isfinite(kl)) and kl.mean() > 5.0
    assert abs(log_ratio.mean() - kl.mean()) < 4 * log_ratio.std() / np.sqrt(len(log_ratio))
    # the top group's KL does not depend on the draw; a group below it does (it sees the draw above)
    top = np.asarray(draw.kl)[:, : hvae.groups[0]].sum(1)
    assert np.ptp(top) < 1e-3 * top.mean() and np.ptp(kl - top) > 0.1


class LinearBottomUp(nn.Module):
    @nn.compact
    def __call__(self, x):
        return [x.reshape(x.shape[0], -1)]


class LinearTopDown(nn.Module):
    """z1 ~ N(0, I); p(z2|z1) = N(A z1 + a, diag(exp(v))); p(x|z2) = N(W z2 + b, sigma^2 I); the
    posterior heads are linear too (any valid q)."""

    d1: int
    d2: int
    dim: int

    @nn.compact
    def __call__(self, n, feats, choose):
        feat = None if feats is None else jnp.broadcast_to(feats[0], (n, self.dim))
        post1 = None if feat is None else nn.Dense(2 * self.d1, name="q1")(feat).reshape(n, 1, 1, -1)
        z1 = choose(0, None, post1).reshape(n, self.d1)
        prior2 = nn.Dense(2 * self.d2, name="p2")(z1).reshape(n, 1, 1, -1)
        post2 = None if feat is None else nn.Dense(2 * self.d2, name="q2")(jnp.concatenate([z1, feat], -1))
        z2 = choose(1, prior2, None if post2 is None else post2.reshape(n, 1, 1, -1)).reshape(n, self.d2)
        return nn.Dense(self.dim, name="x")(z2).reshape(n, self.dim, 1, 1, 1)


def _linear_hierarchy(d1=2, d2=3, dim=5, sigma=0.5):
    rng = np.random.default_rng(0)
    a_mat, a_vec, v = rng.normal(size=(d2, d1)), rng.normal(size=d2), rng.normal(size=d2) * 0.3
    w, b = rng.normal(size=(dim, d2)), rng.normal(size=dim)
    hvae = HVAE(LinearBottomUp(), LinearTopDown(d1, d2, dim), Gaussian(sigma), (dim, 1, 1), ((1, 1, d1), (1, 1, d2)))
    cov = w @ (a_mat @ a_mat.T + np.diag(np.exp(v))) @ w.T + sigma**2 * np.eye(dim)
    mean = w @ a_vec + b
    # q: the exact conditional means with the diagonals of the exact conditional covariances (a
    # valid, slightly imperfect posterior); the heads of group 2 are relative to its prior
    m1 = a_mat.T @ w.T @ np.linalg.inv(cov)  # E[z1|x] = m1 (x - mean)
    c1 = np.eye(d1) - m1 @ w @ a_mat
    c2 = np.linalg.inv(np.diag(np.exp(-v)) + w.T @ w / sigma**2)  # Cov[z2|z1, x]
    # E[z2|z1, x] - (A z1 + a) = c2 (W^T (x - b) / sigma^2 + S^-1 (A z1 + a)) - (A z1 + a)
    shift = c2 @ np.diag(np.exp(-v)) - np.eye(d2)
    f32 = lambda m: jnp.asarray(m, jnp.float32)  # noqa: E731
    head = lambda kernel, bias, log_var: {  # noqa: E731
        "kernel": f32(np.concatenate([kernel, np.zeros((kernel.shape[0], len(log_var)))], 1)),
        "bias": f32(np.concatenate([bias, log_var])),
    }
    params = {
        "encoder": {},
        "decoder": {
            "q1": head(m1.T, -m1 @ mean, np.log(np.diag(c1))),
            "p2": head(a_mat.T, a_vec, v),
            "q2": head(
                np.concatenate([(shift @ a_mat).T, (c2 @ w.T / sigma**2).T]),
                shift @ a_vec - c2 @ w.T @ b / sigma**2,
                np.log(np.diag(c2)) - v,
            ),
            "x": {"kernel": f32(w.T), "bias": f32(b)},
        },
    }

    def draw(n, seed=1):
        r = np.random.default_rng(seed)
        z1 = r.normal(size=(n, d1))
        z2 = z1 @ a_mat.T + a_vec + np.exp(v / 2) * r.normal(size=(n, d2))
        return (z2 @ w.T + b + sigma * r.normal(size=(n, dim))).reshape(n, dim, 1, 1).astype(np.float32)

    return hvae, params, lambda xs: stats.multivariate_normal.logpdf(xs.reshape(len(xs), -1), mean, cov), draw


def test_two_group_linear_gaussian_estimate_converges_to_the_closed_form_and_bounds_stay_below():
    hvae, params, log_px, draw = _linear_hierarchy()
    xs = draw(100)
    truth = log_px(xs).mean()
    errors, estimates = [], []
    for k in (1, 10, 2000):
        out = evaluate(hvae, params, xs, jax.random.key(k), k=k, batch_size=50)
        errors.append(abs(-out["nll"] - truth))
        estimates.append(-out["nll"])
        if k > 1:  # the bound never exceeds the estimate (with k = 1 both are one-sample ELBOs)
            assert out["elbo"] < -out["nll"], (k, out["elbo"], out["nll"])
        assert out["groups"] == [2, 3] and len(out["kl_per_group"]) == 2
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.05, (errors, truth)
    bounds = [float(per_example(iwae_bound, hvae, params, xs, jax.random.key(9), None, k).mean()) for k in (1, 8, 64)]
    assert bounds[0] < bounds[1] < bounds[2] <= estimates[2] + 0.02, (bounds, estimates)


@pytest.mark.parametrize(
    "shape, groups",
    [
        ((28, 28, 1), [(7, 7), (14, 14)]),
        ((32, 32, 3), [(8, 8)] * 2 + [(16, 16)] * 2),
        ((64, 64, 3), [(16, 16)] * 3 + [(32, 32)] * 3),
    ],
)
@pytest.mark.slow
def test_default_groups_per_image_size_and_output_shapes(shape, groups):
    hvae = build(Config(**SMALL, likelihood="logistic-mixture", mixtures=2), shape)
    assert [s[:2] for s in hvae.group_shapes] == groups
    params = hvae.init(jax.random.key(0))
    x = jnp.full(shape, 0.5)
    draw = hvae.posterior(params, x, jax.random.key(1), 3)
    assert draw.out.shape == (3, *shape, hvae.likelihood.n_params) and draw.kl.shape == (3, hvae.latent_dim)
    assert hvae.generate(params, jax.random.key(2), 2, None, [1.0] * len(groups)).shape == (2, *draw.out.shape[1:])
    with pytest.raises(UserError, match="one per latent group"):
        hvae.generate(params, jax.random.key(2), 2, None, (1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5))


def test_hvae_flags_are_checked():
    with pytest.raises(UserError, match="unconditional"):
        Config(model="hvae", conditional=True)
    with pytest.raises(UserError, match="--groups applies to --model hvae"):
        Config(model="conv", groups=2)
    with pytest.raises(UserError, match="divisible by 4"):
        build(Config(model="hvae"), (30, 30, 1))


def _tensorboard_tags(workdir: str) -> set[str]:
    """Scalar tags in a run's TensorBoard event files (TFRecord frames of Event protos)."""
    from tensorboardX.proto import event_pb2

    tags = set()
    for name in os.listdir(workdir):
        if not name.startswith("events.out.tfevents"):
            continue
        with open(os.path.join(workdir, name), "rb") as f:
            blob = f.read()
        at = 0
        while at < len(blob):
            (length,) = struct.unpack("<Q", blob[at : at + 8])
            event = event_pb2.Event.FromString(blob[at + 12 : at + 12 + length])
            tags |= {v.tag for v in event.summary.value}
            at += 12 + length + 4
    return tags


@pytest.fixture(scope="module")
def hvae_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("hvae"))
    config = Config(**SMALL, epochs=2, workdir=workdir, eval_k=5, skip_threshold=10.0)
    return config, experiment.train(config)


@pytest.mark.slow
def test_hvae_trains_and_reports_kl_and_active_units_per_group(hvae_run):
    config, metrics = hvae_run
    records = [json.loads(line) for line in open(os.path.join(config.workdir, "metrics.jsonl"))]
    first, second = records[0], records[1]
    assert second["test_elbo"] > first["test_elbo"]
    for prefix in ("train_kl_group", "test_kl_group", "test_active_group"):
        assert {f"{prefix}1", f"{prefix}2"} <= set(second), sorted(second)
    assert abs(second["test_kl_group1"] + second["test_kl_group2"] - second["test_kl"]) < 1e-3
    assert second["train_spikes"] >= 0 and second["test_active_group1"] <= 7 * 7 * 4
    final = metrics["evaluation"]
    assert final["groups"] == [7 * 7 * 4, 14 * 14 * 4]
    assert sum(final["active_units_per_group"]) == final["active_units"]
    assert {"test/kl_group1", "test/active_group2", "train/kl_group2"} <= _tensorboard_tags(config.workdir)


@pytest.mark.slow
def test_hvae_resumes_exactly(tmp_path, hvae_run):
    config, _ = hvae_run
    half = dataclasses.replace(config, epochs=1, workdir=str(tmp_path))
    experiment.train(half)
    experiment.train(dataclasses.replace(half, epochs=2))
    resumed, straight = vae_jax.load(str(tmp_path)), vae_jax.load(config.workdir)
    assert resumed.step == straight.step
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(straight.params)))


@pytest.mark.slow
def test_hvae_api_samples_with_a_temperature_per_group_and_decodes_the_top_group(hvae_run):
    config, _ = hvae_run
    model = vae_jax.load(config.workdir)
    key = jax.random.key(0)
    cold, mixed = model.sample(key, 4, (1.0, 0.0)), model.sample(key, 4, (1.0, 1.0))
    assert cold.shape == (4, 28, 28, 1) and float(cold.min()) >= 0 and float(cold.max()) <= 1
    assert not np.allclose(cold, mixed)  # the lower group's temperature matters
    np.testing.assert_allclose(model.sample(key, 4, 1.0), mixed)
    with pytest.raises(UserError, match="one per latent group"):
        model.sample(key, 4, (1.0, 1.0, 1.0))
    mean, log_var = model.encode(jnp.zeros((3, 28, 28, 1)))
    assert mean.shape == log_var.shape == (3, model.vae.latent_dim)
    top = mean[:, : model.vae.groups[0]]
    assert model.decode_top(top).shape == (3, 28, 28, 1) and model.reconstruct(jnp.zeros((3, 28, 28, 1))).shape == (
        3,
        28,
        28,
        1,
    )
    result = model.evaluate(jnp.zeros((5, 28, 28, 1)), k=4)
    assert len(result["kl_per_group"]) == 2 and np.isfinite(result["nll"])


@pytest.mark.slow
def test_hvae_from_the_command_line_samples_and_evaluates(hvae_run, tmp_path):
    config, _ = hvae_run
    for mode, extra in [("samples", ["--temperature", "1,0.5"]), ("interpolate", []), ("traverse", [])]:
        out = tmp_path / f"{mode}.png"
        code, stdout, err = run("sample.py", "--ckpt", config.workdir, "--mode", mode, "--out", str(out), *extra)
        assert code == 0, err
        assert out.stat().st_size > 300
    code, _, err = run(
        "sample.py", "--ckpt", config.workdir, "--temperature", "1,1,1", "--out", str(tmp_path / "x.png")
    )
    assert_one_line_error(code, err, "one per latent group (2)")
    code, stdout, err = run("evaluate.py", "--ckpt", config.workdir, "--k", "2")
    assert code == 0, err
    assert "2 groups 7x7x4, 14x14x4" in stdout and "group 2" in stdout and "active units" in stdout


def test_a_group_whose_posterior_is_its_prior_has_no_kl_and_no_active_units():
    """Its posterior mean still varies with the groups above; active units count what q adds to p."""
    hvae = build(Config(**SMALL), (28, 28, 1))
    params = _perturbed(hvae.init(jax.random.key(0)), jax.random.key(5))
    params["decoder"]["posterior_1"] = jax.tree.map(jnp.zeros_like, params["decoder"]["posterior_1"])
    x = (jax.random.uniform(jax.random.key(2), (200, 28, 28, 1)) > 0.5).astype(jnp.float32)
    out = evaluate(hvae, params, x, jax.random.key(0), k=2)
    assert out["kl_per_group"][1] == 0.0 and out["active_units_per_group"][1] == 0
    assert out["kl_per_group"][0] > 1.0 and out["active_units_per_group"][0] > 0
    mean, _ = hvae.encode(params, x)
    assert float(mean[:, hvae.groups[0] :].var(0).max()) > 0.01  # what the plain posterior-mean measure would count


@pytest.mark.slow
def test_the_per_epoch_kl_of_each_group_is_that_group_s():
    hvae = build(Config(**SMALL), (28, 28, 1))
    params = _perturbed(hvae.init(jax.random.key(0)), jax.random.key(5))
    x = (jax.random.uniform(jax.random.key(2), (50, 28, 28, 1)) > 0.5).astype(jnp.float32)
    key = jax.random.key(4)
    split = split_metrics(hvae, params, x, key, batch_size=50)
    _, kl_dims = per_example(elbo_parts, hvae, params, x, jax.random.fold_in(key, 0))
    by_hand = np.asarray(kl_dims).mean(0)
    top = hvae.groups[0]
    np.testing.assert_allclose(
        [split["kl_group1"], split["kl_group2"]], [by_hand[:top].sum(), by_hand[top:].sum()], rtol=1e-4
    )
    assert split["kl_group1"] > 1.0 and split["kl_group2"] > 1.0
