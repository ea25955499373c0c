"""A fit by gradient (adam.minimise) that keeps its progress: inside `kept(path, record)` it writes
its parameters, its optimizer's state and its epochs' losses to `path` after every epoch, and a fit
started again with the same record goes on from the epoch after the last one kept, to the result an
uninterrupted fit gives (the same batches and keys, drawn from the fit's key by epoch); who kept it
removes it (`done`) once the fit's result is safe. A file that cannot be read or holds another fit (another record, or
other shapes) is set aside with one warning, and the fit starts from its first epoch.

    with progress.kept("sampler_pixelcnn_step4680.partial.npz", {"seed": 0, ...}):
        state, history = samplers.pixelcnn.fit(codes, key, k=512)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import zipfile
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import jax
import numpy as np

from vae_jax import newfiles

log = logging.getLogger("vae_jax")

_KEPT: ContextVar[tuple[str, dict] | None] = ContextVar("vae_jax_fit_kept", default=None)


@contextlib.contextmanager
def kept(path: str, record: dict[str, Any]) -> Iterator[None]:
    """Fits by gradient inside keep their progress in `path`, as the fit that `record` (JSON) describes.

    Args:
        path: the file the progress is kept in (.npz).
        record: what is fitted, to what and how (the same record: the same fit).

    Yields:
        Nothing: the fit runs inside.
    """
    token = _KEPT.set((path, record))
    try:
        yield
    finally:
        _KEPT.reset(token)


def resumed(carry: Any) -> tuple[Any, list[float]]:
    """The state a fit starts from: `carry` (its parameters and optimizer state at the start) and no
    epochs, or, inside `kept` with a file of the same fit, the state and epochs' losses it holds.

    Args:
        carry: the fit's state at its start (a pytree of arrays).

    Returns:
        (the state, the losses of the epochs done).
    """
    place = _KEPT.get()
    if place is None or not os.path.lexists(place[0]):
        return carry, []
    path, record = place
    fresh, tree = jax.tree.flatten(carry)
    try:
        with np.load(path) as stored:
            leaves = [np.asarray(stored[f"leaf_{i}"]) for i in range(len(fresh))]
            history, held = list(np.asarray(stored["history"])), json.loads(str(stored["record"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        why = f"cannot be read ({type(e).__name__})"
    else:
        shapes = [np.shape(a) for a in fresh] == [a.shape for a in leaves]
        if held == record and shapes:
            log.warning("fit: going on from epoch %d, kept in %s", len(history) + 1, path)
            return jax.tree.unflatten(tree, leaves), history
        why = "holds another fit"
    aside = newfiles.set_aside(path, "set-aside")
    log.warning("fit: %s %s; moved to %s, fitting from the first epoch", path, why, aside)
    return carry, []


def keep(carry: Any, history: list[float]) -> None:
    """Inside `kept`: write the fit's state and its epochs' losses (replacing the last kept); else nothing.

    Args:
        carry: the fit's state after its last epoch (a pytree of arrays).
        history: the losses of the epochs done.
    """
    place = _KEPT.get()
    if place is None:
        return
    path, record = place
    arrays = {f"leaf_{i}": np.asarray(a) for i, a in enumerate(jax.tree.leaves(carry))}
    arrays |= {"history": np.asarray(history, np.float64), "record": np.array(json.dumps(record))}
    newfiles.replace(path, newfiles.npz(arrays))


def done() -> None:
    """Inside `kept`: the fit's result is stored, the progress kept goes."""
    place = _KEPT.get()
    if place is not None and os.path.lexists(place[0]):
        os.remove(place[0])
