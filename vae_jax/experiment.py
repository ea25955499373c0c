"""A training run from a Config: data -> model -> epochs -> checkpoints, metrics and pictures."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from vae_jax import checkpoint, data
from vae_jax.config import Config
from vae_jax.errors import NonFiniteLoss, UserError
from vae_jax.evaluate import mean_elbo
from vae_jax.training import (
    TrainState, binarize, epoch_keys, epoch_permutation, eval_images, init_state, make_train_steps,
)
from vae_jax.vae import build
from vae_jax.visualize import grid, pairs_grid, save_png

log = logging.getLogger("vae_jax")

# Independent key streams derived from the root key of a run.
INIT, TRAIN, STATIC_BINARIZATION, EVAL, SAMPLE_NOISE = range(5)
PROGRESS_UPDATES_PER_EPOCH = 10
N_PICTURES = 64


def run_keys(seed: int) -> dict[str, jax.Array]:
    root = jax.random.key(seed)
    names = ("init", "train", "static_binarization", "eval", "sample_noise")
    return {name: jax.random.fold_in(root, i) for i, name in enumerate(names)}


def train(config: Config, fresh: bool = False) -> dict[str, Any]:
    """Train (or resume) the run `config` describes in `config.workdir`; returns the last metrics."""
    dataset = data.load(config.dataset, config.data_dir)
    vae = build(config, dataset.image_shape)
    n_train = len(dataset.train_images)
    steps_per_epoch = n_train // config.batch_size
    if steps_per_epoch == 0:
        raise UserError(f"--batch-size {config.batch_size} is larger than the training set ({n_train} images)")
    keys = run_keys(config.seed)
    optimizer = optax.adam(config.lr)
    state = jax.jit(partial(init_state, vae, optimizer))(keys["init"])

    workdir = config.workdir
    if fresh:
        _archive(workdir)
    mngr = checkpoint.manager(workdir, config.keep)
    state, start_epoch = _resume(mngr, config, state)
    meta = {
        "config": config.to_dict(), "image_shape": list(dataset.image_shape), "num_classes": dataset.num_classes,
        "data_source": dataset.source, "key": checkpoint.key_to_json(jax.random.key(config.seed)),
    }

    train_images = jnp.asarray(dataset.train_images)
    dynamic = config.likelihood == "bernoulli" and config.binarize == "dynamic"
    if config.likelihood == "bernoulli" and config.binarize == "static":
        train_images = jax.jit(lambda k, x: (binarize(k, x) * 255).astype(jnp.uint8))(keys["static_binarization"], train_images)
    test_x = eval_images(jnp.asarray(dataset.test_images), config.likelihood)
    run = make_train_steps(vae, optimizer, config.beta, dynamic, config.batch_size)
    chunk = max(1, math.ceil(steps_per_epoch / PROGRESS_UPDATES_PER_EPOCH))
    fixed_z = jax.random.normal(keys["sample_noise"], (N_PICTURES, config.latent_dim))
    shown = test_x[np.linspace(0, len(test_x) - 1, 32).astype(int)]  # spread over a class-sorted split
    pictures = jax.jit(lambda params: (vae.decode_mean(params, vae.encode(params, shown)[0]), vae.decode_mean(params, fixed_z)))

    metrics: dict[str, Any] = {}
    if start_epoch >= config.epochs:
        log.info("%s: already trained %d of %d epochs; nothing to do", workdir, start_epoch, config.epochs)
    for epoch in range(start_epoch, config.epochs):
        t0 = time.time()
        perm = epoch_permutation(keys["train"], epoch, n_train)
        step_root = epoch_keys(keys["train"], epoch)[1]
        losses = []
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, disable=None)
        for first in range(0, steps_per_epoch, chunk):
            n = min(chunk, steps_per_epoch - first)
            state, chunk_losses = run(state, train_images, perm, step_root, jnp.int32(first), n_steps=n)
            chunk_losses = np.asarray(chunk_losses)
            if not np.all(np.isfinite(chunk_losses)):
                bar.close()
                bad = first + int(np.argmin(np.isfinite(chunk_losses)))
                raise NonFiniteLoss(
                    f"non-finite loss at step {bad + 1} of epoch {epoch + 1}; training stopped, "
                    f"last good checkpoint kept (step {mngr.latest_step()}) in {workdir}"
                )
            losses.append(chunk_losses)
            bar.update(n)
            bar.set_postfix(loss=f"{np.mean(np.concatenate(losses)):.2f}")
        bar.close()
        test = mean_elbo(vae, state.params, test_x, keys["eval"])
        metrics = {
            "epoch": epoch + 1, "step": int(state.step), "train_loss": float(np.mean(np.concatenate(losses))),
            "test_elbo": test["elbo"], "test_recon": test["recon"], "test_kl": test["kl"],
            "seconds": round(time.time() - t0, 3),
        }
        checkpoint.save(mngr, state, {**meta, "epoch": epoch + 1}, {"test_elbo": test["elbo"]})
        _append_jsonl(os.path.join(workdir, "metrics.jsonl"), metrics)
        recons, samples = pictures(state.params)
        save_png(os.path.join(workdir, "reconstructions.png"), pairs_grid(np.asarray(shown), np.asarray(recons), 8))
        save_png(os.path.join(workdir, "samples.png"), grid(np.asarray(samples), 8))
        log.info(
            "epoch %d/%d  train loss %.2f  test ELBO %.2f (recon %.2f, KL %.2f) nats  %.1fs",
            epoch + 1, config.epochs, metrics["train_loss"], test["elbo"], test["recon"], test["kl"], metrics["seconds"],
        )
    mngr.close()
    return metrics


def _resume(mngr, config: Config, state: TrainState) -> tuple[TrainState, int]:
    """The newest checkpoint's state and completed epochs, or (state, 0) in an empty workdir."""
    latest = mngr.latest_step()
    if latest is None:
        return state, 0
    meta = checkpoint.read_meta(mngr, latest)
    diffs = meta["config"].differences(config)
    if diffs:
        raise UserError(
            f"{config.workdir} holds a run with a different config ({'; '.join(diffs)}); "
            "use another --workdir, or --fresh to move the old run aside and start again"
        )
    state = checkpoint.restore_state(mngr, latest, state)
    log.info("%s: resuming after epoch %d (step %d)", config.workdir, meta["epoch"], int(state.step))
    return state, int(meta["epoch"])


def _archive(workdir: str) -> None:
    """Move everything of a previous run in `workdir` into a dated subfolder; nothing is deleted."""
    if not os.path.isdir(workdir):
        return
    entries = [e for e in os.listdir(workdir) if not e.startswith(".") and not e.startswith("previous-")]
    if not entries:
        return
    target = os.path.join(workdir, time.strftime("previous-%Y%m%d-%H%M%S"))
    os.makedirs(target)
    for e in entries:
        shutil.move(os.path.join(workdir, e), target)
    log.info("%s: moved the previous run to %s", workdir, target)


def _append_jsonl(path: str, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
