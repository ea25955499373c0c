"""What a fitted sampler buys: for each trained run and each sampler (`sample.py --sampler NAME`: gmm,
maf, iaf, twostage; pixelcnn for a discrete model), the density fitted to the training set's
posterior means (a discrete model's codes) and stored beside the checkpoint, the mean log-density of
the test images' posterior means under it against under the model's prior, and, with --samples N,
its samples against the test images by the sample yardstick (vae_jax.yardstick: Fréchet distance,
precision, recall, density, coverage in the shipped classifier's features), the prior's first, all
from the same key.

    python benchmarks/fitted_sampler.py /tmp/vae_jax_bench/fashion_mnist/mlp /tmp/vae_jax_bench/fashion_mnist/vamp
    python benchmarks/fitted_sampler.py --samplers gmm,maf,iaf --components 10,50 --samples 10000 pretrained:fashion-mlp
    python benchmarks/fitted_sampler.py --samplers pixelcnn --epochs 5 --samples 10000 runs/vqvae_fashion

Prints a markdown table row per run and sampler.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import jax
import numpy as np

import vae_jax
from vae_jax import cli, data, fitted, pictures, visualize, yardstick
from vae_jax.cli import enable_compilation_cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="checkpoint folders")
    parser.add_argument("--samplers", default="gmm", help="fitted samplers, comma separated (default: gmm)")
    parser.add_argument("--components", default="10", help="gmm: mixture sizes, comma separated (default: 10)")
    parser.add_argument("--samples", type=int, default=0, help="also the sample yardstick on N samples (default: 0)")
    parser.add_argument(
        "--epochs", type=int, default=None, help="maf, iaf, twostage, pixelcnn: epochs of the fit (default: theirs)"
    )
    parser.add_argument(
        "--pictures", default=None, help="also write FOLDER/SAMPLER.png: 64 prior samples beside 64 of each sampler"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    enable_compilation_cache()
    print(
        "| run | prior | sampler | test log-density under the prior | under the fitted sampler | gain | fit s "
        "| Fréchet | precision | recall | density | coverage |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        model, folder = vae_jax.load(run), cli.outputs_of(run)  # pretrained:NAME: runs/pretrained-NAME
        os.makedirs(folder, exist_ok=True)
        dataset = data.of_run(model.config)  # read once: each sampler is fitted to it
        test = dataset.test_images
        if args.samples:
            print(_row(run, model.vae.description["prior"], "prior", None, judged(model, test, args.samples)))
        for name in args.samplers.split(","):
            for k in (int(v) for v in args.components.split(",")) if name == "gmm" else (None,):
                t0 = time.time()
                epochs = args.epochs if name != "gmm" else None
                sampler = fitted.load_or_fit(model, folder, name, dataset=dataset, components=k, epochs=epochs)
                seconds = time.time() - t0
                measured = args.samples and judged(model, test, args.samples, sampler)
                label = f"gmm {k}" if k else name
                print(_row(run, sampler.report["prior"], label, (sampler.report, seconds), measured))
                if "test_nll_bound" in sampler.report:
                    print(fitted.summary(sampler.report))
                if args.pictures:
                    path = os.path.join(args.pictures, f"{label.replace(' ', '')}.png")
                    print("wrote", visualize.save_png(path, pictures.beside_prior(model, sampler)))


def judged(model, test_pixels: np.ndarray, n: int, sampler=None) -> dict:
    """n samples of a fitted sampler (None: the model's prior), from key 0, against the test images
    (N, H, W, C) uint8 by the sample yardstick."""
    draw = None if sampler is None else (lambda key, m: sampler.sample(model, key, m))
    images = yardstick.samples(model, jax.random.key(0), n, draw)
    return yardstick.compare(model.config.dataset, np.asarray(test_pixels, np.float32) / 255.0, images)


def _row(run: str, prior: str, sampler: str, fit, measured) -> str:
    cells = [run, prior, sampler]
    if fit:
        report, seconds = fit
        under_prior, under_fit = report["test_log_density_prior"], report["test_log_density_fitted"]
        cells += [f"{under_prior:.2f}", f"{under_fit:.2f}", f"{under_fit - under_prior:+.2f}", f"{seconds:.0f}"]
    else:
        cells += ["", "", "", ""]
    names = ("frechet_distance", "precision", "recall", "density", "coverage")
    cells += [f"{measured[k]:.3f}" for k in names] if measured else [""] * 5
    return "| " + " | ".join(cells) + " |"


if __name__ == "__main__":
    main()
