"""Digests, so that a flipped byte in a saved file is found as a truncated file is.

Arrays (a train state, a fitted sampler): one sha256 per top-level part of a pytree (params,
opt_state, step), over every leaf's path, dtype, shape and bytes in tree order, recorded when it is
saved and compared when it is restored; a caller that restores one part can check that part.
JSON records (a step's metadata, a shipped model's record): the sha256 of the record's canonical
text, kept in one field of the record itself (`sealed`, `is_sealed`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np


def _host(leaf: Any) -> np.ndarray:
    """A leaf as a numpy array on the host (a replicated jax.Array: its first local copy)."""
    import jax  # here: the JSON records' seals are read by commands that do not otherwise need JAX

    if isinstance(leaf, jax.Array):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        return np.asarray(leaf.addressable_data(0))
    return np.asarray(leaf)


def digests(state: Any, name: str | None = None) -> dict[str, str]:
    """{part: sha256 hex} of a pytree, one per top-level part (a NamedTuple's fields, a dict's keys),
    or {name: sha256 hex} of the whole tree when a `name` is given."""
    import jax

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


def of_json(record: dict[str, Any], field: str) -> str:
    """sha256 hex of a JSON record without its `field` (where its own digest is kept): over the
    canonical text (sorted keys, no spaces), so that it checks what the record says, not its layout."""
    rest = {k: v for k, v in record.items() if k != field}
    text = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def sealed(record: dict[str, Any], field: str) -> dict[str, Any]:
    """`record` with its digest (of_json) in `field`."""
    return {**record, field: of_json(record, field)}


def is_sealed(record: Any, field: str) -> bool:
    """Whether `record` is a dict whose `field` holds the digest of the rest of it as it is now."""
    return isinstance(record, dict) and record.get(field) == of_json(record, field)
