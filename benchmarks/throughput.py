"""Training and evaluation throughput against this machine's matmul roofline.

    python benchmarks/throughput.py            # markdown tables; --json for machines
    python benchmarks/throughput.py --models mlp --batches 128,512 --epochs 2

The roofline is a 2048x2048x2048 float32 matmul at the backend's default precision (on an
accelerator also one at 'highest' precision, which evaluation runs at, and a bfloat16 one), jitted
and timed in the same run, at its start and at its end: the faster counts. FLOPs per example come from
XLA's cost analysis of the training step (one step, no loop) compiled for the CPU, whatever the
backend, so the count is the same everywhere (XLA's GPU cost analysis leaves out cuDNN
convolutions); not from a hand count. Per (model, batch size): compile time, time to the first
step, the time of one step called alone, examples/s over whole epochs run as train.py runs them
(MNIST sample tiled to --examples images, device-fed, the same chunking), and the epoch's overhead
over steps x step time (fastest of several, both). Evaluation: importance samples/s of the
program `evaluate` runs for each batch (k = 1000, its default chunking, float32 matmuls).
`--profile` times the pieces of an mlp step, and single conv layers, alone. `--warm-start` times
`python train.py` from launch to its first step, twice with an empty persistent compilation cache
(cold, then warm).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vae_jax import data, loop, precision
from vae_jax.config import Config
from vae_jax.data import pixels
from vae_jax.data.pixels import eval_images
from vae_jax.evaluation import default_chunking, evaluate_batch, importance_chunk, pixels_per_call
from vae_jax.families import build
from vae_jax.objectives import Batch
from vae_jax.objectives.vae import ELBO
from vae_jax.parallel import layout
from vae_jax.training import Batches, epoch_keys, epoch_permutation, init_state, make_optimizer, make_train_steps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(fn, repeats: int) -> float:
    """Fastest seconds of fn() (which must block until its result is ready) over `repeats` calls:
    on a shared machine the minimum is the least disturbed measurement."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.min(times))


def _flops(fn, *args) -> float:
    """FLOPs of fn(*args) from XLA's cost analysis of its CPU lowering, whatever the backend: the
    same count everywhere (XLA's GPU cost analysis leaves out cuDNN convolutions)."""
    compiled = jax.jit(fn).lower(*jax.device_put(args, jax.devices("cpu")[0])).compile()
    analysis = compiled.cost_analysis()
    return float((analysis[0] if isinstance(analysis, list) else analysis)["flops"])


def roofline(n: int = 2048, repeats: int = 10, dtype=jnp.float32, at: str = "default") -> float:
    """FLOP/s of an n x n x n matmul in `dtype` at matmul precision `at` ('default': the backend's)."""
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype)
    with precision.matmuls(at):
        matmul = jax.jit(jnp.matmul)
        matmul(a, b).block_until_ready()
        return 2 * n**3 / timed(lambda: matmul(a, b).block_until_ready(), repeats)


def train_row(model: str, batch_size: int, images: np.ndarray, epochs: int, peak: float) -> dict:
    """Throughput of training `model` at `batch_size` on uint8 `images` (N, 28, 28, 1)."""
    t_start = time.perf_counter()
    config = Config(model=model, batch_size=batch_size)
    vae = build(config, images.shape[1:])
    optimizer = make_optimizer(config)
    steps = make_train_steps(vae, optimizer, ELBO(), True, batch_size)
    state = jax.jit(lambda k: init_state(vae, optimizer, ELBO(), k))(jax.random.key(0))
    on_device = jnp.asarray(images)
    train_key = jax.random.key(1)
    n_steps = len(images) // batch_size
    perm, step_root = epoch_permutation(train_key, 0, len(images)), epoch_keys(train_key, 0)[1]
    args = (state, on_device, None, perm, step_root, jnp.int32(0))

    t0 = time.perf_counter()
    one_step = steps.run.lower(*args, n_steps=1).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(one_step(*args))
    first_step_s = time.perf_counter() - t_start
    flops_per_step = _flops(lambda *a: steps.run(*a, n_steps=1), *args)
    step_s = timed(lambda: jax.block_until_ready(one_step(*args)), 20)

    batches = Batches(
        steps, layout(jax.devices()[:1]), train_key, images, None, batch_size, "device", vae.convolutional
    )

    def epoch(e: int, state):
        return jax.block_until_ready(loop.run_epoch(batches, state, e)[0])

    state = epoch(0, state)  # compiles the chunk lengths an epoch uses
    epoch_times = []
    for e in range(1, epochs + 1):
        t0 = time.perf_counter()
        state = epoch(e, state)
        epoch_times.append(time.perf_counter() - t0)
    epoch_s = min(epoch_times)
    achieved = flops_per_step * n_steps / epoch_s
    return {
        "model": model,
        "likelihood": config.resolved().likelihood,
        "batch_size": batch_size,
        "steps_per_epoch": n_steps,
        "examples_per_s": n_steps * batch_size / epoch_s,
        "flops_per_example": flops_per_step / batch_size,
        "gflops_per_s": achieved / 1e9,
        "fraction_of_matmul": achieved / peak,
        "step_ms": step_s * 1e3,
        "epoch_s": epoch_s,
        "epoch_overhead": epoch_s / (n_steps * step_s) - 1,
        "compile_s": compile_s,
        "first_step_s": first_step_s,
    }


def eval_row(model: str, images: np.ndarray, peak: float, k: int = 1000, repeats: int = 3) -> dict:
    """Importance samples/s of evaluation with k samples per example, at its default chunking and
    the reported precision: the one program `evaluate` runs for each batch, timed alone."""
    vae = build(Config(model=model), images.shape[1:])
    params = vae.init(jax.random.key(0))
    with precision.matmuls(precision.REPORTED):
        chunk, batch = default_chunking(math.prod(images.shape[1:]), k, per_call=pixels_per_call(vae))
        batch = min(batch, len(images))
        xs = eval_images(jnp.asarray(images[:batch]), True)
        args = (params, xs, None, jax.random.key(0), jnp.int32(0))
        compiled = evaluate_batch.lower(vae, *args, k // chunk * chunk, chunk).compile()
        seconds = timed(lambda: jax.block_until_ready(compiled(*args)), repeats)
        keys = jax.random.split(jax.random.key(0), batch)
        chunk_args = (params, xs, None, keys, jnp.int32(0))
        flops = k // chunk * _flops(lambda *a: importance_chunk(vae, *a, chunk), *chunk_args)
    achieved = flops / seconds
    return {
        "model": model,
        "examples_per_call": batch,
        "samples_per_example_per_call": chunk,
        "importance_samples_per_s": batch * k / seconds,
        "flops_per_sample": flops / (batch * k),
        "gflops_per_s": achieved / 1e9,
        "fraction_of_matmul": achieved / peak,
    }


def mlp_profile(batch_size: int, peak: float) -> dict:
    """Where an mlp step's time goes: its pieces jitted and timed alone, in ms, and the
    fraction of the matmul roofline that its four big matmuls reach at these shapes."""
    config = Config(batch_size=batch_size)
    vae = build(config, (28, 28, 1))
    optimizer = make_optimizer(config)
    state = init_state(vae, optimizer, ELBO(), jax.random.key(0))
    u8 = jax.random.randint(jax.random.key(1), (batch_size, 28, 28, 1), 0, 256).astype(jnp.uint8)
    x, key = eval_images(u8, True), jax.random.key(2)
    grad = jax.jit(jax.grad(lambda p: ELBO().loss(vae, p, {}, Batch(x, None, batch_size), key, 0)[0]))
    grads = grad(state.params)
    adam = jax.jit(lambda g, s, p: optax.apply_updates(p, optimizer.update(g, s, p)[0]))
    binarize = jax.jit(lambda k: pixels.binarize(k, u8))
    n_pixels, hidden = 784, config.hidden[0]
    a, h = jnp.ones((batch_size, n_pixels)), jnp.ones((batch_size, hidden))
    w1, w2 = jnp.ones((n_pixels, hidden)), jnp.ones((hidden, n_pixels))
    matmuls = jax.jit(lambda a, h: (a @ w1, h @ w2, a.T @ h, h.T @ a))  # encoder/decoder layer, their weight gradients
    ms = lambda fn: timed(lambda: jax.block_until_ready(fn()), 30) * 1e3  # noqa: E731
    matmul_ms = ms(lambda: matmuls(a, h))
    return {
        "batch_size": batch_size,
        "gradient_ms": ms(lambda: grad(state.params)),
        "adam_ms": ms(lambda: adam(grads, state.opt_state, state.params)),
        "binarize_ms": ms(lambda: binarize(key)),
        "big_matmuls_ms": matmul_ms,
        "big_matmuls_fraction_of_matmul": 4 * 2 * batch_size * n_pixels * hidden / (matmul_ms / 1e3) / peak,
    }


def conv_layer_profile(peak: float, batch_size: int = 128) -> list[dict]:
    """GFLOP/s of single convolution layers of the conv/resnet models, forward and gradient
    (w.r.t. kernel and input), each jitted and timed alone, as fractions of the roofline."""
    import flax.linen as nn

    layers = {
        "3x3 stride 1, 32->32, 28x28": (nn.Conv(32, (3, 3), padding="SAME"), (28, 28, 32)),
        "3x3 stride 2, 1->32, 28x28": (nn.Conv(32, (3, 3), strides=(2, 2), padding="SAME"), (28, 28, 1)),
        "3x3 stride 2, 32->64, 14x14": (nn.Conv(64, (3, 3), strides=(2, 2), padding="SAME"), (14, 14, 32)),
        "2x2 stride 1, 64->128, 7x7 (sub-pixel up-sampling)": (nn.Conv(128, (2, 2), padding="SAME"), (7, 7, 64)),
        "3x3 transposed stride 2, 64->32, 7x7": (
            nn.ConvTranspose(32, (3, 3), strides=(2, 2), padding="SAME"),
            (7, 7, 64),
        ),
    }
    rows = []
    for name, (layer, shape) in layers.items():
        x = jnp.ones((batch_size, *shape))
        params = layer.init(jax.random.key(0), x)
        gradient = jax.grad(lambda p, x, layer=layer: jnp.sum(layer.apply(p, x) ** 2), argnums=(0, 1))
        forward, grad = (jax.jit(f).lower(params, x).compile() for f in (layer.apply, gradient))
        f_s = timed(lambda: forward(params, x).block_until_ready(), 10)
        g_s = timed(lambda: jax.block_until_ready(grad(params, x)), 10)
        rows.append(
            {
                "layer": name,
                "forward_fraction_of_matmul": _flops(layer.apply, params, x) / f_s / peak,
                "gradient_fraction_of_matmul": _flops(gradient, params, x) / g_s / peak,
                "gradient_ms": g_s * 1e3,
            }
        )
    return rows


def warm_start(repeats: int = 2) -> tuple[list[float], dict]:
    """Seconds from launching `python train.py` to its first training step, with a fresh
    persistent compilation cache: the first launch is cold, the later ones warm. Then one whole
    warm run (2 epochs, --eval-k 100): its wall-clock and the breakdown of its closing `time:` line."""
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "VAE_JAX_CACHE": os.path.join(tmp, "cache")}
        for i in range(repeats):
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "train.py", "--epochs", "1", "--workdir", os.path.join(tmp, f"run{i}")],
                cwd=ROOT,
                env=env,
                stderr=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                text=True,
            )
            for line in proc.stderr:
                if "first training step done" in line:
                    times.append(time.perf_counter() - t0)
                    break
            proc.kill()
            proc.wait()
        command = ["train.py", "--epochs", "2", "--eval-k", "100", "--workdir", os.path.join(tmp, "whole")]
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    line = next((x for x in proc.stderr.splitlines() if "time: " in x), "time: (not printed)")
    return times, {"command": "python " + " ".join(command[:-2]), "wall_s": wall, "breakdown": line.split("time: ")[1]}


def _against(rows: list[dict], old: float, new: float) -> list[dict]:
    """`rows` with every fraction of the matmul roofline `old` re-expressed as one of `new`."""
    return [{k: v * old / new if k.endswith("fraction_of_matmul") else v for k, v in r.items()} for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,conv,resnet")
    parser.add_argument("--batches", default="128,512")
    parser.add_argument(
        "--epochs", type=int, default=3, help="timed epochs per row (after one warm-up epoch); the fastest counts"
    )
    parser.add_argument(
        "--examples", type=int, default=16384, help="training images per epoch (the MNIST sample, tiled)"
    )
    parser.add_argument("--warm-start", action="store_true", help="also time train.py to its first step, cold and warm")
    parser.add_argument(
        "--profile", action="store_true", help="also time the pieces of an mlp step, and single conv layers, alone"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    train = data.load("mnist").train_images
    images = np.concatenate([train] * -(-args.examples // len(train)))[: args.examples]
    accelerator = jax.default_backend() != "cpu"
    peak = roofline()
    # accelerators: bfloat16 matmuls too (what TF32 / bf16-pass training can approach), and float32
    # at the precision evaluation runs at (on a CPU the default is float32 already)
    peak_bf16 = roofline(dtype=jnp.bfloat16) if accelerator else None
    peak_f32 = roofline(at=precision.REPORTED) if accelerator else peak
    models = args.models.split(",")
    rows = [train_row(m, int(b), images, args.epochs, peak) for m in models for b in args.batches.split(",")]
    evals = [eval_row(m, images, peak_f32) for m in models]
    starts, whole = warm_start() if args.warm_start else ([], {})
    profile = [mlp_profile(int(b), peak) for b in args.batches.split(",")] if args.profile else []
    layers = conv_layer_profile(peak) if args.profile else []
    # the rooflines again at the end; the faster of the two counts (other work on a shared machine
    # can slow one of them, which would inflate every fraction)
    best = max(peak, roofline())
    best_f32 = max(peak_f32, roofline(at=precision.REPORTED)) if accelerator else best
    rows, profile, layers = (_against(r, peak, best) for r in (rows, profile, layers))
    evals = _against(evals, peak_f32, best_f32)
    peak, peak_f32 = best, best_f32
    if args.json:
        print(
            json.dumps(
                {
                    "matmul_gflops_per_s": peak / 1e9,
                    "bf16_matmul_gflops_per_s": peak_bf16 and peak_bf16 / 1e9,
                    "f32_highest_matmul_gflops_per_s": peak_f32 / 1e9,
                    "devices": str(jax.devices()),
                    "train": rows,
                    "evaluate": evals,
                    "train_py_to_first_step_s": starts,
                    "train_py_whole_run": whole,
                    "mlp_profile": profile,
                    "conv_layers": layers,
                },
                indent=1,
            )
        )
        return
    print(
        f"Roofline: 2048^3 float32 matmul, {peak / 1e9:.1f} GFLOP/s on {jax.devices()[0].device_kind} "
        f"({os.cpu_count()} cores)"
        + (f"; float32 at 'highest' precision (evaluation's): {peak_f32 / 1e9:.1f} GFLOP/s" if accelerator else "")
        + (f"; bfloat16: {peak_bf16 / 1e9:.1f} GFLOP/s" if peak_bf16 else "")
        + "\n"
    )
    print(
        "| model | likelihood | batch | train examples/s | MFLOP/example | GFLOP/s | of matmul | step ms "
        "| epoch overhead | compile s | first step s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['likelihood']} | {r['batch_size']} | {r['examples_per_s']:.0f} "
            f"| {r['flops_per_example'] / 1e6:.2f} "
            f"| {r['gflops_per_s']:.1f} | {r['fraction_of_matmul']:.0%} | {r['step_ms']:.1f} "
            f"| {r['epoch_overhead']:+.1%} "
            f"| {r['compile_s']:.2f} | {r['first_step_s']:.2f} |"
        )
    print(
        "\n| model | evaluation (k = 1000): importance samples/s | MFLOP/sample | GFLOP/s | of float32 matmul "
        "| examples x samples per chunk |"
    )
    print("|---|---|---|---|---|---|")
    for r in evals:
        print(
            f"| {r['model']} | {r['importance_samples_per_s']:.0f} | {r['flops_per_sample'] / 1e6:.2f} "
            f"| {r['gflops_per_s']:.1f} "
            f"| {r['fraction_of_matmul']:.0%} | {r['examples_per_call']} x {r['samples_per_example_per_call']} |"
        )
    if profile:
        print(
            "\n| mlp step pieces, alone | batch | loss gradient ms | Adam ms | binarization ms "
            "| the 4 big matmuls ms | those matmuls, of matmul |"
        )
        print("|---|---|---|---|---|---|---|")
        for r in profile:
            print(
                f"| | {r['batch_size']} | {r['gradient_ms']:.2f} | {r['adam_ms']:.2f} | {r['binarize_ms']:.2f} "
                f"| {r['big_matmuls_ms']:.2f} "
                f"| {r['big_matmuls_fraction_of_matmul']:.0%} |"
            )
    if layers:
        print("\n| one layer alone, batch 128 | forward, of matmul | gradient, of matmul | gradient ms |")
        print("|---|---|---|---|")
        for r in layers:
            print(
                f"| {r['layer']} | {r['forward_fraction_of_matmul']:.0%} | {r['gradient_fraction_of_matmul']:.0%} "
                f"| {r['gradient_ms']:.2f} |"
            )
    if starts:
        print(
            f"\n`python train.py` launch to first step: cold cache {starts[0]:.1f} s, warm cache "
            + ", ".join(f"{s:.1f} s" for s in starts[1:])
        )
        print(f"\n`{whole['command']}`, warm cache: {whole['wall_s']:.1f} s wall; after imports: {whole['breakdown']}")


if __name__ == "__main__":
    main()
