"""Reading an ArrayRecord file (the format of prepared TFDS copies) one record at a time against
the bulk reads of `tfds_source.READ_CHUNK` records that `vae_jax.data.tfds_source` makes.

    python benchmarks/tfds_reads.py            # 60,000 records of 400 bytes, about an MNIST PNG each

Only the read layer is timed: decoding each example's PNG is the same work either way.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from array_record.python.array_record_data_source import ArrayRecordDataSource
from array_record.python.array_record_module import ArrayRecordWriter

from vae_jax.data.tfds_source import READ_CHUNK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--bytes", type=int, default=400)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "split.array_record")
        writer = ArrayRecordWriter(path, "group_size:1")
        for _ in range(args.records):
            writer.write(rng.integers(0, 256, args.bytes, dtype=np.uint8).tobytes())
        writer.close()
        t0 = time.perf_counter()
        source = ArrayRecordDataSource([path])
        one = [source[i] for i in range(len(source))]
        one_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        source = ArrayRecordDataSource([path])
        bulk = []
        for start in range(0, len(source), READ_CHUNK):
            bulk += source.__getitems__(list(range(start, min(start + READ_CHUNK, len(source)))))
        bulk_s = time.perf_counter() - t0
    assert one == bulk
    print(
        f"{args.records} records of {args.bytes} bytes: one at a time {one_s:.2f} s, "
        f"{READ_CHUNK} per read {bulk_s:.2f} s ({one_s / bulk_s:.1f}x)"
    )


if __name__ == "__main__":
    main()
