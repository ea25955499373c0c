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
import optax

from vae_jax.objectives import Objective
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


def make_train_steps(
    vae: VAE, optimizer: optax.GradientTransformation, objective: Objective, dynamic_binarize: bool,
    batch_size: int, warmup_steps: int = 0,
) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
    """Jitted `run(state, images, labels, perm, step_root, first, n_steps) -> (state, stats)`.

    Runs `n_steps` (static) optimisation steps on batches `first, first+1, ...` of the epoch whose
    order is `perm`; `images` is the whole training set on device, uint8 (N, H, W, C), `labels`
    its (N,) int labels (used by a conditional VAE; may be None otherwise). The KL weight rises
    linearly over the first `warmup_steps` steps. stats: the loss and the objective's batch means
    at every step, and whether the step was skipped for a non-finite loss or gradient; each (n_steps,).
    """

    def one_step(state: TrainState, images, labels, perm, step_root, i):
        idx = jax.lax.dynamic_slice(perm, (i * batch_size,), (batch_size,))
        k_bin, k_obj = jax.random.split(jax.random.fold_in(step_root, i))
        batch = images[idx]
        x = binarize(k_bin, batch) if dynamic_binarize else to_unit(batch)
        cs = vae.condition(labels[idx]) if vae.n_conditions else None
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

    @partial(jax.jit, static_argnames="n_steps")
    def run(state: TrainState, images, labels, perm, step_root, first, n_steps: int):
        if n_steps == 1:
            # No loop at all: XLA:CPU runs convolutions inside a while loop about 5x slower
            # (measured: conv VAE step 10 ms plain, 54 ms in a scan), so conv nets take one step per call.
            state, stats = one_step(state, images, labels, perm, step_root, first)
            return state, jax.tree.map(lambda v: v[None], stats)

        def body(state, i):
            return one_step(state, images, labels, perm, step_root, first + i)

        return jax.lax.scan(body, state, jnp.arange(n_steps))

    return run


EVAL_BINARIZATION_SEED = 0  # the same for every run, so test numbers compare across runs


@partial(jax.jit, static_argnums=1)
def eval_images(images: jax.Array, likelihood: str) -> jax.Array:
    """Evaluation inputs from uint8 (N, H, W, C): binarized once with a fixed key for 'bernoulli'."""
    if likelihood == "bernoulli":
        return binarize(jax.random.key(EVAL_BINARIZATION_SEED), images)
    return to_unit(images)
