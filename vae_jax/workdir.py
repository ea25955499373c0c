"""The folder of a run: created, locked while a run uses it, cleared of half-written steps, and
archived by --fresh. Nothing in it is ever deleted but Orbax's temporary folders of unfinished
saves and the steps --keep retires."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterator

from vae_jax import parallel
from vae_jax.errors import UserError

log = logging.getLogger("vae_jax")

LOCK_FILE = ".lock"
RUN_FILES = ("config.json", "metrics.jsonl")  # with step folders: what says a folder holds a run
TMP_MARK = ".orbax-checkpoint-tmp"  # Orbax writes a step under this name, then renames it when complete
REMOVED = ".removed-steps"  # where Orbax moves a step --keep retires, before it is deleted


def make(workdir: str) -> None:
    """Create `workdir` (and its parents) if needed; a UserError if that is impossible."""
    try:
        os.makedirs(workdir, exist_ok=True)
    except OSError as e:
        raise UserError(f"--workdir {workdir}: cannot create the folder ({e.strerror})") from None


class Lock:
    """An exclusive lock on `workdir` held by this process (fcntl.flock on `workdir/.lock`): a
    second run on the same folder is refused, and the kernel releases it when the holder dies,
    SIGKILL included, so a killed run leaves nothing to clean up."""

    def __init__(self, workdir: str):
        try:
            self.fd = os.open(os.path.join(workdir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"{workdir}: cannot open the checkpoints ({e.strerror})") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self.fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            raise UserError(
                f"{workdir} is in use by another run (process {holder}); wait for it to end or use another --workdir"
            ) from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


@contextlib.contextmanager
def claimed(workdir: str, fresh: bool = False) -> Iterator[None]:
    """Hold `workdir` for one run: process 0 creates and locks it, moves an old run aside (`fresh`)
    and removes unfinished saves; every process learns whether that worked, then finds the folder.
    A run that fails before it writes anything leaves no trace: the lock file it made, and the
    folder it made, are removed again."""
    lock, error = None, None
    made = not os.path.exists(workdir), not os.path.exists(os.path.join(workdir, LOCK_FILE))
    if parallel.is_main_process():
        try:
            make(workdir)
            lock = Lock(workdir)
            if fresh:
                archive(workdir)
            remove_unfinished_saves(workdir)
        except UserError as e:
            error = e
    if not parallel.main_process_says(error is None):
        if lock:
            lock.release()
        raise error or UserError(f"{workdir}: process 0 could not claim the workdir (see its error)")
    try:
        make(workdir)
        yield
    except BaseException:
        if lock:
            _untraced(workdir, *made)
        raise
    finally:
        if lock:
            lock.release()


def _untraced(workdir: str, made_folder: bool, made_lock: bool) -> None:
    """After a failed run: remove the lock file and the folder this run made, if nothing else is there."""
    with contextlib.suppress(OSError):
        if made_lock and os.listdir(workdir) == [LOCK_FILE]:
            os.remove(os.path.join(workdir, LOCK_FILE))
        if made_folder and not os.listdir(workdir):
            os.rmdir(workdir)


def steps_in(directory: str) -> list[int]:
    """The numbers of the step folders in `directory`, ascending (none where it is no folder)."""
    return sorted(int(e) for e in os.listdir(directory) if e.isdigit()) if os.path.isdir(directory) else []


def unfinished_saves(directory: str) -> list[str]:
    """The names of Orbax's temporary folders in `directory`: saves being written, or never completed."""
    return sorted(e for e in os.listdir(directory) if TMP_MARK in e)


def remove_unfinished_saves(workdir: str) -> list[str]:
    """Delete the temporary folders of saves that never completed (a crash or a full disk mid-save):
    they are not checkpoints and hold the space the next save needs. Returns their names."""
    names = unfinished_saves(workdir)
    for name in names:
        for _ in range(40):  # after a failed write, Orbax's tasks may still be adding files for a moment
            shutil.rmtree(os.path.join(workdir, name), ignore_errors=True)
            if not os.path.exists(os.path.join(workdir, name)):
                break
            time.sleep(0.05)
    if names:
        log.info("%s: removed %d unfinished checkpoint save(s): %s", workdir, len(names), ", ".join(names))
    clear_removed(workdir)
    return names


def clear_removed(workdir: str) -> None:
    """Delete the steps that --keep retired (moved into REMOVED whole, so that a reader of the folder
    never finds a step half deleted)."""
    shutil.rmtree(os.path.join(workdir, REMOVED), ignore_errors=True)


def archive(workdir: str) -> None:
    """Move everything of a previous run in `workdir` into a dated subfolder; nothing is deleted. A
    folder that holds files but no run is refused (UserError): they are not a run to set aside."""
    if not os.path.isdir(workdir):
        return
    entries = [e for e in os.listdir(workdir) if not e.startswith(".") and not e.startswith("previous-")]
    if not entries:
        return
    if not any(e.isdigit() or e in RUN_FILES or e.startswith("damaged-") for e in entries):
        shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
        raise UserError(
            f"--fresh: {workdir} holds no run (no checkpoint, config.json or metrics.jsonl) but other files ({shown}); "
            "nothing was moved: use an empty or a new --workdir"
        )
    target = os.path.join(workdir, time.strftime("previous-%Y%m%d-%H%M%S"))
    os.makedirs(target)
    for e in entries:
        shutil.move(os.path.join(workdir, e), target)
    log.info("%s: moved the previous run to %s", workdir, target)


def free_bytes(path: str) -> int:
    """Bytes free on the filesystem of `path` (-1 if it cannot be told)."""
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return -1
