"""Checkpoint saves written in the background, with the state's digests, and a full disk as one
error that leaves every earlier step intact."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import jax

from vae_jax import integrity, logs
from vae_jax import workdir as wd
from vae_jax.errors import DiskFull
from vae_jax.runmeta import RunMeta

ocp = logs.import_orbax()

log = logging.getLogger("vae_jax")

SAVE_MARGIN_BYTES = 2**20  # Orbax's metadata files and our JSON, on top of the arrays
PARAMS_ITEM = "sampling_params"  # the parameters samplers use, saved apart from the train state


class Saver:
    """Writes train states through `mngr` in the background. `save` returns once the arrays are
    copied off the device (Orbax then writes them while training goes on); the next `save`, and
    `finish`, wait for that write and raise its failure. A run calls `finish` before it says a
    checkpoint is on disk, and before it ends."""

    def __init__(self, mngr: ocp.CheckpointManager):
        self.mngr = mngr
        self.pending: tuple[int, int] | None = None  # (step, bytes needed) of a save being written
        self.last_step: int | None = None  # the step of the newest save started (on disk once finished)
        self.seconds = 0.0  # spent in save() and finish(): what saving cost the run's loop

    def save(self, state: Any, params: Any, meta: RunMeta, epoch: int, metrics: dict[str, float] | None) -> None:
        """Start saving `state` (a pytree with an integer `step`), the parameters samplers use
        (`params`), and the run's metadata at `epoch` with their digests, after the save before it
        is on disk. Raises DiskFull, leaving every earlier step as it was, when the filesystem has
        less room than the arrays need (checked before writing)."""
        self.finish()
        t0 = time.perf_counter()
        step = int(state.step)
        directory = str(self.mngr.directory)
        need = sum(leaf.nbytes for leaf in jax.tree.leaves((state, params))) + SAVE_MARGIN_BYTES
        if 0 <= wd.free_bytes(directory) < need:
            raise _disk_full(directory, step, need)
        digests = integrity.digests(state) | integrity.digests(params, PARAMS_ITEM)  # before the next step takes them
        self.pending = step, need
        with self._disk_full_is_one_error():
            self.mngr.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state),
                    **{PARAMS_ITEM: ocp.args.StandardSave(params)},
                    meta=ocp.args.JsonSave(meta.at(epoch, digests, metrics).to_json()),
                ),
                metrics=metrics,
            )
        self.last_step = step
        self.seconds += time.perf_counter() - t0

    def finish(self) -> None:
        """Wait until the save in progress, if any, is on disk. Raises DiskFull when it ran out of
        space (its unfinished files are removed; every earlier step is as it was)."""
        if self.pending is None:
            return
        t0 = time.perf_counter()
        with self._disk_full_is_one_error():
            self.mngr.wait_until_finished()
        if jax.process_index() == 0:
            wd.clear_removed(str(self.mngr.directory))
        self.pending = None
        self.seconds += time.perf_counter() - t0

    def on_disk(self) -> int | None:
        """The step of the newest save of this run once it is whole on disk (waiting for it), or
        None when this run saved none."""
        self.finish()
        if self.last_step is None or not os.path.isdir(os.path.join(str(self.mngr.directory), str(self.last_step))):
            return None
        return self.last_step

    @contextlib.contextmanager
    def _disk_full_is_one_error(self) -> Iterator[None]:
        try:
            yield
        except Exception as e:
            step, need = self.pending
            self.pending = None
            failed_writes.append(step)  # its tasks may go on reporting it for a while
            if not _is_disk_full(e):
                raise
            # Orbax's writer threads go on reporting the same failure; the one line DiskFull makes says it all
            for name in ("absl", "orbax"):
                logging.getLogger(name).setLevel(logging.CRITICAL + 1)
            directory = str(self.mngr.directory)
            wd.remove_unfinished_saves(directory)
            raise _disk_full(directory, step, need) from None


def _disk_full(directory: str, step: int, need: int) -> DiskFull:
    intact = wd.steps_in(directory)
    kept = f"step {intact[-1]} is intact" if intact else "no earlier step was saved"
    return DiskFull(
        f"no room to save checkpoint step {step} in {directory}: it needs {need / 2**20:.1f} MiB, "
        f"{max(wd.free_bytes(directory), 0) / 2**20:.1f} MiB are free; {kept}; "
        "free some space, then run the same command to resume"
    )


def _is_disk_full(e: BaseException) -> bool:
    while e is not None:
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            return True
        text = str(e)
        if "No space left on device" in text or f"os_error_code='{errno.ENOSPC}'" in text:
            return True
        e = e.__cause__ or e.__context__
    return False


ORBAX_UNAWAITED = "coroutine '(_read_array_index_and_device_put|_read_and_create_array|async_deserialize)' was never"
ORBAX_FAILURES = ("Event loop is closed", "reading array index", "RESOURCE_EXHAUSTED", "in OCDBT database")


def _without_orbax_failures(previous: Callable[[Any], None]) -> Callable[[Any], None]:
    """An unraisable-exception hook that drops the reports of Orbax's failed background tasks and
    passes any other to `previous`."""

    def hook(unraisable: Any) -> None:
        text = str(unraisable.exc_value)
        origin = getattr(getattr(unraisable.object, "cr_code", None), "co_filename", "")
        if "orbax" not in origin and not any(failure in text for failure in ORBAX_FAILURES):
            previous(unraisable)

    hook.drops_orbax_failures = True
    return hook


def drop_orbax_unraisables() -> None:
    """When a restore or a background write fails, Orbax's tasks for that step go on failing and
    report it as unraisable exceptions (`Exception ignored in <coroutine ...>`, `Event loop is
    closed`) or through asyncio's log (`Task exception was never retrieved`), a traceback each,
    while and long after the caller is told in one line. Drop those reports from now on (called
    before every restore, and by a run that saves); any other report goes where it went before."""
    if not getattr(sys.unraisablehook, "drops_orbax_failures", False):
        sys.unraisablehook = _without_orbax_failures(sys.unraisablehook)
        # and at exit, Python's word on the read tasks the failed restore left unawaited
        warnings.filterwarnings("ignore", ORBAX_UNAWAITED, RuntimeWarning)
    asyncio_log = logging.getLogger("asyncio")
    if not any(isinstance(f, _OrbaxTasks) for f in asyncio_log.filters):
        asyncio_log.addFilter(_OrbaxTasks())


class _OrbaxTasks(logging.Filter):
    """asyncio's reports of Orbax tasks whose failure nobody awaited any more."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        text = f"{record.getMessage()} {error}"
        return "orbax" not in text and not any(failure in text for failure in ORBAX_FAILURES)


class _OrbaxThreadErrors(logging.Filter):
    """Orbax's writer threads log their failure with a traceback (absl, ERROR); the run that saves
    reports it itself, in one line, when it waits for the save."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Orbax prefixes its messages with "[process=N]"; the path names Orbax where absl's own logger
        # class finds the caller (a plain "absl" logger, made before absl was imported, names absl)
        orbax = f"{os.sep}orbax{os.sep}" in record.pathname or record.getMessage().startswith("[process=")
        return record.levelno < logging.ERROR or not orbax


@contextlib.contextmanager
def reported_by_the_caller() -> Iterator[None]:
    """While a run saves: Orbax's own reports of a failed write (error logs, unraisable exceptions
    of its tasks) are left out, as Saver.finish raises what failed. Afterwards the logger is as it
    was, and the unraisable hook too unless a failure needs it kept (drop_orbax_unraisables)."""
    quiet, before = _OrbaxThreadErrors(), sys.unraisablehook
    logging.getLogger("absl").addFilter(quiet)
    drop_orbax_unraisables()
    during = sys.unraisablehook
    try:
        yield
    finally:
        logging.getLogger("absl").removeFilter(quiet)
        if sys.unraisablehook is during and not failed_writes:
            sys.unraisablehook = before


failed_writes: list[int] = []  # steps whose background write failed in this process
