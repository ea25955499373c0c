"""TrainState, the jitted training steps and the on-device epoch. Knows datasets only as arrays.

Keys are derived, never threaded: the noise of step s in epoch e comes from
fold_in(split(fold_in(train_key, e))[1], s), so a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vae_jax.objectives import Objective
from vae_jax.parallel import Layout
from vae_jax.vae import VAE, Params


class TrainState(NamedTuple):
    params: Params
    opt_state: Any
    step: jax.Array  # int32 scalar: optimisation steps taken


def init_state(vae: VAE, optimizer: optax.GradientTransformation, key: jax.Array) -> TrainState:
    params = vae.init(key)
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))


def to_unit(images: jax.Array) -> jax.Array:
    """uint8 (..., H, W, C) -> float32 in [0, 1]."""
    return images.astype(jnp.float32) / 255.0


def binarize(key: jax.Array, images: jax.Array) -> jax.Array:
    """One Bernoulli draw per pixel with probability = intensity: uint8 -> float32 in {0, 1}."""
    return jax.random.bernoulli(key, to_unit(images)).astype(jnp.float32)


def epoch_keys(train_key: jax.Array, epoch: int | jax.Array) -> tuple[jax.Array, jax.Array]:
    """(permutation key, step-key root) of one epoch."""
    k_perm, k_steps = jax.random.split(jax.random.fold_in(train_key, epoch))
    return k_perm, k_steps


@partial(jax.jit, static_argnums=2)
def epoch_permutation(train_key: jax.Array, epoch: int | jax.Array, n: int) -> jax.Array:
    """The shuffled example order of `epoch`: (n,) int32."""
    return jax.random.permutation(epoch_keys(train_key, epoch)[0], n)


def kl_weight(step: jax.Array | int, warmup_steps: int) -> jax.Array | float:
    """KL warm-up factor of optimisation step `step`: rises linearly from 0 to 1 over `warmup_steps`."""
    return jnp.minimum(1.0, step / warmup_steps) if warmup_steps else 1.0


class TrainSteps(NamedTuple):
    """The two jitted ways to train; see make_train_steps."""

    run: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    run_batch: Callable[..., tuple[TrainState, dict[str, jax.Array]]]


def make_train_steps(
    vae: VAE, optimizer: optax.GradientTransformation, objective: Objective, dynamic_binarize: bool,
    batch_size: int, warmup_steps: int = 0, layout: Layout | None = None,
) -> TrainSteps:
    """Jitted training steps, data parallel over `layout` (params and optimizer state replicated,
    batches split along the `data` axis; XLA inserts the gradient all-reduce):

    - `run(state, images, labels, perm, step_root, first, n_steps) -> (state, stats)` takes
      `n_steps` (static) steps on batches `first, first+1, ...` of the epoch whose order is
      `perm`, gathered from `images`, the whole training set on device, uint8 (N, H, W, C), and
      `labels` (N,) (used by a conditional VAE; may be None otherwise);
    - `run_batch(state, batch, batch_labels, step_root, i) -> (state, stats)` takes step i on a
      batch fed from the host: uint8 (batch_size, H, W, C) and (batch_size,) labels or None.

    Both give the same result for the same batch. The KL weight rises linearly over the first
    `warmup_steps` steps. stats: the loss and the objective's batch means at every step, and
    whether the step was skipped for a non-finite loss or gradient; each (n_steps,).
    """
    split = (lambda a: a) if layout is None else (lambda a: jax.lax.with_sharding_constraint(a, layout.batch))

    def update(state: TrainState, batch, batch_labels, step_root, i):
        k_bin, k_obj = jax.random.split(jax.random.fold_in(step_root, i))
        x = binarize(k_bin, batch) if dynamic_binarize else to_unit(batch)
        cs = vae.condition(batch_labels) if vae.n_conditions else None
        beta_scale = kl_weight(state.step, warmup_steps)
        (value, stats), grads = jax.value_and_grad(partial(objective.loss, vae), has_aux=True)(
            state.params, x, k_obj, cs, beta_scale
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        # a step whose loss or gradient is not finite changes nothing (the step counter still moves,
        # so the keys of later steps stay those of an uninterrupted run)
        finite = jnp.isfinite(value) & jnp.all(jnp.array([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
        keep = lambda new, old: jnp.where(finite, new, old)  # noqa: E731
        state = TrainState(jax.tree.map(keep, params, state.params), jax.tree.map(keep, opt_state, state.opt_state), state.step + 1)
        return state, {"loss": value, **stats, "skipped": ~finite}

    def one_step(state: TrainState, images, labels, perm, step_root, i):
        idx = split(jax.lax.dynamic_slice(perm, (i * batch_size,), (batch_size,)))
        batch_labels = split(labels[idx]) if vae.n_conditions else None
        return update(state, split(images[idx]), batch_labels, step_root, i)

    def run(state: TrainState, images, labels, perm, step_root, first, n_steps: int):
        if n_steps == 1:
            # No loop at all: XLA:CPU runs convolutions inside a while loop about 5x slower
            # (measured: conv VAE step 10 ms plain, 54 ms in a scan), so conv nets take one step per call.
            state, stats = one_step(state, images, labels, perm, step_root, first)
            return state, jax.tree.map(lambda v: v[None], stats)

        def body(state, i):
            return one_step(state, images, labels, perm, step_root, first + i)

        return jax.lax.scan(body, state, jnp.arange(n_steps))

    def run_batch(state: TrainState, batch, batch_labels, step_root, i):
        state, stats = update(state, split(batch), None if batch_labels is None else split(batch_labels), step_root, i)
        return state, jax.tree.map(lambda v: v[None], stats)

    if layout is None:
        return TrainSteps(jax.jit(run, static_argnames="n_steps"), jax.jit(run_batch))
    same = layout.replicated
    sharded_run = jax.jit(run, static_argnums=6, in_shardings=(same,) * 6, out_shardings=same)

    def run_on_layout(state, images, labels, perm, step_root, first, n_steps: int):
        return sharded_run(state, images, labels, perm, step_root, first, n_steps)

    return TrainSteps(
        run_on_layout,
        jax.jit(run_batch, in_shardings=(same, layout.batch, layout.batch, same, same), out_shardings=same),
    )


def epoch_runner(steps: TrainSteps, layout: Layout, train_key: jax.Array, images: np.ndarray, labels: np.ndarray | None,
                 batch_size: int, feed: str) -> Callable[[int], Callable[..., tuple[TrainState, dict[str, jax.Array]]]]:
    """`for_epoch(epoch) -> take(state, first, n) -> (state, stats)`: n steps from batch `first` of
    `epoch`, in that epoch's order. feed 'device': `images` uint8 (N, H, W, C) and `labels` (N,)
    are replicated on every device once, here, and any n works; feed 'host': each process hands
    its rows of each batch over, and n must be 1."""
    if feed == "device":
        images, labels = layout.replicate((images, labels))
    rows = layout.local_rows(batch_size)  # this process's rows of every host-fed batch

    def for_epoch(epoch: int):
        perm = np.asarray(epoch_permutation(train_key, epoch, len(images)))
        step_root = layout.replicate(epoch_keys(train_key, epoch)[1])
        if feed == "device":
            perm = layout.replicate(perm)
            return lambda state, first, n: steps.run(state, images, labels, perm, step_root, np.int32(first), n_steps=n)

        def take(state: TrainState, first: int, n: int):
            assert n == 1, "host-fed batches go one step per call"
            idx = perm[first * batch_size : (first + 1) * batch_size][rows]
            batch_labels = None if labels is None else layout.feed(labels[idx], batch_size)
            return steps.run_batch(state, layout.feed(images[idx], batch_size), batch_labels, step_root, np.int32(first))

        return take

    return for_epoch


EVAL_BINARIZATION_SEED = 0  # the same for every run, so test numbers compare across runs


@partial(jax.jit, static_argnums=1)
def eval_images(images: jax.Array, likelihood: str) -> jax.Array:
    """Evaluation inputs from uint8 (N, H, W, C): binarized once with a fixed key for 'bernoulli'."""
    if likelihood == "bernoulli":
        return binarize(jax.random.key(EVAL_BINARIZATION_SEED), images)
    return to_unit(images)
