"""The speed targets for a GPU or TPU, each measured the way it is stated, in one run.

    python benchmarks/targets.py                       # Fashion-MNIST, 30 epochs, k = 1000
    python benchmarks/targets.py --epochs 2 --k 10     # a quick look

1. `python train.py --dataset D --epochs E` with a warm compilation cache (a 1-epoch run with the
   same flags fills it first): wall-clock from launch, and its closing `time:` line.
2. That run's training speed (its fastest epoch's `seconds` in metrics.jsonl, which also hold the
   epoch's test ELBO) against the step rate throughput.py measures for the same model and batch.
3. `python evaluate.py --ckpt RUN --k K` on the test split: the time it prints (after start-up)
   and its wall-clock.
4. conv and resnet: an epoch against steps x the time of one step (throughput.py's epoch overhead).

The limits printed beside the numbers are those set for an H100-class GPU; elsewhere they are only
a reference.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import jax
from throughput import ROOT, roofline, train_row  # beside this script: Python puts its folder first on the path

from vae_jax import data
from vae_jax.config import Config


def _run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall-clock seconds of `python *args` from launch, and its output; stops on failure."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{' '.join(args)} failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - t0, proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--models", default="conv,resnet", help="models whose epoch overhead is measured ('': none)")
    parser.add_argument("--examples", type=int, default=16384, help="training images per epoch of those rows")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "VAE_JAX_CACHE": os.path.join(tmp, "cache")}
        train = ["train.py", "--dataset", args.dataset]
        _run([*train, "--epochs", "1", "--workdir", os.path.join(tmp, "warm")], env)
        run_dir = os.path.join(tmp, "run")
        wall, log = _run([*train, "--epochs", str(args.epochs), "--workdir", run_dir], env)
        breakdown = re.search(r"time: (.*)", log)
        rows.append((f"train.py, {args.epochs} epochs, warm cache: wall s", f"{wall:.1f}", "< 12 (30 epochs)"))
        rows.append(("  where it went (after imports)", breakdown.group(1) if breakdown else "?", ""))
        with open(os.path.join(run_dir, "metrics.jsonl")) as f:
            epochs = [r for r in map(json.loads, f) if "seconds" in r]
        eval_wall, eval_log = _run(["evaluate.py", "--ckpt", run_dir, "--k", str(args.k)], env)
        eval_s = re.search(r"^time\s+([0-9.]+) s", eval_log, re.M)
        eval_text = f"{eval_s.group(1) if eval_s else '?'} (wall {eval_wall:.1f})"
        rows.append((f"evaluate.py --k {args.k}, test split: s after start-up", eval_text, "< 3 (k = 1000)"))

    images = data.load(args.dataset).train_images
    batch, peak = Config().batch_size, roofline()
    step_s = train_row("mlp", batch, images[: args.examples], 1, peak)["step_ms"] / 1e3
    in_run = len(images) // batch * batch / min(r["seconds"] for r in epochs)  # train.py's default: mlp
    rows.append(
        ("train.py examples/s (epoch incl. test ELBO) / one step's rate", f"{in_run * step_s / batch:.0%}", ">= 80%")
    )
    for model in filter(None, args.models.split(",")):
        row = train_row(model, batch, images[: args.examples], 2, peak)
        rows.append((f"{model} epoch against steps x step time", f"{row['epoch_overhead']:+.1%}", "within 10%"))

    print(f"{jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}\n")
    print("| target | measured | limit (H100-class GPU) |\n|---|---|---|")
    for name, value, limit in rows:
        print(f"| {name} | {value} | {limit} |")


if __name__ == "__main__":
    main()
