"""How long each command takes to print its --help (imports included): five runs each, every run shown.

    python benchmarks/startup.py

The commands parse their flags before importing JAX, Orbax or the model code, so `--help` and a
mistyped flag answer at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    for command in ("train.py", "sample.py", "evaluate.py", "encode.py"):
        seconds = []
        for _ in range(5):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, command, "--help"], cwd=ROOT, capture_output=True, check=True)
            seconds.append(time.perf_counter() - t0)
        print(f"{command} --help: " + ", ".join(f"{s:.2f}" for s in seconds) + " s")


if __name__ == "__main__":
    main()
