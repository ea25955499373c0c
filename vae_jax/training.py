"""TrainState, the jitted training steps, and how an epoch is cut into calls. Knows datasets only
as arrays.

Keys are derived, never threaded: the noise of step s in epoch e comes from
fold_in(split(fold_in(train_key, e))[1], s), so a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vae_jax import compiling, families, memory, objectives, parallel, precision
from vae_jax.config import Config
from vae_jax.data.pixels import binarize, binarize_u8, to_unit
from vae_jax.data.stream import Stream
from vae_jax.errors import UserError
from vae_jax.latent import LatentModel
from vae_jax.objectives import Batch, Objective
from vae_jax.optim import make_optimizer, spike_skipped
from vae_jax.parallel import Layout
from vae_jax.state import TrainState, init_state, objective_steps

log = logging.getLogger("vae_jax")

PROGRESS_UPDATES_PER_EPOCH = 10  # dense nets: one jitted call (a lax.scan) per tenth of an epoch ...
MAX_STEPS_PER_CALL = 128  # ... of at most this many steps: a stop signal waits for a call to end
KEY_STREAMS = ("init", "train", "static_binarization", "eval", "sample_noise")

Stats = dict[str, jax.Array]  # per-step statistics of a call, each (n_steps,)


def run_keys(seed: int) -> dict[str, jax.Array]:
    """The independent key streams of a run, all derived from its seed."""
    root = jax.random.key(seed)
    return {name: jax.random.fold_in(root, i) for i, name in enumerate(KEY_STREAMS)}


def epoch_keys(train_key: jax.Array, epoch: int | jax.Array) -> tuple[jax.Array, jax.Array]:
    """(permutation key, step-key root) of one epoch."""
    k_perm, k_steps = jax.random.split(jax.random.fold_in(train_key, epoch))
    return k_perm, k_steps


@compiling.jit(static_argnums=2)
def epoch_permutation(train_key: jax.Array, epoch: int | jax.Array, n: int) -> jax.Array:
    """The shuffled example order of `epoch`: (n,) int32."""
    return jax.random.permutation(epoch_keys(train_key, epoch)[0], n)


class TrainSteps(NamedTuple):
    """The jitted steps, one per place the training set lives (see make_train_steps)."""

    run: Callable[..., tuple[TrainState, Stats]]
    run_batch: Callable[..., tuple[TrainState, Stats]]


def all_finite(checks: list) -> jax.Array:
    """Whether every array of `checks` (a loss, gradient leaves) is finite: a boolean scalar."""
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(c)) for c in checks]))


def kept(finite: jax.Array, new, old):
    """The pytree `new` where `finite`, else `old`, selected elementwise."""
    return jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)


def make_train_steps(
    vae: LatentModel,
    optimizer: optax.GradientTransformation,
    objective: Objective,
    dynamic_binarize: bool,
    batch_size: int,
    n_train: int = 0,
    layout: Layout | None = None,
    donate: bool = False,
) -> TrainSteps:
    """Jitted training steps, data parallel over `layout` (params and optimizer state replicated,
    batches split along the `data` axis; XLA inserts the gradient all-reduce):

    - `run(state, images, labels, perm, step_root, first, n_steps) -> (state, stats)`, for a
      training set that lives on the device: takes `n_steps` (static) steps on batches
      `first, first+1, ...` of the epoch whose order is `perm`, gathered from `images`, uint8
      (N, H, W, C), and `labels` (N,) (used by a conditional VAE; may be None otherwise);
    - `run_batch(state, batch, batch_labels, step_root, i) -> (state, stats)`, for a training set
      that stays on the host: step i on one batch handed over by the host, uint8
      (batch_size, H, W, C) and (batch_size,) labels or None.

    Both give the same result for the same batch; the objective's loss sees the whole batch and
    `n_train`, the size of the training set. With `donate`, the state passed in is donated: its buffers are reused
    for the new state and must not be used again (what a training loop wants). stats: the loss
    and the objective's batch means at every step, and whether the step was skipped for a
    non-finite loss or gradient (and with --skip-threshold, `spikes`: whether it was skipped for
    its gradient norm); each (n_steps,).
    """
    split = (lambda a: a) if layout is None else (lambda a: jax.lax.with_sharding_constraint(a, layout.batch))
    platform = layout.platform if layout is not None else jax.default_backend()
    # On a CPU the optimizer's update is skipped by a branch, not undone by selecting the old values
    # elementwise (measured on 2 cores, a 12.7M-parameter mlp at batch 64: 134 ms a step against 160
    # one step per call, 102 against 110 in a scan of 10); possible only where no parameter group needs
    # the model's updated parameters before the step is known finite. Other backends: not measured.
    branch = platform == "cpu" and not objective.groups

    def optimized(grads, state: TrainState):
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return optax.apply_updates(state.params, updates), opt_state

    def update(state: TrainState, batch, batch_labels, step_root, i):
        k_bin, k_obj = jax.random.split(jax.random.fold_in(step_root, i))
        x = binarize(k_bin, batch) if dynamic_binarize else to_unit(batch)
        cs = vae.condition(batch_labels) if vae.n_conditions else None
        whole = Batch(x, cs, n_train)
        (value, stats), grads = jax.value_and_grad(partial(objective.loss, vae), has_aux=True)(
            state.params, state.aux, whole, k_obj, state.step
        )
        checks = [value, *jax.tree.leaves(grads)]
        # a step whose loss or gradient is not finite changes nothing (the step counter still moves,
        # so the keys of later steps stay those of an uninterrupted run)
        if branch:
            finite = all_finite(checks)
            unchanged = (state.params, state.opt_state)
            params, opt_state = jax.lax.cond(finite, lambda: optimized(grads, state), lambda: unchanged)
        else:
            params, opt_state = optimized(grads, state)
        aux, stats = objective_steps(objective, vae, state, params, whole, k_obj, checks, stats)
        if not branch:
            finite = all_finite(checks)  # the groups' losses and gradients too
            params, opt_state = kept(finite, params, state.params), kept(finite, opt_state, state.opt_state)
        aux = kept(finite, aux, state.aux)
        state = TrainState(objective.written(vae, params, aux["state"]), opt_state, state.step + 1, aux)
        spiked = spike_skipped(opt_state)  # None without --skip-threshold
        spikes = {} if spiked is None else {"spikes": finite & spiked}
        return state, {"loss": value, **stats, "skipped": ~finite, **spikes}

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
        labels = None if batch_labels is None else split(batch_labels)
        state, stats = update(state, split(batch), labels, step_root, i)
        return state, jax.tree.map(lambda v: v[None], stats)

    # inputs arrive already placed (Layout.replicate / Layout.feed); outputs stay replicated
    placed = {} if layout is None else {"out_shardings": layout.replicated}
    placed["donate_argnums"] = (0,) if donate else ()
    return TrainSteps(compiling.jit(run, static_argnames="n_steps", **placed), compiling.jit(run_batch, **placed))


def steps_per_call(convolutional: bool, feed: str, n_steps: int, platform: str) -> int:
    """Steps per jitted call in an epoch of `n_steps` on devices of `platform` ('cpu', 'gpu', 'tpu'):
    one for batches fed from the host or a stream, and for conv nets on CPUs (see make_train_steps);
    otherwise a lax.scan over a tenth of the epoch, at most MAX_STEPS_PER_CALL steps (a long epoch, say
    a large dataset at batch 4, would otherwise hold a call, and a stop signal, for minutes). On a GPU
    one conv step per call left a conv epoch at twice the steps' time (H100: 1.9 s against 0.9 s), so
    conv nets scan there as dense nets do."""
    if feed != "device" or (convolutional and platform == "cpu"):
        return 1
    return max(1, min(MAX_STEPS_PER_CALL, math.ceil(n_steps / PROGRESS_UPDATES_PER_EPOCH)))


def chunk_length(first: int, n_steps: int, chunk: int, global_step: int, every: int = 0) -> int:
    """Steps in the call that starts at step `first` of the epoch: up to the next multiple of
    `chunk` (so resumed runs make the same calls as uninterrupted ones), the epoch's end, and the
    next multiple of `every` global steps (a mid-epoch checkpoint; 0: none)."""
    n = min(chunk - first % chunk, n_steps - first)
    return min(n, every - global_step % every) if every else n


class EpochOrder(NamedTuple):
    """What fixes the batches of one epoch: the example order (N,) and the root of its step keys."""

    perm: Any
    step_root: jax.Array


class Batches:
    """The training set where the steps read it, cut into the batches of each epoch.

    feed 'device': `images` uint8 (N, H, W, C) and `labels` (N,) are replicated on every device
    once, here, and a call takes any number of steps; feed 'host': each process hands its rows of
    each batch over, one step per call; feed 'stream': likewise, its rows read from the files of
    `images` (images.Files) by stream.Stream, ahead of the steps. All three give the same batches.
    """

    def __init__(
        self,
        steps: TrainSteps,
        layout: Layout,
        train_key: jax.Array,
        images: np.ndarray,
        labels: np.ndarray | None,
        batch_size: int,
        feed: str,
        convolutional: bool,
    ):
        self.steps, self.layout, self.train_key, self.feed = steps, layout, train_key, feed
        self.batch_size, self.n_examples = batch_size, len(images)
        self.steps_per_epoch = len(images) // batch_size
        self.chunk = steps_per_call(convolutional, feed, self.steps_per_epoch, layout.platform)
        self.images, self.labels = layout.replicate((images, labels)) if feed == "device" else (images, labels)
        self.rows = layout.local_rows(batch_size)  # this process's rows of every host-fed batch
        self.stream = Stream(images, self.labels, batch_size, self.rows) if feed == "stream" else None
        self._reading: tuple[EpochOrder | None, int, Any] = (None, 0, None)  # (epoch, next step, batches)

    def order(self, epoch: int) -> EpochOrder:
        perm = np.asarray(epoch_permutation(self.train_key, epoch, self.n_examples))
        step_root = self.layout.replicate(epoch_keys(self.train_key, epoch)[1])
        return EpochOrder(self.layout.replicate(perm) if self.feed == "device" else perm, step_root)

    def take(self, state: TrainState, order: EpochOrder, first: int, n: int) -> tuple[TrainState, Stats]:
        """n steps on batches first, first+1, ... of the epoch `order` describes."""
        if self.feed == "device":
            return self.steps.run(
                state, self.images, self.labels, order.perm, order.step_root, np.int32(first), n_steps=n
            )
        assert n == 1, "host-fed batches go one step per call"
        if self.stream is None:
            idx = order.perm[first * self.batch_size : (first + 1) * self.batch_size][self.rows]
            images, labels = self.images[idx], None if self.labels is None else self.labels[idx]
        else:
            images, labels = self._streamed(order, first)
        labels = None if labels is None else self.layout.feed(labels, self.batch_size)
        batch = self.layout.feed(images, self.batch_size)
        return self.steps.run_batch(state, batch, labels, order.step_root, np.int32(first))

    def _streamed(self, order: EpochOrder, first: int) -> tuple[np.ndarray, np.ndarray | None]:
        """This process's rows of batch `first` of the epoch `order`, from the stream already
        reading that epoch from there, or from a new one (a new epoch, a resumed run)."""
        epoch, position, reading = self._reading
        if epoch is not order or position != first:
            reading = self.stream.batches(order.perm, first)
        self._reading = (order, first + 1, reading)
        return next(reading)


def prepare(
    config: Config, vae: LatentModel, images: np.ndarray, labels: np.ndarray, layout: Layout, keys: dict[str, jax.Array]
) -> tuple[TrainState, Batches]:
    """The initial state and the batches of the run `config` describes, on uint8 training images
    (N, H, W, C) and labels (N,): static binarization, the objective, the jitted steps, and where
    the training set lives (see parallel.feeding)."""
    if len(images) < config.batch_size:
        raise UserError(f"--batch-size {config.batch_size} is larger than the training set ({len(images)} images)")
    layout.check_batch_size(config.batch_size)
    total_steps = config.epochs * (len(images) // config.batch_size)
    if total_steps > np.iinfo(np.int32).max:
        raise UserError(f"--epochs {config.epochs} makes {total_steps} steps; the step counter holds at most 2^31 - 1")
    optimizer = make_optimizer(config, total_steps)
    objective = objectives.of(config)
    init = compiling.jit(partial(init_state, vae, optimizer, objective))
    samples = objective.samples
    decoded = config.batch_size // layout.n_devices * samples * math.prod(images.shape[1:])
    sizes = ", ".join([*families.size_flags(config), "--batch-size", *(["--k"] if samples > 1 else [])])
    memory.check_training(jax.eval_shape(init, keys["init"]), decoded, sizes)
    state = layout.replicate(init(keys["init"]))
    streamed = not isinstance(images, np.ndarray)  # images.Files: left on disk
    if vae.likelihood.binary and config.binarize == "static":
        if streamed:
            raise UserError("--binarize static draws once over the whole training set in memory; not with --stream")
        images = np.asarray(binarize_u8(keys["static_binarization"], images))
    dynamic = vae.likelihood.binary and config.binarize == "dynamic"
    steps = make_train_steps(vae, optimizer, objective, dynamic, config.batch_size, len(images), layout, donate=True)
    steps = TrainSteps(*(precision.at(config.matmul_precision, fn) for fn in steps))
    feed = "stream" if streamed else parallel.feeding(layout, images.nbytes)
    batches = Batches(
        steps,
        layout,
        keys["train"],
        images,
        labels if config.conditional else None,
        config.batch_size,
        feed,
        vae.convolutional,
    )
    per_device = config.batch_size // layout.n_devices
    log.info(
        "training on %d device(s) (%s), global batch %d = %d per device; training set fed from the %s",
        *(layout.n_devices, layout.platform, config.batch_size, per_device, feed),
    )
    return state, batches
