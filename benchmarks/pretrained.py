"""Train, measure and export the models shipped in vae_jax/weights/ (opened as pretrained:NAME).

    python benchmarks/pretrained.py --root runs/pretrained [--names fashion-conv,...] [--k 1000]

Each model is trained by a shipped preset (`python train.py --preset P --workdir ROOT/NAME`; a run
already there is resumed, i.e. kept), then its test NLL is measured twice: over the whole test
split (importance sampled, --k samples per image), and over the first CHECK_IMAGES test images with
CHECK_K samples, the number tests/test_pretrained.py measures again. Both are stored with the
model, with the command that trained it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

MODELS = {  # name: preset
    "fashion-mlp": "mlp_fashion",
    "fashion-conv": "conv_fashion",
    "fashion-cvae": "cvae_fashion",
    "fashion-2d": "latent2d_fashion",
    "mnist-mlp": "mlp_mnist",
}
CHECK_IMAGES, CHECK_K, CHECK_SEED = 500, 100, 0
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = os.path.join(REPO, "vae_jax", "weights")


def measure(model, x, labels, k: int, seed: int) -> dict:
    t0 = time.time()
    r = model.evaluate(x, k=k, seed=seed, labels=labels if model.vae.n_conditions else None)
    return {
        "nll": r["nll"],
        "nll_se": r["nll_se"],
        "images": int(r["n"]),
        "k": int(r["k"]),
        "seed": seed,
        "conditional": r["conditional"],
        "seconds": round(time.time() - t0, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="runs/pretrained", help="where the runs are trained")
    parser.add_argument("--names", default=",".join(MODELS), help="comma separated, of " + ", ".join(MODELS))
    parser.add_argument("--k", type=int, default=1000, help="importance samples per image over the whole test split")
    parser.add_argument("--out", default=WEIGHTS, help="where the shipped files go")
    args = parser.parse_args()
    import numpy as np

    import vae_jax
    from vae_jax import data, pretrained
    from vae_jax.data.pixels import eval_images

    for name in args.names.split(","):
        workdir = os.path.join(args.root, name)
        t0 = time.time()
        train = [sys.executable, os.path.join(REPO, "train.py"), "--preset", MODELS[name], "--workdir", workdir]
        subprocess.run(train, check=True)
        model = vae_jax.load(workdir)
        dataset = data.of_run(model.config)
        x = eval_images(dataset.test_images, model.vae.likelihood.binary)
        labels = np.asarray(dataset.test_labels)
        numbers = {
            "test": measure(model, x, labels, args.k, 0),
            "check": measure(model, x[:CHECK_IMAGES], labels[:CHECK_IMAGES], CHECK_K, CHECK_SEED),
        }
        shown = " ".join(["python", "train.py", "--preset", MODELS[name]])
        paths = pretrained.export(model.params, model.meta, model.step, args.out, name, shown, numbers)
        sizes = ", ".join(f"{os.path.basename(p)} {os.path.getsize(p) / 2**20:.2f} MB" for p in paths)
        print(
            f"{name}: test NLL {numbers['test']['nll']:.2f} +- {numbers['test']['nll_se']:.2f} "
            f"(k={numbers['test']['k']}, {numbers['test']['images']} images); first {CHECK_IMAGES}: "
            f"{numbers['check']['nll']:.2f} +- {numbers['check']['nll_se']:.2f} (k={CHECK_K}); {sizes}; "
            f"{time.time() - t0:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
