"""vae_jax's fitted samplers beside pythae's (PyTorch, PyPI pythae 0.1.2): each library's VAE trained
once by benchmarks/pythae_side_by_side.py's protocol (the 784-512-20 MLP, Bernoulli decoder, all 60,000
Fashion-MNIST training images binarized afresh at each step, Adam at 1e-3, batch 128, --epochs), then
each sampler fitted to that model's training latents by each library and its --samples draws judged
against the test images by the same sample yardstick (vae_jax.yardstick: Fréchet distance, precision,
recall, density, coverage in the shipped Fashion-MNIST classifier's features).

    .peer/bin/python benchmarks/pythae_samplers.py --out benchmarks/results/pythae_samplers.json

(.peer: the venv of benchmarks/pythae_side_by_side.py.) The pairs, with the same sizes and fitting
budget on both sides (Adam at 1e-4, batches of 64, --fit-epochs, pythae's trainer's defaults and
vae_jax's): prior (N(0, I): pythae's NormalSampler), gmm (10 components), maf and iaf (2 MADEs of
3 ReLU layers of 128 units), twostage (a second VAE of 3 ReLU layers of 1024 units each way:
pythae's default is 2, set to 3 here; its networks otherwise its own: no skip of the input to the
last layer, a squared error with its learned noise). What differs and is kept: vae_jax fits each to
the training images' posterior means, pythae to one draw of z ~ q(z|x) per image (as its samplers
do). Fit seconds: the fit's wall time, encoding the training images included, torch at --threads.
Rows are written to --out after each sampler, the slow IAF fit last.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import fitted_sampler
import numpy as np
import pythae_side_by_side as protocol

from vae_jax import fitted, yardstick

# name: (vae_jax's options, pythae's sampler class, its config fields, and whether it is fitted by a trainer)
PAIRS = {
    "prior": ({}, "NormalSampler", {}, False),
    "gmm": ({"components": 10}, "GaussianMixtureSampler", {"n_components": 10}, False),
    "maf": ({}, "MAFSampler", {}, True),
    "twostage": ({}, "TwoStageVAESampler", {"second_stage_depth": 3, "second_layers_dim": 1024}, True),
    "iaf": ({}, "IAFSampler", {}, True),
}


def ours(model, workdir: str, name: str, fit_epochs: int, dataset, n: int) -> dict:
    """vae_jax's sampler `name` fitted to its model's training latents (of dataset, vae_jax.data's), and its
    n samples judged."""
    options, _, _, by_gradient = PAIRS[name]
    start, sampler = time.perf_counter(), None
    if name != "prior":
        epochs = {"epochs": fit_epochs} if by_gradient else {}
        sampler = fitted.load_or_fit(model, workdir, name, dataset=dataset, **options, **epochs)
    row = {"fit_seconds": time.perf_counter() - start}
    return row | {"samples": fitted_sampler.judged(model, dataset.test_images, n, sampler)}


def peer(model, workdir: str, name: str, fit_epochs: int, train_pixels, test_pixels: np.ndarray, n: int) -> dict:
    """pythae's sampler `name` fitted to its model's training latents, and its n samples judged."""
    import torch
    from pythae import samplers
    from pythae.trainers import BaseTrainerConfig

    _, cls, options, by_gradient = PAIRS[name]
    config = getattr(samplers, cls.replace("Sampler", "SamplerConfig"))(**options)
    sampler, start = getattr(samplers, cls)(model, config), time.perf_counter()
    if name != "prior":
        train = protocol.binarized(train_pixels).x.bernoulli()  # one binarization of each training image
        budget = {"training_config": BaseTrainerConfig(output_dir=workdir, num_epochs=fit_epochs, learning_rate=1e-4)}
        sampler.fit(train, **(budget if by_gradient else {}))
    row = {"fit_seconds": time.perf_counter() - start}
    with torch.no_grad():
        images = sampler.sample(num_samples=n, batch_size=500, return_gen=True)
    images = np.transpose(images.reshape(-1, 1, 28, 28).numpy(), (0, 2, 3, 1))
    return row | {"samples": yardstick.compare("fashion_mnist", test_pixels, images)}


def table(rows: list[dict]) -> str:
    """The Markdown table of docs/evaluation.md: one row per sampler and library (with its fit's epochs)."""
    lines = [
        "| sampler | library | Fréchet | precision / recall | density / coverage | fit seconds |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        name = row["sampler"] + (f", {row['fit_epochs']} epochs" if PAIRS[row["sampler"]][3] else "")
        for side in ("vae_jax", "pythae"):
            r, s = row[side], row[side]["samples"]
            lines.append(
                f"| {name if side == 'vae_jax' else ''} | {side} | {s['frechet_distance']:.1f} "
                f"| {s['precision']:.3f} / {s['recall']:.3f} | {s['density']:.3f} / {s['coverage']:.3f} "
                f"| {r['fit_seconds']:,.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=protocol.EPOCHS, help="the VAE's training epochs")
    parser.add_argument("--fit-epochs", type=int, default=100, help="maf, iaf, twostage: epochs of the fit")
    parser.add_argument("--samples", type=int, default=10_000, help="a smaller check of the script only")
    args = protocol.options(parser, "samplers", PAIRS, "pythae_samplers.json")
    if args.table:
        print(table(json.load(open(args.out))))
        return
    names = args.samplers.split(",")
    dataset, train_pixels, test_pixels = protocol.fashion_pixels()
    rows = json.load(open(args.out)) if os.path.exists(args.out) else []
    with tempfile.TemporaryDirectory() as tmp:
        mine, _ = protocol.train_ours("vae", os.path.join(tmp, "ours"), args.epochs)
        theirs, _ = protocol.train_peer("vae", os.path.join(tmp, "peer"), args.epochs, train_pixels, args.threads)
        for name in names:
            row = {"sampler": name, "epochs": args.epochs, "fit_epochs": args.fit_epochs, "threads": args.threads}
            row["vae_jax"] = ours(mine, os.path.join(tmp, "ours"), name, args.fit_epochs, dataset, args.samples)
            fit_dir = os.path.join(tmp, f"peer_{name}")
            row["pythae"] = peer(theirs, fit_dir, name, args.fit_epochs, train_pixels, test_pixels, args.samples)
            rows.append(row)
            with open(args.out, "w") as f:
                json.dump(rows, f, indent=1)
            for side in ("vae_jax", "pythae"):
                s = row[side]["samples"]
                print(
                    f"{name:9} {side:8} Fréchet {s['frechet_distance']:.2f}, P/R {s['precision']:.3f}/"
                    f"{s['recall']:.3f}, D/C {s['density']:.3f}/{s['coverage']:.3f}; "
                    f"fit {row[side]['fit_seconds']:,.0f} s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
