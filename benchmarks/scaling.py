"""Training throughput of the default MLP VAE on 1 vs N (emulated) devices, float32 vs bfloat16.

    python benchmarks/scaling.py                 # 1 and 8 devices; --devices 1,2,8 --model conv

Each configuration runs in its own process (the device count is fixed when JAX starts; on a CPU,
XLA_FLAGS=--xla_force_host_platform_device_count=N splits the same cores into N devices, so
more devices are expected to be slower there: the point of the emulation is correctness). It
trains the MNIST sample with device-fed batches, as train.py does, and reports examples/s over
whole epochs after a warm-up epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(model: str, dtype: str, batch_size: int, epochs: int) -> dict:
    """Run inside the child process: examples/s of `epochs` timed epochs."""
    import jax

    from vae_jax import data, loop, parallel
    from vae_jax.config import Config
    from vae_jax.families import build
    from vae_jax.objectives.vae import ELBO
    from vae_jax.training import Batches, init_state, make_optimizer, make_train_steps

    dataset = data.load("mnist")
    config = Config(model=model, dtype=dtype, batch_size=batch_size)
    vae = build(config, dataset.image_shape)
    layout = parallel.layout()
    optimizer = make_optimizer(config)
    state = layout.replicate(init_state(vae, optimizer, ELBO(), jax.random.key(0)))
    steps = make_train_steps(vae, optimizer, ELBO(), True, batch_size, 0, layout)
    batches = Batches(
        steps, layout, jax.random.key(1), dataset.train_images, None, batch_size, "device", vae.convolutional
    )
    n_steps = batches.steps_per_epoch

    def epoch(e, state):
        return jax.block_until_ready(loop.run_epoch(batches, state, e)[0])

    state = epoch(0, state)  # compiles
    t0 = time.perf_counter()
    for e in range(1, epochs + 1):
        state = epoch(e, state)
    seconds = time.perf_counter() - t0
    return {
        "devices": jax.device_count(),
        "model": model,
        "dtype": dtype,
        "batch_size": batch_size,
        "examples_per_s": epochs * n_steps * batch_size / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="1,8")
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.model, args.child, args.batch_size, args.epochs)))
        return
    print("| devices | model | dtype | global batch | training examples/s |")
    print("|---|---|---|---|---|")
    for n in map(int, args.devices.split(",")):
        for dtype in args.dtypes.split(","):
            env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}"}
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    dtype,
                    "--model",
                    args.model,
                    "--batch-size",
                    str(args.batch_size),
                    "--epochs",
                    str(args.epochs),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(
                f"| {r['devices']} | {r['model']} | {r['dtype']} | {r['batch_size']} | {r['examples_per_s']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
