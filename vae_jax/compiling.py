"""Compiler options chosen per backend, in one place (OPTIONS); `jit` is jax.jit with them.

On a CPU, XLA hands reductions to the YNNPACK library (`xla_cpu_experimental_ynn_fusion_type`
REDUCE): the conv VAE's training step at batch 128 took 13.4 ms instead of 18.6, the resnet's 122
instead of 163, the mlp's the same, with the same gradients to float32 rounding (measured with
benchmarks/throughput.py and docs/performance.md). XLA's other CPU library options measured no
better or slower there (YNNPACK dot and eltwise fusions: the mlp 3x slower; XNNPACK and oneDNN
fusions: unchanged). GPUs and TPUs get no option from here: a CPU measurement decides nothing for
them. The options are chosen when a function is first called, not when it is defined: importing
the package must not start a backend (a multi-process run initializes JAX's distributed system
first)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax

OPTIONS: dict[str, dict[str, str]] = {"cpu": {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE"}}


def options(backend: str | None = None) -> dict[str, str]:
    """The compiler options of `backend` (default: JAX's default backend); {} for none."""
    return dict(OPTIONS.get(backend or jax.default_backend(), {}))


class _Jitted:
    """A function jitted with the backend's options on its first use (inside another jitted function,
    where only the outer program takes options, without them); otherwise jax.jit's object."""

    def __init__(self, fn: Callable, jit_kwargs: dict[str, Any]):
        functools.update_wrapper(self, fn)
        self._fn, self._jit_kwargs, self._jitted = fn, jit_kwargs, {}

    def _compiled(self, nested: bool = False):
        if nested not in self._jitted:
            chosen = None if nested else options() or None
            self._jitted[nested] = jax.jit(self._fn, compiler_options=chosen, **self._jit_kwargs)
        return self._jitted[nested]

    def __call__(self, *args, **kwargs):
        nested = any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((args, kwargs)))
        return self._compiled(nested)(*args, **kwargs)

    def __getattr__(self, name: str):  # lower, trace, eval_shape, ...
        return getattr(self._compiled(), name)


def jit(fn: Callable | None = None, **jit_kwargs) -> Any:
    """jax.jit(fn, **jit_kwargs) compiled with the backend's OPTIONS; usable as a decorator, with or
    without keyword arguments (`@jit`, `@jit(static_argnames=...)`)."""
    if fn is None:
        return functools.partial(jit, **jit_kwargs)
    return _Jitted(fn, jit_kwargs)
