"""Our disentanglement scores beside those of the PyTorch framework disent (PyPI `disent`) on the same
codes and factors: MIG, SAP and DCI, which both compute from (code, factor) pairs alone, so that
the same pairs must give the same numbers (DCI up to its trees' tie-breaking).

    python -m venv --system-site-packages .peer
    .peer/bin/pip install torch==2.13.0 && .peer/bin/pip install disent
    .peer/bin/python benchmarks/disent_crosscheck.py              # --train 2000 --test 1000

The pairs: the generated dSprites (vae_jax.data.dsprites) under four representations: the factors
themselves; a rotation of them (standardised); the shape's centre of mass (2 codes); noise (5 codes).
"""

from __future__ import annotations

import argparse

import numpy as np

from vae_jax.data import dsprites
from vae_jax.disentanglement import informational

ROTATION = np.linalg.qr(np.random.default_rng(0).normal(size=(5, 5)))[0]


def representations(truth: dsprites.DSprites, factors: np.ndarray) -> dict[str, np.ndarray]:
    """Codes (N, D) of the observations of factors (N, 5), by each representation."""
    images = truth.observations(factors)[..., 0] > 0
    area = images.sum(axis=(1, 2))
    centre = np.stack(
        [(images.sum(1) * np.arange(64)).sum(1) / area, (images.sum(2) * np.arange(64)).sum(1) / area], axis=1
    )
    standard = (factors - factors.mean(0)) / factors.std(0)
    return {
        "factors": factors.astype(np.float64),
        "rotated": standard @ ROTATION,
        "centre of mass": centre,
        "noise": np.random.default_rng(1).normal(size=(len(factors), 5)),
    }


def main() -> None:
    from disent.metrics._dci import _compute_dci
    from disent.metrics._mig import _compute_mig
    from disent.metrics._sap import _compute_sap

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=1000)
    args = parser.parse_args()
    truth, rng = dsprites.DSprites(), np.random.default_rng(0)
    train, test = truth.sample_factors(args.train, rng), truth.sample_factors(args.test, rng)
    codes_train, codes_test = representations(truth, train), representations(truth, test)
    print("| representation | score | vae_jax | disent |\n|---|---|---|---|")
    for name in codes_train:
        x, x_test = codes_train[name], codes_test[name]
        ours = {
            "MIG": informational.mig(x, train),
            "SAP": informational.sap((x, train), (x_test, test)),
            **{f"DCI {k}": v for k, v in informational.dci((x, train), (x_test, test)).items()},
        }
        dci = _compute_dci(x.T, train.T, x_test.T, test.T)
        theirs = {
            "MIG": _compute_mig(x.T, train.T)["mig.discrete_score"],
            "SAP": _compute_sap(x.T, train.T, x_test.T, test.T, False)["sap.score"],
            **{f"DCI {k}": dci[f"dci.{k}"] for k in ("disentanglement", "completeness", "informativeness_test")},
        }
        for score, value in theirs.items():
            print(f"| {name} | {score} | {ours[score]:.4f} | {value:.4f} |")


if __name__ == "__main__":
    main()
