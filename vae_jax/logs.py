"""What the library does to logging: nothing lasting. Its own progress lines reach a notebook by
default; Orbax's logs (through absl) neither configure the root logger nor warn of what is expected.

absl's `log` calls `logging.basicConfig()` whenever the root logger has no handler, so Orbax's very
import gives the root logger a handler, and after it the user's own `logging.basicConfig(...)`
does nothing. The package imports Orbax through `import_orbax`, which undoes that, and wraps its
own Orbax calls in `orbax_quiet`, which keeps absl from doing it again.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

LOGGER = "vae_jax"


def import_orbax() -> Any:
    """`orbax.checkpoint`, imported without leaving the root logger a handler it did not have."""
    root = logging.getLogger()
    before = list(root.handlers)
    import orbax.checkpoint as ocp

    for handler in list(root.handlers):
        if handler not in before:
            root.removeHandler(handler)
    return ocp


@contextlib.contextmanager
def orbax_quiet() -> Iterator[None]:
    """Around Orbax calls: absl's messages below ERROR are left out (a read-only manager's three
    warnings on every load, its INFO lines), and where the root logger has no handler it gets a
    NullHandler meanwhile, so that absl does not give it a lasting one. Afterwards both are as
    they were."""
    root, absl = logging.getLogger(), logging.getLogger("absl")
    placeholder = logging.NullHandler() if not root.handlers else None
    if placeholder:
        root.addHandler(placeholder)
    level = absl.level
    absl.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        absl.setLevel(level)
        if placeholder:
            root.removeHandler(placeholder)


@contextlib.contextmanager
def progress_shown() -> Iterator[None]:
    """During a run started from Python: where nobody configured logging (no handler on the way up
    from the package's logger), its INFO lines (the epochs, the evaluation, where the time went) go
    to stderr through a handler of the package's own logger, removed afterwards. Where logging is
    configured (the command-line tools, which quiet all but process 0; the user's own
    `logging.basicConfig(...)`), its levels and handlers decide and nothing changes."""
    logger = logging.getLogger(LOGGER)
    if _reaches_a_handler(logger):
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the root logger's own handler (if any) would print WARNING lines twice
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def _reaches_a_handler(logger: logging.Logger) -> bool:
    """Whether a record of `logger` meets a handler on its way up (the last resort does not count)."""
    while logger:
        if logger.handlers:
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False
