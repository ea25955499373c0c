"""Where a conv VAE's training step spends its time on this backend, and its layers against PyTorch's.

    python benchmarks/conv_profile.py             # --model conv|resnet --batch 128 --steps 20 --no-torch

Two tables. First, each convolution of the conv VAE alone at the step's shapes (batch 128):
forward, and the gradient of a scalar of its output with respect to its weights and input (the
input gradient is left out for the first layer, whose input is data), for XLA with this backend's
compiler options (vae_jax.compiling) and, when torch is installed, PyTorch eager (its default
threads), the same shapes. Second, the gradient of the model's loss (the mean one-sample ELBO of a
batch, no optimizer) traced with jax.profiler: each XLA operation's time per step, the largest
first, and what they add up to against the step's wall-clock (XLA runs some of them side by side).
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from throughput import timed  # the same clock as throughput.py's rows

from vae_jax import compiling, objectives
from vae_jax.config import Config
from vae_jax.families import build

# the conv VAE's convolutions on 28x28x1 (channels 32, 64): name, H, W, C_in, C_out, kernel, stride
LAYERS = (
    ("encoder 3x3 stride 2, 1 -> 32, 28x28", 28, 28, 1, 32, 3, 2),
    ("encoder 3x3 stride 2, 32 -> 64, 14x14", 14, 14, 32, 64, 3, 2),
    ("decoder 2x2, 64 -> 128, 7x7 (sub-pixel)", 7, 7, 64, 128, 2, 1),
    ("decoder 2x2, 32 -> 4, 14x14 (sub-pixel)", 14, 14, 32, 4, 2, 1),
)


def fastest_ms(fn, calls: int = 20, repeats: int = 5) -> float:
    """The fastest mean time of `calls` calls, over `repeats` tries, in ms (after one warm-up call)."""
    fn()
    return timed(lambda: [fn() for _ in range(calls)], repeats) / calls * 1e3


def xla_layer(batch: int, h: int, w: int, c_in: int, c_out: int, k: int, s: int) -> tuple[float, float]:
    """(forward ms, gradient ms) of one NHWC 'SAME' convolution compiled with this backend's options."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((batch, h, w, c_in)), jnp.float32)
    kernel = jnp.asarray(rng.normal(0, 0.1, (k, k, c_in, c_out)), jnp.float32)

    def loss(kernel, x):
        y = lax.conv_general_dilated(x, kernel, (s, s), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.sum(jax.nn.relu(y) ** 2)

    wrt = (0,) if c_in == 1 else (0, 1)
    forward, gradient = compiling.jit(loss), compiling.jit(jax.grad(loss, argnums=wrt))
    return (
        fastest_ms(lambda: jax.block_until_ready(forward(kernel, x))),
        fastest_ms(lambda: jax.block_until_ready(gradient(kernel, x))),
    )


def torch_layer(batch: int, h: int, w: int, c_in: int, c_out: int, k: int, s: int) -> tuple[float, float]:
    """The same in PyTorch eager (NCHW; 'SAME' as XLA pads it: the extra row and column after)."""
    import torch

    pad = max((-(-h // s) - 1) * s + k - h, 0)
    conv = torch.nn.Conv2d(c_in, c_out, k, stride=s)
    x = torch.rand(batch, c_in, h, w, requires_grad=c_in > 1)
    padded = lambda t: torch.nn.functional.pad(t, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))  # noqa: E731

    def forward():
        with torch.no_grad():
            conv(padded(x))

    def gradient():
        (torch.relu(conv(padded(x))) ** 2).sum().backward()

    return fastest_ms(forward), fastest_ms(gradient)


def step_profile(model: str, batch: int, steps: int) -> tuple[float, list[tuple[str, float]]]:
    """(wall-clock ms of one loss gradient, [(XLA operation, ms per step)] largest first)."""
    vae = build(Config(model=model), (28, 28, 1))
    params = vae.init(jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(0).random((batch, 28, 28, 1)) > 0.5, jnp.float32)
    gradient = compiling.jit(jax.grad(lambda p, x, key: -jnp.mean(objectives.batch_elbo(vae, p, x, key).elbo)))
    key = jax.random.key(1)
    wall = fastest_ms(lambda: jax.block_until_ready(gradient(params, x, key)), calls=steps)
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            for _ in range(steps):
                jax.block_until_ready(gradient(params, x, key))
        with gzip.open(glob.glob(f"{folder}/**/*.trace.json.gz", recursive=True)[0]) as f:
            trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    totals: collections.Counter = collections.Counter()
    for event in events:
        name = event.get("name", "")
        if event.get("ph") == "X" and "dur" in event and not name.startswith(("$", "ThunkExecutor", "Pjit")):
            if "Execute" not in name and "__call__" not in name:
                totals[name] += event["dur"] / 1e3 / steps
    return wall, totals.most_common()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="conv", choices=("conv", "resnet"))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--top", type=int, default=15, help="operations listed")
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    print(f"backend {jax.default_backend()}, options {compiling.options()}, batch {args.batch}\n")
    if args.model == "conv":
        print("| layer | XLA forward ms | XLA gradient ms | PyTorch forward ms | PyTorch gradient ms |")
        print("|---|---|---|---|---|")
        for name, *shape in LAYERS:
            ours = xla_layer(args.batch, *shape)
            theirs = ("-", "-") if args.no_torch else tuple(f"{t:.2f}" for t in torch_layer(args.batch, *shape))
            print(f"| {name} | {ours[0]:.2f} | {ours[1]:.2f} | {theirs[0]} | {theirs[1]} |")
        print()
    wall, ops = step_profile(args.model, args.batch, args.steps)
    print(f"{args.model} loss gradient at batch {args.batch}: {wall:.2f} ms per step (wall-clock); its operations:\n")
    print("| XLA operation | ms per step | share of the wall-clock |")
    print("|---|---|---|")
    for name, ms in ops[: args.top]:
        print(f"| `{name}` | {ms:.3f} | {ms / wall:.0%} |")
    print(f"| all {len(ops)} operations | {sum(ms for _, ms in ops):.2f} | {sum(ms for _, ms in ops) / wall:.0%} |")
    print("\n| kind of operation | ms per step |\n|---|---|")
    for kind, ms in grouped(ops).items():
        print(f"| {kind} | {ms:.2f} |")


KINDS = {  # an operation's kind, by what its XLA name contains (the first that matches)
    "convolutions": ("conv",),
    "transposes and layout copies": ("transpose", "copy"),
    "dots (dense layers)": ("dot",),
    "reduce-window (bias gradients)": ("reduce-window",),
}


def grouped(ops: list[tuple[str, float]]) -> dict[str, float]:
    """ms per step of each kind of operation (KINDS), and of the rest."""
    sums = dict.fromkeys([*KINDS, "everything else"], 0.0)
    for name, ms in ops:
        kind = next((k for k, parts in KINDS.items() if any(part in name for part in parts)), "everything else")
        sums[kind] += ms
    return sums


if __name__ == "__main__":
    main()
