"""Test NLL, bits/dim, active units and wall-clock of the reference configurations on the offline data.

    python benchmarks/quality.py                      # MNIST sample (30 epochs) and Fashion-MNIST (10 epochs)
    python benchmarks/quality.py --datasets mnist --epochs 5 --rows 0,1
    python benchmarks/quality.py --datasets fashion_mnist --rows 0,4 --seeds 0,1,2

Each row trains from scratch with its preset (row R on dataset D is `python train.py --preset R_D`,
D one of mnist, fashion; other datasets take the mnist presets' options) in its own folder under --root,
then estimates the test NLL with k = 1000 importance samples on the first --eval-n test images,
and prints a markdown table row as soon as it is done. The fixed budget is the number of epochs.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import time

import cvae_labels

import vae_jax
from vae_jax import data, experiment, flags, report
from vae_jax.cli import enable_compilation_cache
from vae_jax.config import Config

ROWS = [  # (label, preset prefix), the slowest last: row R on dataset D is `train.py --preset R_D`
    ("mlp VAE", "mlp"),
    ("mlp IWAE k=5", "iwae"),
    ("mlp VAE, KL warm-up 10 epochs", "warmup"),
    ("mlp CVAE, class prior (log p(x|y))", "cvae"),
    ("mlp VAE, VampPrior (500 pseudo-inputs)", "vamp"),
    ("mlp VAE, mixture-of-Gaussians prior (10)", "mog"),
    ("mlp VAE, IAF posterior (4 steps)", "iaf"),
    ("mlp VAE, VampPrior + IAF posterior", "vamp_iaf"),
    ("conv VAE", "conv"),
    ("conv VAE, VampPrior + IAF posterior", "conv_vamp_iaf"),
    ("resnet VAE", "resnet"),
    ("hvae, 2 latent groups", "hvae"),
]
PRESET_OF = {"mnist": "mnist", "fashion_mnist": "fashion"}  # other datasets take the mnist presets' options


def row_config(prefix: str, dataset: str, epochs: int | None, workdir: str, seed: int = 0) -> Config:
    """The preset of a row (train.py --preset <prefix>_<dataset>), on `dataset`, in `workdir`."""
    preset = flags.read_file(os.path.join(flags.PRESETS, f"{prefix}_{PRESET_OF.get(dataset, 'mnist')}.json"))
    values = {**preset, "dataset": dataset, "workdir": workdir, "eval_k": 1, **({"epochs": epochs} if epochs else {})}
    values["seed"] = seed
    return Config.from_dict({**Config().to_dict(), **values})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="mnist,fashion_mnist")
    parser.add_argument("--epochs", default="", help="epochs per dataset, comma separated (default: the presets')")
    parser.add_argument("--rows", default="", help="only these rows (comma-separated indices)")
    parser.add_argument("--eval-n", type=int, default=1000)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--root", default="/tmp/vae_jax_bench")
    parser.add_argument("--seeds", default="0", help="train each row once per seed, comma separated (--seed)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    enable_compilation_cache()
    rows = [ROWS[int(i)] for i in args.rows.split(",")] if args.rows else ROWS
    print(
        f"| dataset | model | epochs | test NLL (k={args.k}), nats | bits/dim | test ELBO | active units | train s "
        "| eval s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    names = args.datasets.split(",")
    epochs_of = [int(e) for e in args.epochs.split(",")] if args.epochs else [None] * len(names)
    for name, epochs in zip(names, epochs_of):
        dataset = data.load(name)
        seeds = [int(v) for v in args.seeds.split(",")]
        for (label, prefix), seed in [(row, seed) for row in rows for seed in seeds]:
            workdir = os.path.join(args.root, name, prefix + (f"_seed{seed}" if seed else ""))
            shutil.rmtree(workdir, ignore_errors=True)  # this script's own scratch folder
            cfg = row_config(prefix, name, epochs, workdir, seed)
            t0 = time.time()
            experiment.train(cfg)
            train_s = time.time() - t0
            model = vae_jax.load(workdir)
            t0 = time.time()
            n = min(args.eval_n, len(dataset.test_images))
            subset = dataclasses.replace(
                dataset, test_images=dataset.test_images[:n], test_labels=dataset.test_labels[:n]
            )
            r = report.evaluation(model.vae, model.params, cfg, subset, "test", k=args.k)
            eval_s = time.time() - t0
            shown = label + (f", batch {cfg.batch_size}" if cfg.batch_size != Config().batch_size else "")
            shown += f", seed {seed}" if len(seeds) > 1 else ""
            if cfg.conditional:  # does a sample show the class asked for? (benchmarks/cvae_labels.py)
                shown += f"; samples of the class asked for: {cvae_labels.agreement(model)['mlp']['agreement']:.1%}"
            print(
                f"| {name} ({n} test) | {shown} | {cfg.epochs} | {r['nll']:.2f} +- {r['nll_se']:.2f} "
                f"| {r['bits_per_dim']:.4f} "
                f"| {r['elbo']:.2f} | {r['active_units']}/{r['latent_dim']} | {train_s:.0f} | {eval_s:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
