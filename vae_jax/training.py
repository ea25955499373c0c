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

from vae_jax.objectives import loss
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


def make_train_steps(
    vae: VAE, optimizer: optax.GradientTransformation, beta: float, dynamic_binarize: bool, batch_size: int
) -> Callable[..., tuple[TrainState, jax.Array]]:
    """Jitted `run(state, images, perm, step_root, first, n_steps) -> (state, stats)`.

    stats: {'loss', 'elbo', 'recon', 'kl'}, each (n_steps,): the training loss and the batch means
    of the ELBO terms at every step.

    Runs `n_steps` (static) optimisation steps on batches `first, first+1, ...` of the epoch whose
    order is `perm`; `images` is the whole training set on device, uint8 (N, H, W, C).
    """

    def one_step(state: TrainState, images: jax.Array, perm: jax.Array, step_root: jax.Array, i: jax.Array):
        idx = jax.lax.dynamic_slice(perm, (i * batch_size,), (batch_size,))
        k_bin, k_elbo = jax.random.split(jax.random.fold_in(step_root, i))
        batch = images[idx]
        x = binarize(k_bin, batch) if dynamic_binarize else to_unit(batch)
        (value, terms), grads = jax.value_and_grad(partial(loss, vae), has_aux=True)(state.params, x, k_elbo, beta)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        stats = {"loss": value, **{name: jnp.mean(t) for name, t in terms._asdict().items()}}
        return TrainState(optax.apply_updates(state.params, updates), opt_state, state.step + 1), stats

    @partial(jax.jit, static_argnames="n_steps")
    def run(state: TrainState, images: jax.Array, perm: jax.Array, step_root: jax.Array, first: jax.Array, n_steps: int):
        def body(state, i):
            return one_step(state, images, perm, step_root, first + i)

        return jax.lax.scan(body, state, jnp.arange(n_steps))

    return run


EVAL_BINARIZATION_SEED = 0  # the same for every run, so test numbers compare across runs


@partial(jax.jit, static_argnums=1)
def eval_images(images: jax.Array, likelihood: str) -> jax.Array:
    """Evaluation inputs from uint8 (N, H, W, C): binarized once with a fixed key for 'bernoulli'."""
    if likelihood == "bernoulli":
        return binarize(jax.random.key(EVAL_BINARIZATION_SEED), images)
    return to_unit(images)
