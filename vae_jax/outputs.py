"""What a run writes besides checkpoints: metrics.jsonl, pictures, history strips, curves, TensorBoard,
and what it sends to experiment trackers."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax import compiling, parallel
from vae_jax.errors import Preempted
from vae_jax.latent import LatentModel, Params
from vae_jax.tracking import Tracking
from vae_jax.visualize import grid, pairs_grid, save_figure, save_png, training_curves

log = logging.getLogger("vae_jax")

HISTORY_DIR = "history"
CLOSED_FORM = "closed form"  # how LatentModel.description's "kl" starts where the KL is not estimated
N_PICTURES = 64  # prior samples per picture; half as many test images are reconstructed
N_HISTORY = 10  # test images followed through training in history/
CURVES_EVERY_S = 30.0  # curves.png is redrawn at most this often while training, and at the end


def history_indices(labels: np.ndarray, n: int = 10) -> np.ndarray:
    """n test examples to follow through training: the first of each label, then evenly spread ones."""
    first = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)][:n]
    rest = [i for i in np.linspace(0, len(labels) - 1, n).astype(int) if i not in first]
    return np.array((first + rest)[:n])


def picture_fn(
    vae: LatentModel, test_x: jax.Array, test_labels: np.ndarray, noise_key: jax.Array
) -> Callable[[Params], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A jitted params -> (shown test images, their reconstructions, prior samples), the same
    images and latent noise every epoch so that epochs compare. test_x: (N, H, W, C) model inputs.
    A conditional model's samples have one row of 8 per class, every class."""
    # the history images first, then images spread over the (possibly class-sorted) split
    idx = np.concatenate(
        [
            history_indices(test_labels, N_HISTORY),
            np.linspace(0, len(test_x) - 1, N_PICTURES // 2 - N_HISTORY).astype(int),
        ]
    )
    shown = test_x[idx]
    shown_c = vae.condition(jnp.asarray(test_labels[idx])) if vae.n_conditions else None
    n_samples = 8 * vae.n_conditions if vae.n_conditions else N_PICTURES
    z_c = vae.condition(jnp.arange(n_samples) // 8) if vae.n_conditions else None

    @compiling.jit
    def pictures(params):
        recons = vae.decode_mean(params, vae.encode(params, shown, shown_c)[0], shown_c)
        return shown, recons, vae.likelihood.mean(vae.generate(params, noise_key, n_samples, z_c))

    return lambda params: tuple(np.asarray(a) for a in pictures(params))


def epoch_record(
    epoch: int,
    step: int,
    train: dict[str, float],
    test: dict[str, float],
    seconds: tuple[float, float],
    latent: dict[str, str],
) -> dict:
    """One line of metrics.jsonl: the epoch's train means and test numbers, prefixed, its `seconds`
    (its steps and test metrics) and `steps_seconds` (its training steps alone), and the model's
    prior and posterior in words (LatentModel.description: `latent`), with how its KL is computed."""
    prefixed = {f"train_{k}": v for k, v in train.items()} | {f"test_{k}": v for k, v in test.items()}
    words = {"prior": latent["prior"], "posterior": latent["posterior"]}
    if "test_kl" in prefixed:
        words["kl_computed"] = latent["kl"]
    timing = {"seconds": round(seconds[0], 3), "steps_seconds": round(seconds[1], 3)}
    return {"epoch": epoch, "step": step, **prefixed, **timing, **words}


def epoch_line(m: dict[str, Any]) -> str:
    """The log line of one epoch's metrics."""
    kl = "KL" if m.get("kl_computed", CLOSED_FORM).startswith(CLOSED_FORM) else "KL estimate"
    if "test_elbo" not in m:
        line = f"train loss {m['train_loss']:.2f}  test reconstruction log p(x|z) {m['test_recon']:.2f} nats"
    else:
        line = (
            f"train loss {m['train_loss']:.2f}  test ELBO {m['test_elbo']:.2f} "
            f"(recon {m['test_recon']:.2f}, {kl} "
            f"{m['test_kl']:.2f}) nats"
        )
    return f"{line}  {m['seconds']:.1f}s"


def read_jsonl(path: str) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class RunOutputs:
    """Writes the human-facing outputs of a run into `workdir` (nothing when not `enabled`: the
    other processes of a multi-process run). metrics.jsonl is written at once; the pictures,
    curves and TensorBoard events of an epoch on one background thread, in order, so that drawing
    them does not hold up the next epoch's steps. curves.png (matplotlib, 0.3-0.5 s a drawing:
    most of that thread's work, and on a 2-core CPU it slowed the epoch beside it by as much) is
    redrawn at most every CURVES_EVERY_S seconds and at close(). A failure there is raised at the
    next epoch or at close(). The trackers of `trackers` (--tracker) get each epoch on the same thread,
    once its pictures are drawn; their failures are warnings (tracking.Tracking)."""

    def __init__(self, workdir: str, enabled: bool | None = None, trackers: str = ""):
        enabled = parallel.is_main_process() if enabled is None else enabled
        self.workdir = workdir
        self.enabled = enabled
        self.tracking = Tracking(trackers, workdir, enabled)
        self.metrics_path = os.path.join(workdir, "metrics.jsonl")
        self._tb = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vae_jax-outputs") if enabled else None
        self._pending: list[Future] = []
        self._curves_at, self._curves_stale = -math.inf, False  # when curves.png was drawn; epochs since

    def _writer(self):
        if self._tb is None:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(self.workdir)
        return self._tb

    def write_config(self, config: dict[str, Any]) -> None:
        """`config.json`: the whole Config of the run; `train.py --config` on it repeats the run."""
        if not self.enabled:
            return
        path = os.path.join(self.workdir, "config.json")
        with open(path + ".tmp", "w") as f:
            json.dump(config, f, indent=1)
            f.write("\n")
        os.replace(path + ".tmp", path)

    def append(self, record: dict[str, Any]) -> None:
        """Add `record` to metrics.jsonl; the final evaluation's (a record with 'evaluation') also
        goes to the trackers."""
        if not self.enabled:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if "evaluation" in record:
            self._pending.append(self._worker.submit(self.tracking.record, record, {}))

    def track(self, config: dict[str, Any], facts: dict[str, str]) -> None:
        """Start (or continue) the trackers' runs, and send them what metrics.jsonl holds that they
        have not received (with each epoch's history picture).

        Args:
            config: the run's Config as a dict.
            facts: what the run ran on (tracking.facts).
        """
        if not self.tracking.names:
            return
        records = []
        for record in read_jsonl(self.metrics_path):
            picture = self._history_picture(record.get("epoch", 0))
            records.append(
                (record, {"history": picture} if os.path.exists(picture) and "evaluation" not in record else {})
            )
        self.tracking.start(config, facts, records)

    def _history_picture(self, epoch: int) -> str:
        return os.path.join(self.workdir, HISTORY_DIR, f"epoch_{epoch:04d}.png")

    def epoch(
        self,
        metrics: dict[str, Any],
        originals: np.ndarray,
        recons: np.ndarray,
        samples: np.ndarray,
        n_history: int = N_HISTORY,
    ) -> None:
        """Record one epoch. Images are (N, H, W, C) floats in [0, 1]; the first `n_history`
        originals/reconstructions form this epoch's row of the history picture."""
        if not self.enabled:
            return
        self.append(metrics)
        self._raise_failures()
        self._pending.append(self._worker.submit(self._pictures, metrics, originals, recons, samples, n_history))

    def _raise_failures(self) -> None:
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        for f in done:
            f.result()

    def _pictures(self, metrics, originals, recons, samples, n_history) -> None:
        epoch = metrics["epoch"]
        recon_grid, sample_grid = pairs_grid(originals, recons, 8), grid(samples, 8)
        save_png(os.path.join(self.workdir, "reconstructions.png"), recon_grid)
        save_png(os.path.join(self.workdir, "samples.png"), sample_grid)
        history = os.path.join(self.workdir, HISTORY_DIR)
        if not os.path.exists(os.path.join(history, "originals.png")):
            save_png(os.path.join(history, "originals.png"), grid(originals[:n_history], n_history))
        save_png(self._history_picture(epoch), grid(recons[:n_history], n_history))
        self._curves_stale = True
        if time.monotonic() - self._curves_at >= CURVES_EVERY_S:
            self._draw_curves()
        tb = self._writer()
        for name, value in metrics.items():
            if name not in ("epoch", "step") and not isinstance(value, str):
                tb.add_scalar(name.replace("_", "/", 1), value, epoch)
        if "prior" in metrics:
            tb.add_text("model/latent", f"prior: {metrics['prior']}; posterior: {metrics['posterior']}", epoch)
        tb.add_image("reconstructions", recon_grid, epoch, dataformats="HWC")
        tb.add_image("samples", sample_grid, epoch, dataformats="HWC")
        tb.flush()
        names = ("samples", "reconstructions")
        pictures = {name: os.path.join(self.workdir, f"{name}.png") for name in names}
        self.tracking.record(metrics, pictures | {"history": self._history_picture(epoch)})

    def _draw_curves(self) -> None:
        records = [r for r in read_jsonl(self.metrics_path) if "test_elbo" in r]
        save_figure(os.path.join(self.workdir, "curves.png"), training_curves(records))
        self._curves_at, self._curves_stale = time.monotonic(), False

    def said(self) -> str:
        """Where this run's outputs are, for the line that ends a run (the pictures are the latest epoch's)."""
        w = os.path.normpath(self.workdir)
        return (
            f"outputs in {w}/: checkpoints (step folders), config.json, metrics.jsonl; redrawn each epoch: "
            f"{os.path.join(w, 'samples.png')}, {os.path.join(w, 'reconstructions.png')}, "
            f"{os.path.join(w, 'curves.png')}; one per epoch: {os.path.join(w, HISTORY_DIR, 'epoch_NNNN.png')}"
        )

    def __enter__(self) -> RunOutputs:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        stopped = exc_type is not None and issubclass(exc_type, (Preempted, KeyboardInterrupt))
        status = "FINISHED" if exc_type is None else "KILLED" if stopped else "FAILED"
        self.close(raise_failures=exc_type is None, status=status)  # never hide the exception that ends the run

    def close(self, raise_failures: bool = True, status: str = "FINISHED") -> None:
        """Wait for the pictures still being drawn and bring curves.png up to date (raising what
        failed), then close TensorBoard and end the trackers' runs with `status` ('FINISHED',
        'KILLED', 'FAILED')."""
        if self._worker is not None:
            # after every epoch's pictures, on the same thread: draws only if an epoch came since the last drawing
            self._pending.append(self._worker.submit(lambda: self._curves_stale and self._draw_curves()))
            self._worker.shutdown(wait=True)
            self._worker = None
            pending, self._pending = self._pending, []
            for f in pending:
                if f.exception() is not None and not raise_failures:
                    log.warning("outputs: drawing an epoch's pictures failed: %s", f.exception())
                else:
                    f.result()
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        curves = os.path.join(self.workdir, "curves.png")
        self.tracking.finish(status, {"curves": curves} if os.path.exists(curves) else {})
