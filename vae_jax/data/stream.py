"""Batches of a training set left on disk (an image folder's `images.Files`), read and decoded by
Grain's background threads ahead of the steps that need them, so that host memory does not grow
with the dataset.

The batches are those of every other feed: batch i of epoch e holds the examples
perm_e[i*B : (i+1)*B] of the epoch's permutation (training.epoch_permutation), and each process
reads only its own rows of it. A resumed run therefore continues with the same batches from the
step its checkpoint holds: the position in the data is the step, and nothing else needs saving.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import numpy as np

READ_THREADS = 8  # files decoded at once (PIL releases the GIL while it decodes)
PREFETCH_BATCHES = 4  # batches read ahead of the step that needs them


class _Rows:
    """Examples idx[0], idx[1], ... of a training set, as (image, label) records; counts its reads."""

    def __init__(self, images: Sequence, labels: np.ndarray | None, idx: np.ndarray, counter: _Counter):
        self.images, self.labels, self.idx, self.counter = images, labels, idx, counter

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, j: int) -> tuple[np.ndarray, np.int32]:
        i = int(self.idx[j])
        self.counter.add(1)
        return self.images[i], np.int32(0 if self.labels is None else self.labels[i])


class _Counter:
    def __init__(self):
        self.value, self._lock = 0, threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.value += n


class Stream:
    """This process's rows (`rows`, a slice of each global batch of `batch_size`) of the batches of
    a training set `images` (a sequence of uint8 (H, W, C) arrays) with its `labels` (or None)."""

    def __init__(self, images: Sequence, labels: np.ndarray | None, batch_size: int, rows: slice):
        self.images, self.labels, self.batch_size, self.rows = images, labels, batch_size, rows
        self.reads = _Counter()  # images read so far by this process

    def batches(self, perm: np.ndarray, first: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """(images (b, H, W, C) uint8, labels (b,) int32 or None) of this process's b rows of
        batches first, first + 1, ... of the epoch whose example order is perm: (N,)."""
        import grain  # only streamed runs need it

        steps = len(perm) // self.batch_size
        idx = np.asarray(perm)[: steps * self.batch_size].reshape(steps, self.batch_size)[first:, self.rows]
        local = idx.shape[1]
        records = grain.MapDataset.source(_Rows(self.images, self.labels, idx.ravel(), self.reads)).batch(local)
        reading = records.to_iter_dataset(
            grain.ReadOptions(num_threads=READ_THREADS, prefetch_buffer_size=PREFETCH_BATCHES)
        )
        for images, labels in reading:
            yield images, None if self.labels is None else labels
