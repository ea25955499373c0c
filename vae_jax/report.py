"""A run's reported numbers: the evaluation of a split of its data with what they were measured
on (without that a number cannot be compared with another), and the one line the log shows."""

from __future__ import annotations

import logging
from typing import Any

import jax
import jax.numpy as jnp

from vae_jax import codebook, objectives
from vae_jax.config import Config
from vae_jax.data import Dataset, datasets
from vae_jax.data.pixels import EVAL_BINARIZATION_SEED, eval_images
from vae_jax.evaluation import evaluate
from vae_jax.latent import LatentModel, Params

log = logging.getLogger("vae_jax")


def describe_data(config: Config, vae: LatentModel, dataset: Dataset, split: str) -> dict[str, Any]:
    """What an NLL was measured on: without this a number cannot be compared with another."""
    images = dataset.test_images if split == "test" else dataset.train_images
    likelihood = vae.likelihood
    known = datasets.known(config.dataset)
    if known and known.binary:
        pixels = "binary as published (the fixed binarization of Larochelle & Murray), not binarized again"
    elif likelihood.binary:
        pixels = (
            f"binarized once with the fixed key {EVAL_BINARIZATION_SEED} (training: {config.binarize} binarization)"
        )
    elif likelihood.discrete_8bit:
        pixels = "8-bit values k/255, likelihood discretized to the 256 values (comparable bits/dim)"
    else:
        pixels = "intensities scaled to [0, 1] (a density on continuous pixels, not 8-bit bits/dim)"
    described = {
        "dataset": config.dataset,
        "split": split,
        "size": len(images),
        "source": dataset.source,
        "image_shape": list(dataset.image_shape),
        "pixels": pixels,
    }
    if config.conditional:
        prior = vae.description["prior"]
        described["conditional"] = f"log p(x|y): conditional on the label y, with prior p(z|y) = {prior}"
    return described


def evaluation(
    vae: LatentModel,
    params: Params,
    config: Config,
    dataset: Dataset,
    split: str = "test",
    k: int = 1000,
    seed: int = 0,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Importance-sampled NLL, ELBO, active units and KL per dimension on a split (reconstruction
    error only for an autoencoder), with the description of the data it was measured on."""
    config = config.resolved()
    images, labels = (
        (dataset.test_images, dataset.test_labels) if split == "test" else (dataset.train_images, dataset.train_labels)
    )
    x = eval_images(jnp.asarray(images), vae.likelihood.binary)
    labels = jnp.asarray(labels) if config.conditional else None
    likelihood = objectives.of(config).defines_likelihood
    if likelihood:
        passes = f"{len(x) * k:,}"
        log.info("evaluation: %d %s images x k = %d importance samples = %s decoder passes", len(x), split, k, passes)
    result = evaluate(vae, params, x, jax.random.key(seed), k, batch_size, labels=labels, likelihood=likelihood)
    if vae.discrete:  # how the split's images use the codebook
        result["codebook"] = codebook.usage(codebook.codes_of(vae, params, x), vae.codebook_size)
    return {**result, "seed": seed, "data": describe_data(config, vae, dataset, split)}


def summary(r: dict[str, Any]) -> str:
    """One line for the log: what `evaluation` found."""
    if r.get("autoencoder"):
        return (
            f"test reconstruction {r['recon']:.2f} nats, {r['mse_per_pixel']:.5f} squared error per pixel ({r['note']})"
        )
    what = "NLL -log p(x|y)" if r["conditional"] else "NLL"
    line = (
        f"test {what} {r['nll']:.2f} +- {r['nll_se']:.2f} nats (importance sampled, k={r['k']}), "
        f"{r['bits_per_dim']:.4f} bits/dim; active units {r['active_units']}/{r['latent_dim']}"
    )
    return line + (f"; codebook: {codebook.summary(r['codebook'])}" if "codebook" in r else "")
