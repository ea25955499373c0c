"""What the tutorial notebook needs around the package, kept out of its cells: the package's own
source of a function shown with where it lives, the runs' progress printed in order with what the
cells print, and whether the test suite runs it at its smallest settings."""

from __future__ import annotations

import inspect
import logging
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

from vae_jax import smoke
from vae_jax.logs import LOGGER


def show(fn: Callable[..., Any]) -> None:
    """Print the package's own source of `fn`, headed by its file (relative to the repository or
    site-packages folder) and the line it starts at.

    Args:
        fn: a function, method or class of the package.
    """
    lines, start = inspect.getsourcelines(fn)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print(f"# {os.path.relpath(inspect.getsourcefile(fn), root)}, line {start}\n" + "".join(lines))


def progress_in_order() -> None:
    """The runs' progress lines (the epochs, the evaluation) on stdout, where a notebook prints them
    in order with the cells' own output (stderr is shown apart, out of order); tqdm's note that no
    widgets are installed is left out. Calling it again changes nothing."""
    warnings.filterwarnings("ignore", message="IProgress not found")  # the bars need no widgets
    logger = logging.getLogger(LOGGER)
    if not any(getattr(h, "_vae_jax_notebook", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler._vae_jax_notebook = True
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def quick() -> bool:
    """Whether the notebook runs at the test suite's smallest settings ($VAE_JAX_SMOKE set)."""
    return smoke.on()
