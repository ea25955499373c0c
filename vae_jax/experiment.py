"""A training run from a Config: data -> model -> epochs -> checkpoints, metrics and pictures."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import signal
import threading
import time
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from tqdm.auto import tqdm

from vae_jax import checkpoint, data, parallel
from vae_jax.config import DISCRETE_8BIT, Config
from vae_jax.errors import NonFiniteLoss, Preempted, UserError
from vae_jax.evaluate import evaluate, evaluate_autoencoder, split_metrics
from vae_jax.objectives import Objective
from vae_jax.training import (
    EVAL_BINARIZATION_SEED, TrainState, binarize, epoch_runner, eval_images, init_state,
    make_train_steps,
)
from vae_jax.outputs import RunOutputs, history_indices
from vae_jax.vae import VAE, build

log = logging.getLogger("vae_jax")

# Independent key streams derived from the root key of a run.
INIT, TRAIN, STATIC_BINARIZATION, EVAL, SAMPLE_NOISE = range(5)
PROGRESS_UPDATES_PER_EPOCH = 10
CONV_MODELS = ("conv", "resnet")
N_PICTURES = 64  # prior samples per picture; half as many test images are reconstructed
N_HISTORY = 10  # test images followed through training in history/


def run_keys(seed: int) -> dict[str, jax.Array]:
    root = jax.random.key(seed)
    names = ("init", "train", "static_binarization", "eval", "sample_noise")
    return {name: jax.random.fold_in(root, i) for i, name in enumerate(names)}


def train(config: Config, fresh: bool = False) -> dict[str, Any]:
    """Train (or resume) the run `config` describes in `config.workdir`; returns the last metrics."""
    dataset = data.load(config.dataset, config.data_dir)
    vae = build(config, dataset.image_shape, dataset.num_classes)
    n_train = len(dataset.train_images)
    steps_per_epoch = n_train // config.batch_size
    if steps_per_epoch == 0:
        raise UserError(f"--batch-size {config.batch_size} is larger than the training set ({n_train} images)")
    layout = parallel.layout()
    layout.check_batch_size(config.batch_size)
    keys = run_keys(config.seed)
    optimizer = optax.adam(config.lr)
    state = layout.replicate(jax.jit(partial(init_state, vae, optimizer))(keys["init"]))

    workdir = config.workdir
    if fresh and parallel.is_main_process():
        _archive(workdir)
    # every process finds the same folder, so all make the same Orbax calls (they synchronise)
    _make_workdir(workdir)
    parallel.barrier("workdir ready")
    state, start_epoch = _resume(config, state)
    mngr = checkpoint.manager(workdir, config.keep)
    meta = {
        "config": config.to_dict(), "image_shape": list(dataset.image_shape), "num_classes": dataset.num_classes,
        "data_source": dataset.source, "key": checkpoint.key_to_json(jax.random.key(config.seed)),
    }

    train_images = dataset.train_images
    dynamic = config.likelihood == "bernoulli" and config.binarize == "dynamic"
    if config.likelihood == "bernoulli" and config.binarize == "static":
        binarized = jax.jit(lambda k, x: (binarize(k, x) * 255).astype(jnp.uint8))(keys["static_binarization"], train_images)
        train_images = np.asarray(binarized)
    train_labels = dataset.train_labels if config.conditional else None
    test_x = eval_images(jnp.asarray(dataset.test_images), config.likelihood)
    test_labels = jnp.asarray(dataset.test_labels) if config.conditional else None
    objective = Objective(config.objective, config.beta, config.k, config.free_bits)
    steps = make_train_steps(
        vae, optimizer, objective, dynamic, config.batch_size, config.kl_warmup_epochs * steps_per_epoch, layout
    )
    feed = parallel.feeding(layout, train_images.nbytes)
    for_epoch = epoch_runner(steps, layout, keys["train"], train_images, train_labels, config.batch_size, feed)
    log.info("training on %d device(s) (%s), global batch %d = %d per device; training set fed from the %s",
             layout.n_devices, layout.mesh.devices.flat[0].platform, config.batch_size,
             config.batch_size // layout.n_devices, feed)
    pictures = _picture_fn(vae, config, dataset, test_x, keys["sample_noise"])
    outputs = RunOutputs(workdir, enabled=parallel.is_main_process())
    autoencoder = config.objective == "ae"

    def save_mid_epoch(state: TrainState, epoch: int) -> None:
        if mngr.latest_step() != int(state.step):
            checkpoint.save(mngr, state, {**meta, "epoch": epoch}, None)

    metrics: dict[str, Any] = {}
    if start_epoch >= config.epochs:
        log.info("%s: already trained %d of %d epochs; nothing to do", workdir, start_epoch, config.epochs)
    progress = _Progress()
    with _signals_to(progress.on_signal):
        for epoch in range(start_epoch, config.epochs):
            t0 = time.time()
            state, train_stats = _train_epoch(
                for_epoch(epoch), state, steps_per_epoch, feed, epoch, config, mngr, save_mid_epoch, progress
            )
            params = layout.local(state.params)
            test = split_metrics(vae, params, test_x, keys["eval"], test_labels, autoencoder)
            metrics = {
                "epoch": epoch + 1, "step": int(state.step), **{f"train_{k}": v for k, v in train_stats.items()},
                **{f"test_{k}": v for k, v in test.items()}, "seconds": round(time.time() - t0, 3),
            }
            score = test["recon"] if autoencoder else test["elbo"]
            checkpoint.save(mngr, state, {**meta, "epoch": epoch + 1}, {checkpoint.BEST_METRIC: score})
            outputs.epoch(metrics, *pictures(params), N_HISTORY)
            log.info("epoch %d/%d  %s  %.1fs", epoch + 1, config.epochs, _summary(metrics), metrics["seconds"])
    mngr.close()
    if jax.process_count() > 1:
        multihost_utils.assert_equal(layout.local(state.params), "the processes ended with different params")
        log.info("params identical on all %d processes", jax.process_count())
    if start_epoch < config.epochs:
        final = evaluation(vae, layout.local(state.params), config, dataset, "test", k=config.eval_k)
        outputs.append({"epoch": config.epochs, "step": int(state.step), "evaluation": final})
        log.info("%s", evaluation_summary(final))
        metrics = {**metrics, "evaluation": final}
    outputs.close()
    return metrics


def _summary(m: dict[str, Any]) -> str:
    if "test_elbo" not in m:
        return f"train loss {m['train_loss']:.2f}  test reconstruction log p(x|z) {m['test_recon']:.2f} nats"
    return (f"train loss {m['train_loss']:.2f}  test ELBO {m['test_elbo']:.2f} "
            f"(recon {m['test_recon']:.2f}, KL {m['test_kl']:.2f}) nats")


def evaluation_summary(r: dict[str, Any]) -> str:
    """One line for the log: what evaluation() found."""
    if r.get("autoencoder"):
        return f"test reconstruction {r['recon']:.2f} nats, {r['mse_per_pixel']:.5f} squared error per pixel ({r['note']})"
    what = "NLL -log p(x|y)" if r["conditional"] else "NLL"
    return (f"test {what} {r['nll']:.2f} +- {r['nll_se']:.2f} nats (importance sampled, k={r['k']}), "
            f"{r['bits_per_dim']:.4f} bits/dim; active units {r['active_units']}/{r['latent_dim']}")


def _picture_fn(vae: VAE, config: Config, dataset: data.Dataset, test_x: jax.Array, noise_key: jax.Array):
    """A jitted params -> (shown test images, their reconstructions, prior samples), the same
    images and latent noise every epoch so that epochs compare. A conditional model's samples
    have one row of 8 per class (at most 8 classes shown)."""
    # the history images first, then images spread over the (possibly class-sorted) split
    idx = np.concatenate([history_indices(dataset.test_labels, N_HISTORY),
                          np.linspace(0, len(test_x) - 1, N_PICTURES // 2 - N_HISTORY).astype(int)])
    shown = test_x[idx]
    shown_c = vae.condition(jnp.asarray(dataset.test_labels[idx])) if vae.n_conditions else None
    z = jax.random.normal(noise_key, (N_PICTURES, config.latent_dim))
    z_c = vae.condition(jnp.arange(N_PICTURES) // 8 % vae.n_conditions) if vae.n_conditions else None

    @jax.jit
    def pictures(params):
        recons = vae.decode_mean(params, vae.encode(params, shown, shown_c)[0], shown_c)
        return shown, recons, vae.decode_mean(params, z, z_c)

    return lambda params: tuple(np.asarray(a) for a in pictures(params))


@contextlib.contextmanager
def _signals_to(handler):
    """Route SIGTERM and SIGINT to `handler` while training (main thread only), then restore."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class _Progress:
    """Cross-chunk bookkeeping of one run: consecutive skipped steps and the pre-emption flag."""

    def __init__(self) -> None:
        self.bad_in_a_row = 0
        self.stop_signal: int | None = None
        self.stepped = False

    def on_signal(self, signum: int, frame: Any) -> None:
        self.stop_signal = signum


def _chunk_length(first: int, n_steps: int, chunk: int, global_step: int, every: int) -> int:
    """Steps in the call that starts at step `first` of the epoch: up to the next multiple of
    `chunk` (so resumed runs make the same calls as uninterrupted ones), the epoch's end, and the
    next multiple of `every` global steps (a mid-epoch checkpoint)."""
    n = min(chunk - first % chunk, n_steps - first)
    return min(n, every - global_step % every) if every else n


def steps_per_call(model: str, feed: str, n_steps: int) -> int:
    """Steps per jitted call in an epoch of `n_steps`: one for conv nets (see make_train_steps)
    and host-fed batches; for dense nets a lax.scan over a tenth of the epoch."""
    if model in CONV_MODELS or feed == "host":
        return 1
    return max(1, math.ceil(n_steps / PROGRESS_UPDATES_PER_EPOCH))


def _train_epoch(take, state: TrainState, n_steps: int, feed: str, epoch: int,
                 config: Config, mngr, save_mid_epoch, progress: _Progress):
    """The rest of one pass of `n_steps` steps (from the step `state` is at) in jitted chunks of
    steps (see training.epoch_runner), with a progress bar between chunks, checkpoints every
    `config.checkpoint_every_steps` and on SIGTERM/SIGINT. Returns the new state and the epoch
    means of the step statistics (skipped: the count)."""
    first = int(state.step) - epoch * n_steps  # > 0 when resuming inside this epoch
    chunk = steps_per_call(config.model, feed, n_steps)
    stats: list[dict[str, np.ndarray]] = []
    quiet = None if parallel.is_main_process() else True
    with tqdm(total=n_steps, initial=first, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, disable=quiet) as bar:
        while first < n_steps:
            n = _chunk_length(first, n_steps, chunk, int(state.step), config.checkpoint_every_steps)
            state, chunk_stats = take(state, first, n)
            chunk_stats = jax.tree.map(np.asarray, chunk_stats)
            if not progress.stepped:
                progress.stepped = True
                log.info("first training step done")  # benchmarks/throughput.py --warm-start times this line
            stats.append(chunk_stats)
            first += n
            bar.update(n)
            _check_skipped(chunk_stats["skipped"], progress, config, int(state.step), mngr)
            finite = np.concatenate([s["loss"][~s["skipped"]] for s in stats])
            bar.set_postfix(loss=f"{np.mean(finite) if len(finite) else float('nan'):.2f}")
            if first < n_steps and (progress.stop_signal or (config.checkpoint_every_steps and int(state.step) % config.checkpoint_every_steps == 0)):
                save_mid_epoch(state, epoch)
            if progress.stop_signal:
                raise Preempted(int(state.step), signal.Signals(progress.stop_signal).name)
    skipped = np.concatenate([s["skipped"] for s in stats])
    means = {name: float(np.mean(np.concatenate([s[name] for s in stats])[~skipped])) for name in stats[0] if name != "skipped"}
    return state, {**means, "skipped": int(skipped.sum())}


def _check_skipped(skipped: np.ndarray, progress: _Progress, config: Config, step: int, mngr) -> None:
    """Count consecutive skipped steps; stop the run once there are `config.max_bad_steps` in a row."""
    for bad in skipped:
        progress.bad_in_a_row = progress.bad_in_a_row + 1 if bad else 0
        if progress.bad_in_a_row >= config.max_bad_steps:
            raise NonFiniteLoss(
                f"{progress.bad_in_a_row} consecutive steps with a non-finite loss or gradient (up to step {step}); "
                f"training stopped, last good checkpoint kept (step {mngr.latest_step()}) in {config.workdir}"
            )


def _resume(config: Config, state: TrainState) -> tuple[TrainState, int]:
    """The newest intact checkpoint's state and completed epochs (its step may lie inside the next
    epoch), or (state, 0) in an empty workdir. Damaged newer steps are moved aside, not deleted."""
    mngr = checkpoint.reader(config.workdir)
    for step in sorted(mngr.all_steps(), reverse=True):
        try:
            meta = checkpoint.read_meta(mngr, step)
        except UserError as e:
            _set_aside(config.workdir, step, e)
            continue
        diffs = meta["config"].differences(config)
        if diffs:
            raise UserError(
                f"{config.workdir} holds a run with a different config ({'; '.join(diffs)}); "
                "use another --workdir, or --fresh to move the old run aside and start again"
            )
        try:
            state = checkpoint.restore_state(mngr, step, state)
        except UserError as e:
            _set_aside(config.workdir, step, e)
            continue
        log.info("%s: resuming at step %d (%d epochs done)", config.workdir, int(state.step), meta["epoch"])
        return state, int(meta["epoch"])
    return state, 0


def _set_aside(workdir: str, step: int, why: Exception) -> None:
    """Process 0 moves a damaged step aside; the others only skip it."""
    where = checkpoint.quarantine(workdir, step) if parallel.is_main_process() else "aside by process 0"
    log.warning("skipping damaged checkpoint step %d (%s); moved to %s", step, why, where)


def _make_workdir(workdir: str) -> None:
    try:
        os.makedirs(workdir, exist_ok=True)
    except OSError as e:
        raise UserError(f"{workdir}: cannot open the checkpoints ({e.strerror})") from None


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


def data_description(config: Config, dataset: data.Dataset, split: str) -> dict[str, Any]:
    """What an NLL was measured on: without this a number cannot be compared with another."""
    images = dataset.test_images if split == "test" else dataset.train_images
    if config.likelihood == "bernoulli":
        pixels = f"binarized once with the fixed key {EVAL_BINARIZATION_SEED} (training: {config.binarize} binarization)"
    elif config.likelihood in DISCRETE_8BIT:
        pixels = "8-bit values k/255, likelihood discretized to the 256 values (comparable bits/dim)"
    else:
        pixels = "intensities scaled to [0, 1] (a density on continuous pixels, not 8-bit bits/dim)"
    described = {
        "dataset": config.dataset, "split": split, "size": len(images), "source": dataset.source,
        "image_shape": list(dataset.image_shape), "pixels": pixels,
    }
    if config.conditional:
        described["conditional"] = "log p(x|y): conditional on the label y, with prior p(z|y) = N(0, I)"
    return described


def evaluation(
    vae: VAE, params: Any, config: Config, dataset: data.Dataset, split: str = "test",
    k: int = 1000, seed: int = 0, batch_size: int | None = None,
) -> dict[str, Any]:
    """Importance-sampled NLL, ELBO, active units and KL per dimension on a split (reconstruction
    error only for an autoencoder), with the description of the data it was measured on."""
    images, labels = (dataset.test_images, dataset.test_labels) if split == "test" else (dataset.train_images, dataset.train_labels)
    x = eval_images(jnp.asarray(images), config.likelihood)
    labels = jnp.asarray(labels) if config.conditional else None
    if config.objective == "ae":
        result = evaluate_autoencoder(vae, params, x, batch_size, labels)
    else:
        result = evaluate(vae, params, x, jax.random.key(seed), k=k, batch_size=batch_size, labels=labels)
    return {**result, "seed": seed, "data": data_description(config, dataset, split)}
