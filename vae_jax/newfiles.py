"""The files the command-line tools write for the user (pictures, latents, evaluation results):
chosen and checked before any work is done, written whole under a temporary name, then put in
place without ever replacing a file that exists."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable

import numpy as np

from vae_jax.errors import UserError


def choose(out: str | None, default: str, suffix: str, number: bool = True) -> tuple[str, bool]:
    """(path, numbered) of the file to write: `out` as the user named it (refused if it exists, is
    a folder or does not end in `suffix`), else `default`, whose name is numbered (name-2.png,
    name-3.png, ...) where it is taken (with `number`; numbered: True). Its folder must be writable."""
    if out is not None:
        if os.path.isdir(out):
            raise UserError(f"--out {out}: is a folder; name the {suffix} file to write")
        if not out.lower().endswith(suffix):
            raise UserError(f"--out {out}: must end in {suffix}")
        if os.path.lexists(out):
            raise UserError(f"--out {out}: exists; remove it or choose another path (nothing is overwritten)")
    path = out if out is not None else _free(default) if number else default
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(folder) and not os.access(folder, os.W_OK):
        flag = "--out" if out is not None else f"the default {os.path.basename(default)}"
        raise UserError(f"cannot write in {folder} ({flag}): the folder is read-only; choose --out elsewhere")
    return path, out is None and number


def _free(path: str) -> str:
    """`path`, or the first of path-2, path-3, ... (before its suffix) that does not exist."""
    stem, suffix = os.path.splitext(path)
    n = 1
    while os.path.lexists(path):
        n += 1
        path = f"{stem}-{n}{suffix}"
    return path


def _temporary(path: str) -> str:
    """An empty file beside `path` (hidden, with the permissions a new file of the user gets)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        os.close(fd)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None
    return tmp


def write_new(path: str, write: Callable[[str], None], numbered: bool = False) -> str:
    """`write(tmp)` writes the whole file to a temporary path beside `path`; it is then linked to
    `path`, which fails rather than replace a file that appeared meanwhile (another run writing the
    same name): a UserError, or with `numbered` the next free numbered name. Returns the path."""
    tmp = _temporary(path)
    try:
        write(tmp)
        while True:
            try:
                os.link(tmp, path)
                return path
            except FileExistsError:
                if not numbered:
                    raise UserError(
                        f"{path}: was created by another process while this one was writing it; it was left "
                        "as it is: choose another --out"
                    ) from None
                path = _free(path)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        os.remove(tmp)


def set_aside(path: str, why: str) -> str:
    """Move a file that cannot be used to `<why>-<date>-<name>` beside it (never replacing one) and
    return that path; a UserError naming the file when it cannot be moved."""
    folder, name = os.path.split(os.path.abspath(path))
    target = _free(os.path.join(folder, f"{why}-{time.strftime('%Y%m%d-%H%M%S')}-{name}"))
    try:
        os.link(path, target)
        os.remove(path)
    except OSError as e:
        raise UserError(f"{path}: cannot be used and cannot be moved aside ({e.strerror}); move it away") from None
    return target


def replace(path: str, write: Callable[[str], None]) -> str:
    """Write a file that is the latest of its kind (replacing the one before it) whole: to a
    temporary path beside it, then renamed over it. Returns the path."""
    tmp = _temporary(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        os.remove(tmp)
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def npz(arrays: dict[str, np.ndarray]) -> Callable[[str], None]:
    """A writer of `arrays` as an .npz file at exactly the path it is given (np.savez would add .npz
    to a temporary name): for `write_new` and `replace`."""

    def write(path: str) -> None:
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    return write
