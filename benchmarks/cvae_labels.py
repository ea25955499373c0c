"""Does a conditional VAE draw the class it is asked for? Label agreement of its samples.

    python benchmarks/cvae_labels.py --ckpt checkpoints/cvae          # a trained conditional run
    python benchmarks/cvae_labels.py --ckpt DIR --per-class 200 --temperature 1.0

For each class y it draws `--per-class` samples z from the prior p(z|y) (the means of p(x|z, y),
as `sample.py --label y` shows them) and classifies them with classifiers fitted on the run's
training images (pixels in [0, 1]): the one the target is judged by, a scikit-learn
MLPClassifier (one hidden layer of 256, 50 epochs of Adam, random_state 0; the most accurate of
the three on real test images), and as cross-checks a 5-nearest-neighbour classifier (Euclidean)
and a logistic regression. It prints each classifier's accuracy on the test images (how far it
can be trusted) and the share of samples it assigns to the class asked for, per class and overall.
"""

from __future__ import annotations

import argparse
import warnings

import jax
import numpy as np

import vae_jax
from vae_jax import data


def classifiers() -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier

    return {
        "mlp": MLPClassifier((256,), max_iter=50, random_state=0),
        "5-nn": KNeighborsClassifier(n_neighbors=5),
        "logistic": LogisticRegression(max_iter=300),
    }


def agreement(model: vae_jax.Model, per_class: int = 200, temperature: float = 1.0, seed: int = 0) -> dict:
    """{classifier: {'agreement', 'per_class', 'test_accuracy'}} for `model`'s samples; 'mlp' first."""
    c = model.config
    dataset = data.of_run(c)
    flat = lambda images: np.asarray(images, np.float32).reshape(len(images), -1)
    train, test = flat(dataset.train_images) / 255.0, flat(dataset.test_images) / 255.0
    labels = np.repeat(np.arange(model.vae.n_conditions), per_class)
    samples = flat(model.sample(jax.random.key(seed), len(labels), temperature, labels))
    out = {}
    for name, classifier in classifiers().items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings: the iteration budgets are fixed on purpose
            classifier.fit(train, dataset.train_labels)
        predicted = classifier.predict(samples)
        out[name] = {
            "agreement": float(np.mean(predicted == labels)),
            "per_class": [float(np.mean(predicted[labels == y] == y)) for y in range(model.vae.n_conditions)],
            "test_accuracy": float(np.mean(classifier.predict(test) == dataset.test_labels)),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = vae_jax.load(args.ckpt)
    if not model.vae.n_conditions:
        raise SystemExit(f"{args.ckpt} is not a conditional run (train.py --conditional)")
    print(f"{args.ckpt}: {model.config.dataset}, step {model.step}, prior {model.config.prior}, T={args.temperature}")
    for name, r in agreement(model, args.per_class, args.temperature, args.seed).items():
        per = " ".join(f"{v:.0%}" for v in r["per_class"])
        print(f"{name:>8}: test accuracy {r['test_accuracy']:.1%}; label agreement {r['agreement']:.1%} ({per})")


if __name__ == "__main__":
    main()
