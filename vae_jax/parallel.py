"""Where arrays live: a data-parallel Mesh over every device of every process, and how batches reach it.

Params and optimizer state are replicated; a batch is split along the mesh's `data` axis, and
XLA inserts the gradient all-reduce. Two ways to feed batches, giving the same batches:
- "device": the uint8 training set is replicated on every device (MNIST-size data: tens of MB);
  a step gathers its rows there, so the inner loop has no host->device copy.
- "host": each process gathers only its own rows of every batch on the host and hands them to
  jax.make_array_from_process_local_data; used with several processes, or when the training set
  is larger than DEVICE_DATASET_BYTES.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from vae_jax.errors import UserError

log = logging.getLogger("vae_jax")

DATA = "data"
DEVICE_DATASET_BYTES = 2 * 2**30  # a replicated uint8 training set above this is fed from the host


def initialize(
    distributed: bool = False,
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Join a multi-process run with `jax.distributed.initialize` when asked (`distributed`, or any
    of the explicit arguments), when JAX_COORDINATOR_ADDRESS is set, or on a TPU pod (the
    TPU_WORKER_HOSTNAMES variable lists several hosts; JAX reads the rest from the TPU metadata).
    On CPU the collectives go over gloo. Must run before anything touches a device; a second call
    does nothing."""
    pod = "," in os.environ.get("TPU_WORKER_HOSTNAMES", "")
    asked = distributed or coordinator or num_processes or process_id is not None
    if jax.distributed.is_initialized() or not (asked or pod or os.environ.get("JAX_COORDINATOR_ADDRESS")):
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id)
    except (RuntimeError, ValueError) as e:
        raise UserError(f"cannot join the other processes: {str(e).strip().splitlines()[0][:200]}") from None
    log.info(
        "process %d of %d: %d local / %d global devices",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
    )


def barrier(name: str) -> None:
    """Wait until every process gets here (nothing to wait for in a single process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def main_process_says(flag: bool) -> bool:
    """Process 0's `flag`, on every process (a barrier, so all decide alike)."""
    if jax.process_count() == 1:
        return flag
    return bool(multihost_utils.broadcast_one_to_all(np.int32(flag)))


def is_main_process() -> bool:
    """Process 0 writes pictures, logs and progress bars; every process takes part in the rest."""
    return jax.process_index() == 0


@dataclass(frozen=True)
class Layout:
    """A 1-D mesh over `devices` with axis `data`."""

    mesh: Mesh

    @property
    def n_devices(self) -> int:
        return self.mesh.size

    @property
    def platform(self) -> str:
        """The devices' platform: 'cpu', 'gpu' or 'tpu'."""
        return self.mesh.devices.flat[0].platform

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec())

    @property
    def batch(self) -> NamedSharding:
        """Leading axis split over the devices."""
        return NamedSharding(self.mesh, PartitionSpec(DATA))

    def check_batch_size(self, batch_size: int) -> None:
        """A global batch must split evenly over the devices; else a UserError naming the nearest sizes."""
        n = self.n_devices
        if batch_size % n:
            lower, upper = batch_size // n * n, (batch_size // n + 1) * n
            sizes = f"{lower} or {upper}" if lower else f"{upper}"
            raise UserError(
                f"--batch-size {batch_size} is the global batch and must be a multiple of the {n} devices; try {sizes}"
            )

    def replicate(self, tree: Any) -> Any:
        """Every leaf of `tree` (the same on every process; PRNG keys too) as a global array
        replicated on all devices."""

        def put(leaf):
            is_key = jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)
            host = np.asarray(jax.random.key_data(leaf) if is_key else leaf)
            array = jax.make_array_from_callback(host.shape, self.replicated, lambda index: host[index])
            return jax.random.wrap_key_data(array, impl=jax.random.key_impl(leaf)) if is_key else array

        return jax.tree.map(put, tree)

    @staticmethod
    def local(tree: Any) -> Any:
        """A replicated global `tree` as plain arrays on one local device: for work every process
        can do on its own (evaluation, pictures), with no cross-device traffic."""
        return jax.tree.map(lambda a: a.addressable_data(0), tree)

    def local_rows(self, batch_size: int) -> slice:
        """The rows of a global batch of `batch_size` that this process's devices hold."""
        index_map = self.batch.addressable_devices_indices_map((batch_size,))
        starts = sorted(index[0].start or 0 for index in index_map.values())
        stops = sorted(index[0].stop if index[0].stop is not None else batch_size for index in index_map.values())
        return slice(starts[0], stops[-1])

    def feed(self, local: np.ndarray, batch_size: int) -> jax.Array:
        """This process's rows of a global batch -> the global batch (batch_size, ...) split over the devices."""
        return jax.make_array_from_process_local_data(self.batch, local, (batch_size, *local.shape[1:]))


def layout(devices: list | None = None) -> Layout:
    """The data-parallel layout over `devices` (default: all devices of all processes)."""
    return Layout(Mesh(np.array(devices if devices is not None else jax.devices()), (DATA,)))


def feeding(layout: Layout, dataset_bytes: int) -> str:
    """'device' or 'host' (see the module docstring)."""
    if jax.process_count() > 1 or dataset_bytes > DEVICE_DATASET_BYTES:
        return "host"
    return "device"
