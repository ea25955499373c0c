"""The matmul precision policy. Every number we report (the ELBO and NLL of evaluate.py, the
per-epoch test ELBO, the API's encode/decode/elbo/evaluate) is computed with float32 matmuls on
every backend, so it does not depend on the chip: NVIDIA GPUs otherwise run float32 matmuls in
TF32 and TPUs in bfloat16 passes. Training runs at `Config.matmul_precision` (the backend's fast
default unless asked otherwise)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import TypeVar

import jax

REPORTED = "highest"  # float32 matmuls
F = TypeVar("F", bound=Callable)


@contextlib.contextmanager
def matmuls(precision: str) -> Iterator[None]:
    """Trace and run what is inside with `precision` ('default' leaves the backend's own)."""
    if precision == "default":
        yield
        return
    with jax.default_matmul_precision(precision):
        yield


def at(precision: str, fn: F) -> F:
    """`fn`, traced and run with matmul `precision` (jit caches one program per precision)."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with matmuls(precision):
            return fn(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def reported(fn: F) -> F:
    """Decorator: `fn` computes numbers we report, with float32 matmuls on every backend."""
    return at(REPORTED, fn)
