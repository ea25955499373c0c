"""Memory: what a device has free, what a training run needs at the least (said, and refused
before anything is allocated when it cannot fit), and running out anyway told as one line."""

from __future__ import annotations

import logging
import math
from typing import Any

import jax

from vae_jax.errors import UserError

log = logging.getLogger("vae_jax")


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def host_available_bytes() -> int | None:
    """Memory this process can still take on the host: the kernel's MemAvailable, or less under a
    cgroup memory limit (v2 or v1); None where neither can be read."""
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit, usage in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        cap, used = _read_int(limit), _read_int(usage)
        if cap is not None and used is not None and cap < 2**60:
            found.append(max(cap - used, 0))
    return min(found) if found else None


def available_bytes() -> int | None:
    """Free memory of the first local device: an accelerator's own (bytes_limit - bytes_in_use),
    a CPU's from the host; None where it cannot be told."""
    stats = jax.local_devices()[0].memory_stats() if jax.default_backend() != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    return host_available_bytes()


def parameter_count(params: Any) -> int:
    """The number of parameters of a pytree of arrays (or of their shapes)."""
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params))


def _bytes(tree: Any) -> int:
    return sum(math.prod(leaf.shape) * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))


def check_training(state_shapes: Any, decoded_values: int, what_to_lower: str) -> None:
    """Say how large the model is, and refuse (UserError) a run that cannot fit in the device's free
    memory even at its least: the train state (`state_shapes`: its ShapeDtypeStructs, with a
    `params` part), one gradient of the params, and `decoded_values` float32 decoder outputs per
    device and step with their gradient. XLA's temporaries come on top of this."""
    n_params = parameter_count(state_shapes.params)
    state, params = _bytes(state_shapes), _bytes(state_shapes.params)
    decoded = 2 * 4 * decoded_values
    need = state + params + decoded
    size = f"{state / 1e9:.1f} GB" if state >= 1e9 else f"{state / 1e6:.1f} MB"
    log.info("model: %s parameters; params and optimizer state %s", f"{n_params:,}", size)
    free = available_bytes()
    if free is not None and need > free:
        raise UserError(
            f"this run needs at least {need / 2**30:.1f} GiB per device (params, optimizer state and a gradient: "
            f"{(state + params) / 2**30:.1f} GiB; a step's decoder outputs and their gradient: "
            f"{decoded / 2**30:.1f} GiB) and {free / 2**30:.1f} GiB are free; use a smaller {what_to_lower}"
        )


def is_out_of_memory(e: BaseException) -> bool:
    """Whether `e` is running out of memory: Python's MemoryError, or XLA's RESOURCE_EXHAUSTED."""
    return isinstance(e, MemoryError) or (
        type(e).__name__ in ("XlaRuntimeError", "JaxRuntimeError") and "RESOURCE_EXHAUSTED" in str(e)
    )
