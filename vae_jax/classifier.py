"""The yardstick's classifiers: one small convolutional network per dataset, trained by
benchmarks/train_classifier.py and shipped in vae_jax/classifiers/ (NAME.npz, its parameters, and
NAME.json: how it was trained, on which data, its test accuracy, and the npz file's sha256, checked
on every load). Its penultimate layer is the feature space in which samples are compared with test
images (vae_jax.sample_metrics): a stand-in for Inception's features on small images, named for
what it is.

The network: 3x3 convolutions 16, 16, a 2x2 max-pool, 32, 32, a 2x2 max-pool, a dense layer of 128
(the features, after ReLU) and the logits. Input: (N, H, W, C) in [0, 1].
"""

from __future__ import annotations

import hashlib
import io
import json
from importlib import resources
from typing import TYPE_CHECKING, Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vae_jax.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Callable

STAGES, FEATURES = (16, 32), 128


class Classifier(nn.Module):
    """x: (N, H, W, C) in [0, 1] -> (logits (N, classes), features (N, FEATURES))."""

    classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = x
        for stage in STAGES:
            h = nn.relu(nn.Conv(stage, (3, 3))(h))
            h = nn.relu(nn.Conv(stage, (3, 3))(h))
            h = nn.max_pool(h, (2, 2), (2, 2))
        features = nn.relu(nn.Dense(FEATURES)(h.reshape(h.shape[0], -1)))
        return nn.Dense(self.classes)(features), features


def _folder():
    return resources.files("vae_jax").joinpath("classifiers")


def names() -> list[str]:
    """The datasets a classifier is shipped for.

    Returns:
        Their names, sorted.
    """
    return sorted(f.name[: -len(".json")] for f in _folder().iterdir() if f.name.endswith(".json"))


def record(dataset: str) -> dict[str, Any]:
    """What the shipped classifier of a dataset says of itself (UserError where there is none).

    Args:
        dataset: the dataset it was trained on ('mnist', 'fashion_mnist': `names()`).

    Returns:
        Its record (classes, image shape, test accuracy, the .npz's sha256, how it was trained).
    """
    if dataset not in names():
        raise UserError(
            f"no yardstick classifier is shipped for {dataset!r} (there are: {', '.join(names()) or 'none'}); "
            "python benchmarks/train_classifier.py trains one"
        )
    return json.loads(_folder().joinpath(f"{dataset}.json").read_bytes())


def flatten(params: Any) -> dict[str, np.ndarray]:
    """The parameters as one array per leaf, named by its path in the pytree (what the .npz holds).

    Args:
        params: a parameter pytree.

    Returns:
        One array per leaf, keyed by its path.
    """
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(params)}


def load(dataset: str) -> tuple[Classifier, Any]:
    """The classifier shipped for a dataset, once its file matches its sha256.

    Args:
        dataset: the dataset it was trained on ('mnist', 'fashion_mnist': `names()`).

    Returns:
        (the network, its parameters).
    """
    saved = record(dataset)
    raw = _folder().joinpath(f"{dataset}.npz").read_bytes()
    if hashlib.sha256(raw).hexdigest() != saved["npz_sha256"]:
        raise UserError(f"the yardstick classifier of {dataset} is damaged (its sha256 differs); reinstall vae_jax")
    arrays = np.load(io.BytesIO(raw))
    net = Classifier(saved["classes"])
    like = net.init(jax.random.key(0), jnp.zeros((1, *saved["image_shape"])))["params"]
    leaves = [arrays[jax.tree_util.keystr(path)] for path, _ in jax.tree_util.tree_leaves_with_path(like)]
    return net, jax.tree.unflatten(jax.tree.structure(like), [jnp.asarray(a) for a in leaves])


def batched(net: Classifier, params: Any, batch: int = 500) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The classifier as a function of any number of images, in batches: one compilation for every call
    of the function returned.

    Args:
        net: the network (`load`'s first output).
        params: its parameters.
        batch: images per compiled call.

    Returns:
        images (N, H, W, C) in [0, 1] -> (logits (N, classes), features (N, F)).
    """
    fn = jax.jit(lambda x: net.apply({"params": params}, x))

    def apply(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, features = [], []
        for start in range(0, len(images), batch):
            part = np.asarray(images[start : start + batch], np.float32)
            pad = batch - len(part)
            out = fn(np.concatenate([part, np.zeros((pad, *part.shape[1:]), np.float32)]) if pad else part)
            logits.append(np.asarray(out[0])[: len(part)])
            features.append(np.asarray(out[1])[: len(part)])
        return np.concatenate(logits), np.concatenate(features)

    return apply


def apply_batched(net: Classifier, params: Any, images: np.ndarray, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's logits and features of images, in batches (one compilation).

    Args:
        net: the network (`load`'s first output).
        params: its parameters.
        images: (N, H, W, C) in [0, 1].
        batch: images per compiled call.

    Returns:
        (logits (N, classes), features (N, F)).
    """
    return batched(net, params, batch)(images)
