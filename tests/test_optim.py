"""The optimizer options: each changes training as documented, and the defaults are plain Adam so
that older checkpoints restore."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import vae_jax
from vae_jax import experiment, integrity, optim, runmeta
from vae_jax.config import Config
from vae_jax.errors import UserError

PARAMS = {"w": jnp.ones((3, 4)), "b": jnp.zeros(4)}


def _norm(tree) -> float:
    return float(optax.global_norm(tree))


def test_the_schedules_give_the_documented_rates():
    cosine = optim.learning_rate(Config(lr=1e-2, lr_schedule="cosine", warmup_steps=10), total_steps=110)
    np.testing.assert_allclose(
        [cosine(0), cosine(5), cosine(10), cosine(60), cosine(110)], [0, 5e-3, 1e-2, 5e-3, 0], atol=1e-7
    )
    constant = optim.learning_rate(Config(lr=1e-2, warmup_steps=4), total_steps=100)
    np.testing.assert_allclose([constant(0), constant(2), constant(4), constant(99)], [0, 5e-3, 1e-2, 1e-2], atol=1e-9)
    assert optim.learning_rate(Config(lr=1e-2), 100) == 1e-2


def test_clipping_bounds_the_gradient_the_optimizer_sees():
    grads = jax.tree.map(lambda p: jnp.full_like(p, 10.0), PARAMS)  # global norm 40
    for clip, expected in ((0.0, 0.1 * 40), (1.0, 0.1 * 1)):  # Adam's first moment: (1 - b1) * gradient
        opt = optim.make_optimizer(Config(clip_norm=clip))
        _, state = opt.update(grads, opt.init(PARAMS), PARAMS)
        adam_state = state[1] if clip else state
        assert _norm(adam_state[0].mu) == pytest.approx(expected, rel=1e-5)


def test_weight_decay_shrinks_params_without_a_gradient():
    opt = optim.make_optimizer(Config(lr=0.1, weight_decay=0.5))
    updates, _ = opt.update(jax.tree.map(jnp.zeros_like, PARAMS), opt.init(PARAMS), PARAMS)
    np.testing.assert_allclose(updates["w"], -0.1 * 0.5 * PARAMS["w"], rtol=1e-6)


def test_the_defaults_are_plain_adam_so_older_checkpoints_restore():
    default = optim.make_optimizer(Config()).init(PARAMS)
    assert jax.tree.structure(default) == jax.tree.structure(optax.adam(1e-3).init(PARAMS))
    assert optim.ema_params(default) is None


def test_ema_params_follow_the_recurrence_and_are_what_load_returns(tmp_path):
    opt = optim.make_optimizer(Config(lr=0.1, ema=0.5))
    state = opt.init(PARAMS)
    grads = jax.tree.map(jnp.ones_like, PARAMS)
    updates, state = opt.update(grads, state, PARAMS)
    new = optax.apply_updates(PARAMS, updates)
    np.testing.assert_allclose(optim.ema_params(state)["w"], 0.5 * PARAMS["w"] + 0.5 * new["w"], rtol=1e-6)

    config = Config(hidden=(16,), latent_dim=2, epochs=1, batch_size=200, eval_k=1, ema=0.9, workdir=str(tmp_path))
    experiment.train(config)
    ema, raw = vae_jax.load(str(tmp_path)), vae_jax.load(str(tmp_path), ema=False)
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(ema.params), jax.tree.leaves(raw.params)))
    half = dataclasses.replace(config, workdir=str(tmp_path / "resumed"))
    experiment.train(dataclasses.replace(half, epochs=1))
    experiment.train(dataclasses.replace(half, epochs=2))
    experiment.train(dataclasses.replace(config, workdir=str(tmp_path / "straight"), epochs=2))
    resumed, straight = vae_jax.load(half.workdir), vae_jax.load(str(tmp_path / "straight"))
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(straight.params)))


@pytest.mark.parametrize(
    "flag, value",
    [("ema", 1.0), ("ema", -0.1), ("clip_norm", -1.0), ("warmup_steps", -1), ("skip_threshold", 0.5)]
    + [("skip_threshold", -2.0), ("groups", -1)],
)
def test_out_of_range_options_are_refused(flag, value):
    with pytest.raises(UserError):
        Config(**{flag: value})


NEW_FIELDS = (
    *("image_size", "matmul_precision", "lr_schedule", "warmup_steps", "weight_decay", "clip_norm", "ema"),
    *("groups", "skip_threshold"),
)


@pytest.mark.slow  # three runs; tests/fixtures holds checkpoints of earlier versions for the quick tier
def test_a_checkpoint_written_before_these_options_loads_and_resumes(tmp_path):
    """Its meta has none of the newer config fields, nor the training-set size and digest."""
    import json
    import os

    config = Config(hidden=(16,), latent_dim=2, epochs=1, batch_size=200, eval_k=1, workdir=str(tmp_path / "old"))
    experiment.train(config)
    for step in (d for d in os.listdir(config.workdir) if d.isdigit()):
        path = os.path.join(config.workdir, step, "meta", "metadata")
        meta = json.load(open(path))
        meta["config"] = {k: v for k, v in meta["config"].items() if k not in NEW_FIELDS}
        meta = {k: v for k, v in meta.items() if k not in ("train_size", "train_digest", "sha256")}
        json.dump(integrity.sealed(meta, runmeta.SEAL), open(path, "w"))  # sealed again: only the fields are old
    os.remove(os.path.join(config.workdir, "config.json"))
    assert vae_jax.load(config.workdir).config == config.resolved()
    experiment.train(dataclasses.replace(config, epochs=2))  # resumes: same config, same data source
    straight = dataclasses.replace(config, epochs=2, workdir=str(tmp_path / "straight"))
    experiment.train(straight)
    a, b = vae_jax.load(config.workdir), vae_jax.load(straight.workdir)
    assert a.step == b.step and all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params))
    )


def test_a_gradient_far_above_its_running_level_is_skipped_and_a_lasting_rise_is_followed():
    opt = optim.make_optimizer(Config(skip_threshold=5.0))
    state, params = opt.init(PARAMS), PARAMS
    grad = jax.tree.map(jnp.ones_like, PARAMS)
    step = jax.jit(opt.update)
    for _ in range(optim.SKIP_WARMUP_STEPS):
        updates, state = step(grad, state, params)
        params = optax.apply_updates(params, updates)
        assert not bool(optim.spike_skipped(state))
    before_state, before = state, params
    updates, state = step(jax.tree.map(lambda g: 100 * g, grad), state, params)  # 100x the usual norm
    assert bool(optim.spike_skipped(state))
    assert _norm(updates) == 0.0  # nothing moves, and Adam's moments are those before the spike
    inner_before, inner_after = before_state.inner, state.inner
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(inner_before), jax.tree.leaves(inner_after)))
    updates, state = step(jax.tree.map(lambda g: 3 * g, grad), state, before)  # 3x: under the threshold
    assert not bool(optim.spike_skipped(state)) and _norm(updates) > 0
    skipped = []
    for _ in range(100):  # the norms stay 100x higher: the level follows and steps resume
        updates, state = step(jax.tree.map(lambda g: 100 * g, grad), state, before)
        skipped.append(bool(optim.spike_skipped(state)))
    assert skipped[0] and not any(skipped[-10:]), skipped
    assert optim.spike_skipped(optim.make_optimizer(Config()).init(PARAMS)) is None
