"""What the samplers fitted by gradient share: their parameters stored as flat named arrays, and
Adam over shuffled minibatches of the latents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from vae_jax.samplers import progress

BATCH = 64


def flatten(tree: dict) -> dict[str, np.ndarray]:
    """A nested dict of arrays -> {"a/b/kernel": array}: what vae_jax.fitted stores."""
    return {"/".join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(tree).items()}


def unflatten(state: dict) -> dict:
    """flatten's inverse, as jax arrays."""
    return traverse_util.unflatten_dict({tuple(k.split("/")): jnp.asarray(v) for k, v in state.items()})


def minimise(
    loss: Callable[[Any, jax.Array, jax.Array], jax.Array],
    params: Any,
    z: jax.Array,
    key: jax.Array,
    epochs: int,
    learning_rate: float,
    halve_every: int = 0,
    convolutional: bool = False,
) -> tuple[Any, jax.Array]:
    """Adam on loss(params, x (b, ...), key) over `epochs` passes of shuffled batches of 64 rows of z
    (N, ...) (a last short batch is dropped, a different one each epoch); the learning rate halved every
    `halve_every` epochs (0: never) -> (params, each epoch's mean of -loss (epochs,)). Inside
    `progress.kept` it keeps its progress after each epoch and goes on from what was kept.

    One jitted program per epoch (a lax.scan of its steps), but for a `convolutional` loss on a CPU:
    one jitted step per call, as training takes them (XLA:CPU runs convolutions inside a loop slowly;
    measured for the PixelCNN sampler on 2 cores: 5.7 s a step in the scan, 0.23 s in its own call)."""
    batch = min(BATCH, z.shape[0])
    steps = z.shape[0] // batch
    schedule = (
        optax.exponential_decay(learning_rate, halve_every * steps, 0.5, staircase=True)
        if halve_every
        else learning_rate
    )
    optimizer = optax.adam(schedule)

    def step(carry, inputs):
        p, opt = carry
        x, k = inputs
        value, grads = jax.value_and_grad(loss)(p, x, k)
        updates, opt = optimizer.update(grads, opt, p)
        return (optax.apply_updates(p, updates), opt), value

    def batches(k):
        """An epoch's rows of z, (steps, batch) indices, and its steps' keys, from the epoch's key."""
        k_order, k_steps = jax.random.split(k)
        order = jax.random.permutation(k_order, z.shape[0])[: steps * batch].reshape(steps, batch)
        return order, jax.random.split(k_steps, steps)

    @jax.jit
    def scanned(carry, k):
        order, keys = batches(k)
        carry, losses = jax.lax.scan(step, carry, (z[order], keys))
        return carry, -jnp.mean(losses)

    one_step = jax.jit(step)

    def looped(carry, k):  # the same batches and keys as the scan's
        losses = []
        for rows, k_step in zip(*batches(k)):
            carry, value = one_step(carry, (z[rows], k_step))
            losses.append(value)
        return carry, -jnp.mean(jnp.stack(losses))

    epoch = looped if convolutional and jax.default_backend() == "cpu" else scanned
    carry, history = progress.resumed((params, optimizer.init(params)))
    for k in jax.random.split(key, epochs)[len(history) :]:
        carry, value = epoch(carry, k)
        history.append(float(value))
        if len(history) < epochs:
            progress.keep(carry, history)
    return carry[0], jnp.asarray(history, jnp.float32)
