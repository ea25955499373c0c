"""Digests of a saved train state, so that a flipped byte in a checkpoint is found as a truncated
file is: recorded in the step's metadata when it is saved and compared when it is restored.

One sha256 per top-level part of the state (params, opt_state, step), over every leaf's path,
dtype, shape and bytes in tree order: a caller that restores one part can check that part.
"""

from __future__ import annotations

import hashlib
from typing import Any

import jax
import numpy as np


def _host(leaf: Any) -> np.ndarray:
    """A leaf as a numpy array on the host (a replicated jax.Array: its first local copy)."""
    if isinstance(leaf, jax.Array):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        return np.asarray(leaf.addressable_data(0))
    return np.asarray(leaf)


def digests(state: Any, name: str | None = None) -> dict[str, str]:
    """{part: sha256 hex} of a pytree, one per top-level part (a NamedTuple's fields, a dict's keys),
    or {name: sha256 hex} of the whole tree when a `name` is given."""
    parts: dict[str, Any] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        part = name or jax.tree_util.keystr(path[:1]).lstrip(".") or "state"
        sha = parts.setdefault(part, hashlib.sha256())
        a = np.ascontiguousarray(_host(leaf))
        sha.update(f"{jax.tree_util.keystr(path)}\0{a.dtype.str}\0{a.shape}\0".encode())
        sha.update(a.data)
    return {part: sha.hexdigest() for part, sha in parts.items()}


def mismatches(recorded: dict[str, str] | None, state: Any, name: str | None = None) -> list[str]:
    """The parts of `state` (or the whole of it, `name`) whose digest differs from the one `recorded`
    at save time (parts not recorded, e.g. by a version that recorded none, are not checked)."""
    if not recorded:
        return []
    now = digests(state, name)
    return [part for part, value in now.items() if part in recorded and recorded[part] != value]
