"""A training run from a Config: data -> model -> epochs -> checkpoints, metrics and pictures."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from vae_jax import (
    checkpoint,
    data,
    evaluation,
    logs,
    loop,
    objectives,
    outputs,
    parallel,
    report,
    resuming,
    saving,
    smoke,
    tracking,
)
from vae_jax import workdir as wd
from vae_jax.config import Config
from vae_jax.data.images import DataChanged
from vae_jax.data.pixels import eval_images
from vae_jax.errors import NonFiniteLoss, Preempted
from vae_jax.families import build
from vae_jax.optim import ema_params
from vae_jax.runmeta import RunMeta
from vae_jax.training import Batches, TrainState, prepare, run_keys

log = logging.getLogger("vae_jax")


def train(config: Config, fresh: bool = False) -> dict[str, Any]:
    """Train (or resume) the run a config describes, in its workdir. Its progress (the epochs, the
    evaluation) is logged, and shown where logging is not configured.

    Args:
        config: the run's Config (`train.py`'s flags).
        fresh: start again in a workdir that holds a run (its files set aside, never deleted) instead
            of resuming it.

    Returns:
        The last epoch's metrics, with the final evaluation's under 'evaluation' where it ran.
    """
    with logs.progress_shown(), logs.orbax_quiet():
        return _train(smoke.config(config.resolved()), fresh)


def _train(config: Config, fresh: bool) -> dict[str, Any]:
    started = time.perf_counter()
    with wd.claimed(config.workdir, fresh):  # free, writable, the same run: checked before any data is read
        resuming.check_config(config.workdir, config)
        dataset = data.of_run(config, config.stream)
        log.info("data: pixels modelled by the %s likelihood (--likelihood chooses)", config.likelihood)
        return _run(config, dataset, started)


def _run(config: Config, dataset: data.Dataset, started: float) -> dict[str, Any]:
    """The run in its claimed workdir, on `dataset`; `started`: perf_counter() when train() began."""
    vae = build(config, dataset.image_shape, dataset.num_classes)
    layout = parallel.layout()
    keys = run_keys(config.seed)
    state, batches = prepare(config, vae, dataset.train_images, dataset.train_labels, layout, keys)
    data_now = {"data_source": dataset.source, "train_size": len(dataset.train_images)}
    data_now |= {"train_digest": dataset.fingerprint("train"), "test_digest": dataset.fingerprint("test")}
    meta = RunMeta(config, tuple(dataset.image_shape), dataset.num_classes, data_now)
    test_x = eval_images(jnp.asarray(dataset.test_images), vae.likelihood.binary)
    test_labels = jnp.asarray(dataset.test_labels) if config.conditional else None
    pictures = outputs.picture_fn(vae, test_x, dataset.test_labels, keys["sample_noise"])
    objective = objectives.of(config)

    run = _Run(config, batches, meta)
    with _signals_to(run.on_signal), outputs.RunOutputs(config.workdir, trackers=config.tracker) as out:
        state, start_epoch = resuming.resume(config.workdir, config, state, data_now)
        out.track(config.to_dict(), tracking.facts(config.workdir, data_now, state.params))
        run.mngr = checkpoint.manager(config.workdir, config.keep)
        run.saver = saving.Saver(run.mngr)
        metrics: dict[str, Any] = {}
        evaluate = _what_to_do(config, start_epoch, out, int(state.step))
        with run.saving(), run.data_changes_stop():
            for epoch in range(start_epoch, config.epochs):
                t0, saved, read = (
                    time.perf_counter(),
                    run.saver.seconds,
                    batches.stream.reads.value if batches.stream else 0,
                )
                state, train_stats = _train_epoch(run, state, epoch)
                # not the compilation before the first step, nor saving (only the steps save)
                begun, saves = max(t0, run.first_step_at), run.saver.seconds - saved
                steps = time.perf_counter() - begun - saves
                if batches.stream:
                    _log_reads(epoch, batches.stream.reads.value - read)
                params = layout.local(reported_params(state))
                test = evaluation.split_metrics(
                    vae, params, test_x, keys["eval"], test_labels, not objective.defines_likelihood
                )
                run.epoch_seconds.append(time.perf_counter() - begun - saves)  # the epoch's steps and test metrics
                metrics = outputs.epoch_record(
                    epoch + 1, int(state.step), train_stats, test, (run.epoch_seconds[-1], steps), vae.description
                )
                score = {checkpoint.BEST_METRIC: objective.score(test)}
                run.saver.save(state, reported_params(state), meta, epoch + 1, score)
                out.epoch(metrics, *pictures(params))
                log.info("epoch %d/%d  %s", epoch + 1, config.epochs, outputs.epoch_line(metrics))
                if run.stop_signal:  # the last epoch too: the final evaluation is run by the same command
                    run.stop(state, epoch + 1, int(state.step))
        run.mngr.close()
        trained = time.perf_counter()
        if jax.process_count() > 1:
            multihost_utils.assert_equal(layout.local(state.params), "the processes ended with different params")
            log.info("params identical on all %d processes", jax.process_count())
        if evaluate:
            # every epoch is on disk: a signal now stops the evaluation at once, and the same command runs it again
            with _signals_to(run.stop_now(int(state.step))):
                run.stop_if_signalled(int(state.step))  # one that came since the epochs ended
                final = report.evaluation(
                    vae, layout.local(reported_params(state)), config, dataset, "test", k=config.eval_k
                )
            out.append({"epoch": config.epochs, "step": int(state.step), "evaluation": final})
            log.info("%s", report.summary(final))
            metrics = {**metrics, "evaluation": final}
        evaluated = time.perf_counter()
    run.stop_if_signalled(int(state.step))  # one that came while the outputs were written: said, not swallowed
    if run.first_step_at or evaluate:
        log.info("%s", out.said())
    if run.first_step_at:
        times = (started, run.first_step_at, trained, evaluated, time.perf_counter())
        log.info("%s", _time_line(times, run.saver.seconds, run.epoch_seconds))
    return metrics


def _what_to_do(config: Config, start_epoch: int, out: outputs.RunOutputs, step: int) -> bool:
    """Say what this run will do (train, only finish the final evaluation, or nothing), write the
    config of a run that trains, and return whether the final evaluation is to be run."""
    done = start_epoch >= config.epochs
    evaluate = not done or parallel.main_process_says(not _evaluated(out.metrics_path, step))
    if not done:
        out.write_config(config.to_dict())  # a run that trains nothing leaves its description as it was
    elif evaluate:
        log.info("%s: trained %d epochs, its final evaluation unfinished: running it", config.workdir, start_epoch)
    else:
        log.info("%s: already trained %d of %d epochs; nothing to do", config.workdir, start_epoch, config.epochs)
    return evaluate


def _evaluated(metrics_path: str, step: int) -> bool:
    """Whether metrics.jsonl ends with the final evaluation of the state at `step`."""
    records = outputs.read_jsonl(metrics_path)
    return bool(records) and "evaluation" in records[-1] and records[-1].get("step") == step


def _time_line(times: tuple[float, ...], saves: float, epoch_seconds: list[float]) -> str:
    """Where a run's time went, from the perf_counter() `times` at train()'s start (imports not
    included), the first step, the end of the epochs (the last save on disk), the end of the final
    evaluation and the end of the outputs (the last pictures drawn), the `saves` seconds spent
    saving checkpoints, and the seconds of each epoch as metrics.jsonl and the epoch lines give
    them (their sum is the epochs' time here)."""
    started, first_step, trained, evaluated, ended = times
    return (
        f"time: {first_step - started:.1f} s to the first step; "
        f"{len(epoch_seconds)} epoch(s) {sum(epoch_seconds):.1f} s; "
        f"checkpoint saves {saves:.2f} s; final evaluation {evaluated - trained:.1f} s; "
        f"the last pictures {ended - evaluated:.1f} s"
    )


def _log_reads(epoch: int, reads: int) -> None:
    """How many training images each process streamed in an epoch (read or rendered): its own rows only."""
    per_process = np.ravel(multihost_utils.process_allgather(np.int64(reads))) if jax.process_count() > 1 else [reads]
    log.info(
        "epoch %d: training images streamed (read from disk or rendered), per process: %s",
        epoch + 1,
        ", ".join(map(str, per_process)),
    )


def reported_params(state: TrainState):
    """What evaluation, pictures and `vae_jax.load` use: the parameters' moving average with --ema."""
    ema = ema_params(state.opt_state)
    return state.params if ema is None else ema


@dataclass
class _Run:
    """What the epochs of one run share: where batches come from, where checkpoints go, and the
    state kept across calls (consecutive skipped steps, a pending stop signal). It watches the
    epoch loop (loop.Watcher)."""

    config: Config
    batches: Batches
    meta: RunMeta
    mngr: Any = None  # the CheckpointManager, once the workdir is claimed
    saver: Any = None  # its saving.Saver: saves are written while the next steps run
    bad_in_a_row: int = 0
    stop_signal: int | None = None
    first_step_at: float = 0.0  # perf_counter() when the first training step of this run was done
    epoch_seconds: list[float] = field(default_factory=list)  # of each epoch of this run, as metrics.jsonl says

    def on_signal(self, signum: int, frame: Any) -> None:
        self.stop_signal = signum

    @contextlib.contextmanager
    def saving(self) -> Iterator[None]:
        """The epochs: however they end, the save being written is on disk (or failed) first. After
        an error a failed save is logged and the error goes on; otherwise its failure is raised."""
        with saving.reported_by_the_caller():
            try:
                yield
            except BaseException:
                try:
                    self.saver.finish()
                except Exception as e:
                    log.error("%s", e)
                raise
            self.saver.finish()

    def newest_saved(self, what: str = "newest") -> str:
        """'<what> checkpoint kept (step N)' once the save in flight is on disk, or 'no checkpoint saved'."""
        self.saver.finish()
        newest = self.mngr.latest_step()
        return f"{what} checkpoint kept (step {newest})" if newest is not None else "no checkpoint saved"

    @contextlib.contextmanager
    def data_changes_stop(self) -> Iterator[None]:
        """A training file that changes under a streamed run stops it, saying what is on disk."""
        try:
            yield
        except DataChanged as e:
            raise DataChanged(
                f"{e}; training stopped, {self.newest_saved()} in {self.config.workdir}: put the file back as it "
                "was and run the same command to resume, or train on the folder as it is now with --fresh"
            ) from None

    def count_skipped(self, skipped: np.ndarray, step: int) -> None:
        """Stop the run once `config.max_bad_steps` steps in a row were skipped."""
        for bad in skipped:
            self.bad_in_a_row = self.bad_in_a_row + 1 if bad else 0
            if self.bad_in_a_row >= self.config.max_bad_steps:
                raise NonFiniteLoss(
                    f"{self.bad_in_a_row} consecutive steps with a non-finite loss or gradient (up to step {step}); "
                    f"training stopped, {self.newest_saved('last good')} in {self.config.workdir}"
                )

    def stop(self, state: TrainState, epoch: int, step: int) -> None:
        """Pre-empted: save `state` (at `step`, `epoch` epochs done) unless that step is already
        saved, wait until it is on disk, and end the run so that the same command resumes it."""
        self.save_mid_epoch(state, epoch, step)
        self.saver.finish()
        on_disk = os.path.isdir(os.path.join(self.config.workdir, str(step)))
        raise Preempted(step if on_disk else None, signal.Signals(self.stop_signal).name)

    def stop_now(self, step: int) -> Callable[[int, Any], None]:
        """A signal handler for when every epoch is on disk (the newest at `step`): it ends the run at once."""

        def handler(signum: int, frame: Any) -> None:
            raise Preempted(step, signal.Signals(signum).name)

        return handler

    def stop_if_signalled(self, step: int) -> None:
        """Once every epoch is on disk (the newest at `step`): end the run if a signal came."""
        if self.stop_signal:
            raise Preempted(step, signal.Signals(self.stop_signal).name)

    def before_call(self, state: TrainState, epoch: int, step: int) -> None:
        if self.stop_signal:  # read once: the state of `step` is saved (if it is not yet) before the run stops
            self.stop(state, epoch, step)

    def on_progress(self, stats: list[dict[str, np.ndarray]], step: int) -> None:
        if not self.first_step_at:
            self.first_step_at = time.perf_counter()
            log.info("first training step done")  # benchmarks/throughput.py --warm-start times this line
        for s in stats:
            self.count_skipped(s["skipped"], step)

    def on_save(self, state: TrainState, epoch: int, step: int) -> None:
        self.save_mid_epoch(state, epoch, step)

    def save_mid_epoch(self, state: TrainState, epoch: int, step: int) -> None:
        if step not in (self.saver.last_step, self.mngr.latest_step()):
            self.saver.save(state, reported_params(state), self.meta, epoch, None)


def _train_epoch(run: _Run, state: TrainState, epoch: int) -> tuple[TrainState, dict[str, float]]:
    """The rest of epoch `epoch` through the one epoch loop, with checkpoints every
    `checkpoint_every_steps` and on SIGTERM/SIGINT (the run is its watcher)."""
    bar = {"desc": f"epoch {epoch + 1}/{run.config.epochs}", "disable": None if parallel.is_main_process() else True}
    return loop.run_epoch(run.batches, state, epoch, run, run.config.checkpoint_every_steps, bar)


@contextlib.contextmanager
def _signals_to(handler):
    """Route SIGTERM and SIGINT to `handler` while training (main thread only), then restore."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
