"""What a fitted sampler buys: for each trained run, a Gaussian mixture fitted to the training set's
posterior means (what `sample.py --sampler gmm` fits and stores beside the checkpoint), and the
mean log-density of the test images' posterior means under it against under the model's prior.

    python benchmarks/fitted_sampler.py /tmp/vae_jax_bench/fashion_mnist/mlp /tmp/vae_jax_bench/fashion_mnist/vamp
    python benchmarks/fitted_sampler.py --components 10,50 RUN...

Prints a markdown table row per run and number of components.
"""

from __future__ import annotations

import argparse
import logging
import time

import vae_jax
from vae_jax import fitted
from vae_jax.cli import enable_compilation_cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="checkpoint folders")
    parser.add_argument("--components", default="10", help="mixture sizes, comma separated (default: 10)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    enable_compilation_cache()
    print("| run | prior | components | test log-density under the prior | under the fitted mixture | gain | s |")
    print("|---|---|---|---|---|---|---|")
    for run in args.runs:
        model = vae_jax.load(run)
        for k in (int(v) for v in args.components.split(",")):
            t0 = time.time()
            r = fitted.load_or_fit(model, run, k).report
            prior, gmm = r["test_log_density_prior"], r["test_log_density_fitted"]
            seconds = time.time() - t0
            print(f"| {run} | {r['prior']} | {k} | {prior:.2f} | {gmm:.2f} | {gmm - prior:+.2f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
