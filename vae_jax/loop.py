"""The one epoch loop: what train.py runs and what the benchmarks time. Jitted calls of
training.Batches, the host counting steps itself and fetching the step statistics only at the
PROGRESS_UPDATES_PER_EPOCH progress updates, so calls queue up on the device in between; a
`Watcher` is told what a run needs to know (a stop signal, the statistics, a checkpoint due)."""

from __future__ import annotations

import math
from typing import Any, Protocol

import jax
import numpy as np
from tqdm.auto import tqdm

from vae_jax.training import PROGRESS_UPDATES_PER_EPOCH, Batches, Stats, TrainState, chunk_length


class Watcher(Protocol):
    def before_call(self, state: TrainState, epoch: int, step: int) -> None:
        """Before each call, at global `step` (a run stops here on a signal: the state is whole)."""

    def on_progress(self, stats: list[Stats], step: int) -> None:
        """The host-side statistics of the calls since the last update, up to global `step`."""

    def on_save(self, state: TrainState, epoch: int, step: int) -> None:
        """A mid-epoch checkpoint is due (every `every` global steps)."""


class Unwatched:
    """A Watcher that does nothing: an epoch as the benchmarks time it."""

    def before_call(self, state: TrainState, epoch: int, step: int) -> None:
        pass

    def on_progress(self, stats: list[Stats], step: int) -> None:
        pass

    def on_save(self, state: TrainState, epoch: int, step: int) -> None:
        pass


def run_epoch(
    batches: Batches,
    state: TrainState,
    epoch: int,
    watcher: Watcher | None = None,
    every: int = 0,
    bar: dict[str, Any] | None = None,
) -> tuple[TrainState, dict[str, float]]:
    """The rest of epoch `epoch` (from the step `state` is at), telling `watcher` before each call,
    at each progress update, and every `every` global steps (0: never) mid-epoch; `bar`: tqdm's
    options for a progress bar (None: none). Returns the new state and the epoch means of the step
    statistics (skipped, spikes: the counts)."""
    watcher = watcher or Unwatched()
    n_steps = batches.steps_per_epoch
    first = int(state.step) - epoch * n_steps  # > 0 when resuming inside this epoch
    step, cadence = epoch * n_steps + first, max(1, math.ceil(n_steps / PROGRESS_UPDATES_PER_EPOCH))
    order, pending, stats = batches.order(epoch), [], []
    with tqdm(total=n_steps, initial=first, leave=False, **(bar or {"disable": True})) as progress:
        while first < n_steps:
            watcher.before_call(state, epoch, step)
            n = chunk_length(first, n_steps, batches.chunk, step, every)
            state, chunk_stats = batches.take(state, order, first, n)
            pending.append(chunk_stats)
            first, step = first + n, step + n
            save = first < n_steps and every and step % every == 0
            if not stats or first == n_steps or (first - n) // cadence != first // cadence or save:
                fresh, pending = [jax.tree.map(np.asarray, s) for s in pending], []  # sync point: progress
                stats += fresh
                watcher.on_progress(fresh, step)
                progress.update(sum(len(s["loss"]) for s in fresh))
                finite = np.concatenate([s["loss"][~s["skipped"]] for s in stats])
                progress.set_postfix(loss=f"{np.mean(finite) if len(finite) else float('nan'):.2f}")
            elif len(pending) > 1:
                # sync point: at most two calls are queued on the device, so a signal waits for no more than that
                jax.block_until_ready(pending[-2])
            if save:
                watcher.on_save(state, epoch, step)
    return state, epoch_means(stats)


def epoch_means(stats: list[Stats]) -> dict[str, float]:
    """Means over an epoch's steps of the statistics of its calls, skipped steps left out; the
    counts of skipped steps and of spikes summed."""
    counted = {name: np.concatenate([s[name] for s in stats]) for name in ("skipped", "spikes") if name in stats[0]}
    skipped = counted["skipped"]
    losses = {name: np.concatenate([s[name] for s in stats])[~skipped] for name in stats[0] if name not in counted}
    return {name: float(np.mean(v)) for name, v in losses.items()} | {name: int(v.sum()) for name, v in counted.items()}
