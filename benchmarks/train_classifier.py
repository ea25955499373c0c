"""Train the yardstick's classifier of a dataset and ship it in vae_jax/classifiers/.

    python benchmarks/train_classifier.py --dataset fashion_mnist               # 10 epochs of about 60 s on 2 cores
    python benchmarks/train_classifier.py --dataset mnist --epochs 30           # the 5,000-digit sample offline

The network is vae_jax.classifier.Classifier, trained on the dataset's whole training split (as
vae_jax.data.load finds it: the log says which source) with Adam at 1e-3, batch 128, random shifts
of up to 2 pixels, for --epochs; its accuracy on the whole test split is recorded beside the
parameters with the data's source and digests and this command. Its features (the penultimate
layer) are where evaluate.py --samples compares samples with test images.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vae_jax import classifier, data

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vae_jax", "classifiers")


def shifted(key: jax.Array, x: jax.Array, most: int = 2) -> jax.Array:
    """Each image of x: (B, H, W, C) moved by up to `most` pixels each way, zeros shifted in."""
    b, h, w, _ = x.shape
    padded = jnp.pad(x, ((0, 0), (most, most), (most, most), (0, 0)))
    offsets = jax.random.randint(key, (b, 2), 0, 2 * most + 1)
    return jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, im.shape[-1])))(padded, offsets)


def train(dataset, epochs: int, seed: int) -> tuple[classifier.Classifier, dict, list[float]]:
    net = classifier.Classifier(dataset.num_classes)
    key = jax.random.key(seed)
    params = net.init(key, jnp.zeros((1, *dataset.image_shape)))["params"]
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, x, y, key):
        def loss(p):
            logits, _ = net.apply({"params": p}, shifted(key, x))
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, value

    x_train = np.asarray(dataset.train_images, np.float32) / 255.0
    y_train = np.asarray(dataset.train_labels, np.int32)
    rng, losses = np.random.default_rng(seed), []
    for epoch in range(epochs):
        order, total, start = rng.permutation(len(x_train)), 0.0, time.perf_counter()
        for i in range(len(order) // 128):
            idx = order[i * 128 : (i + 1) * 128]
            key, k_step = jax.random.split(key)
            params, opt_state, value = step(params, opt_state, x_train[idx], y_train[idx], k_step)
            total += float(value)
        losses.append(total / (len(order) // 128))
        print(f"epoch {epoch + 1}: train loss {losses[-1]:.4f} ({time.perf_counter() - start:.0f} s)", flush=True)
    return net, params, losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    dataset = data.load(args.dataset)
    net, params, losses = train(dataset, args.epochs, args.seed)
    logits, _ = classifier.apply_batched(net, params, np.asarray(dataset.test_images, np.float32) / 255.0)
    accuracy = float(np.mean(np.argmax(logits, -1) == np.asarray(dataset.test_labels)))
    buffer = io.BytesIO()
    np.savez(buffer, **classifier.flatten(params))
    raw = buffer.getvalue()
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, f"{args.dataset}.npz"), "wb") as f:
        f.write(raw)
    record = {
        "dataset": args.dataset,
        "source": dataset.source,
        "train": {"images": len(dataset.train_images), "digest": dataset.fingerprint("train")},
        "test": {"images": len(dataset.test_images), "digest": dataset.fingerprint("test"), "accuracy": accuracy},
        "classes": dataset.num_classes,
        "image_shape": list(dataset.image_shape),
        "epochs": args.epochs,
        "train_loss": losses,
        "command": "python " + " ".join(["benchmarks/train_classifier.py", *sys.argv[1:]]),
        "npz_sha256": hashlib.sha256(raw).hexdigest(),
    }
    with open(os.path.join(OUT, f"{args.dataset}.json"), "w") as f:
        f.write(json.dumps(record, indent=1) + "\n")
    print(f"test accuracy {accuracy:.4f} on {len(dataset.test_images):,} images; written to {OUT}")


if __name__ == "__main__":
    main()
