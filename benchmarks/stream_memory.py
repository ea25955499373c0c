"""Peak host memory of a streamed run (--stream) against the size of the image folder.

    python benchmarks/stream_memory.py                  # 4,000 and 40,000 images of 64x64 RGB
    python benchmarks/stream_memory.py --sizes 1000,10000 --keep

Writes folders of smooth random 64x64 RGB PNGs (two class folders) under --root, then times one
epoch of `train.py --dataset FOLDER --stream` on each with `/usr/bin/time -v` and prints its
maximum resident set size and wall-clock, and the same without --stream (the folder decoded into
memory) for comparison. Streamed, the peak should not grow with the folder: only the held-out
test images (10%) and the list of file names do.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ["--epochs", "1", "--hidden", "128", "--latent-dim", "8", "--likelihood", "gaussian", "--eval-k", "1"]


def make_folder(path: str, n: int, side: int = 64) -> None:
    """n smooth random RGB images of side x side in two class folders (kept if already there)."""
    if os.path.isdir(path) and sum(len(f) for _, _, f in os.walk(path)) == n:
        return
    shutil.rmtree(path, ignore_errors=True)
    rng = np.random.default_rng(0)
    for c in "ab":
        os.makedirs(os.path.join(path, c))
    for i in range(n):
        coarse = rng.integers(0, 256, (side // 8, side // 8, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((side, side), Image.BILINEAR).save(os.path.join(path, "ab"[i % 2], f"{i}.png"))


def peak(folder: str, workdir: str, stream: bool) -> tuple[float, float]:
    """(maximum resident set size in MB, wall-clock seconds) of one epoch on `folder`."""
    shutil.rmtree(workdir, ignore_errors=True)
    command = ["/usr/bin/time", "-v", sys.executable, "train.py", "--dataset", folder, "--workdir", workdir, *FLAGS]
    proc = subprocess.run(command + (["--stream"] if stream else []), cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-2000:])
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", proc.stderr).group(1)
    seconds = sum(float(part) * 60**i for i, part in enumerate(reversed(wall.split(":"))))
    return rss_kb / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4000,40000", help="images per folder, comma separated")
    parser.add_argument("--root", default="/tmp/vae_jax_stream")
    parser.add_argument("--keep", action="store_true", help="keep the generated folders")
    args = parser.parse_args()
    print("| images | streamed: peak RSS MB | wall s | in memory: peak RSS MB | wall s |")
    print("|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        folder = os.path.join(args.root, f"images_{n}")
        make_folder(folder, n)
        streamed = peak(folder, os.path.join(args.root, "run"), stream=True)
        in_memory = peak(folder, os.path.join(args.root, "run"), stream=False)
        print(f"| {n} | {streamed[0]:.0f} | {streamed[1]:.0f} | {in_memory[0]:.0f} | {in_memory[1]:.0f} |", flush=True)
        if not args.keep:
            shutil.rmtree(folder)
    shutil.rmtree(os.path.join(args.root, "run"), ignore_errors=True)


if __name__ == "__main__":
    main()
