"""Test NLL, bits/dim, active units and wall-clock of the reference configurations on the offline data.

    python benchmarks/quality.py                      # MNIST sample (30 epochs) and Fashion-MNIST (10 epochs)
    python benchmarks/quality.py --datasets mnist --epochs 5 --rows 0,1

Each row trains from scratch (default flags plus the row's own) in its own folder under --root,
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

import vae_jax
from vae_jax import data, evaluation, experiment
from vae_jax.cli import enable_compilation_cache
from vae_jax.config import Config

ROWS = [  # the slowest last
    ("mlp VAE", dict()),
    ("mlp IWAE k=5", dict(objective="iwae", k=5)),
    ("mlp VAE, KL warm-up 10 epochs", dict(kl_warmup_epochs=10)),
    ("mlp CVAE (log p(x|y))", dict(conditional=True)),
    ("conv VAE", dict(model="conv")),
    ("resnet VAE", dict(model="resnet", channels=(32, 64), depth=1)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="mnist,fashion_mnist")
    parser.add_argument("--epochs", default="30,10", help="epochs per dataset, comma separated")
    parser.add_argument("--rows", default="", help="only these rows (comma-separated indices)")
    parser.add_argument("--eval-n", type=int, default=1000)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--root", default="/tmp/vae_jax_bench")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    enable_compilation_cache()
    rows = [ROWS[int(i)] for i in args.rows.split(",")] if args.rows else ROWS
    print(
        f"| dataset | model | epochs | test NLL (k={args.k}), nats | bits/dim | test ELBO | active units | train s "
        "| eval s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, epochs in zip(args.datasets.split(","), map(int, args.epochs.split(","))):
        dataset = data.load(name)
        for label, options in rows:
            workdir = os.path.join(args.root, name, label.split(" (")[0].replace(" ", "_").replace(",", ""))
            shutil.rmtree(workdir, ignore_errors=True)
            config = Config(dataset=name, epochs=epochs, workdir=workdir, eval_k=1, **options)
            t0 = time.time()
            experiment.train(config)
            train_s = time.time() - t0
            model = vae_jax.load(workdir)
            t0 = time.time()
            n = min(args.eval_n, len(dataset.test_images))
            subset = dataclasses.replace(
                dataset, test_images=dataset.test_images[:n], test_labels=dataset.test_labels[:n]
            )
            r = evaluation.evaluation(model.vae, model.params, config, subset, "test", k=args.k)
            eval_s = time.time() - t0
            print(
                f"| {name} ({n} test) | {label} | {epochs} | {r['nll']:.2f} +- {r['nll_se']:.2f} "
                f"| {r['bits_per_dim']:.4f} "
                f"| {r['elbo']:.2f} | {r['active_units']}/{r['latent_dim']} | {train_s:.0f} | {eval_s:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
