"""Orbax checkpoints: train state + JSON metadata (Config, epoch, root key, image shape).

A step folder holds two items: `state` (params, optimizer state, step; Orbax's standard array
format, no pickle) and `meta` (plain JSON). Read-only users rebuild the model from `meta` alone.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from vae_jax.config import Config
from vae_jax.errors import UserError

log = logging.getLogger("vae_jax")

BEST_METRIC = "score"  # test ELBO, or an autoencoder's test reconstruction log-likelihood


def _best(metrics: dict[str, float]) -> float:
    return metrics[BEST_METRIC]


def manager(directory: str, keep: int = 3) -> ocp.CheckpointManager:
    """A CheckpointManager that keeps the `keep` newest steps plus the one with the best test ELBO."""
    policy = pp.AnyPreservationPolicy([pp.LatestN(keep), pp.BestN(get_metric_fn=_best, n=1)])
    options = ocp.CheckpointManagerOptions(
        best_fn=_best, best_mode="max", preservation_policy=policy
    )
    try:
        return ocp.CheckpointManager(os.path.abspath(directory), options=options)
    except Exception as e:  # Orbax reads every step's metadata here; any damage surfaces as some error
        raise UserError(f"{directory}: cannot open the checkpoints ({_first_line(e)})") from None


def save(mngr: ocp.CheckpointManager, state: Any, meta: dict[str, Any], metrics: dict[str, float]) -> None:
    """Save `state` (a pytree with an integer `step`) and JSON `meta`, then wait until it is on disk."""
    step = int(state.step)
    mngr.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
        metrics=metrics,
    )
    mngr.wait_until_finished()


def read_meta(mngr: ocp.CheckpointManager, step: int) -> dict[str, Any]:
    """The JSON metadata of `step`, with its Config parsed and validated."""
    try:
        meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    except Exception as e:
        raise UserError(f"{mngr.directory}: cannot read checkpoint step {step} ({_first_line(e)})") from None
    if not isinstance(meta, dict) or "config" not in meta:
        raise UserError(f"{mngr.directory}: checkpoint step {step} has no config")
    meta["config"] = Config.from_dict(meta["config"])
    return meta


def restore_state(mngr: ocp.CheckpointManager, step: int, like: Any) -> Any:
    """The train state saved at `step`, with the structure, shapes and dtypes of `like`."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    try:
        return mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))["state"]
    except Exception as e:
        raise UserError(f"{mngr.directory}: cannot restore checkpoint step {step} ({_first_line(e)})") from None


def reader(directory: str) -> ocp.CheckpointManager:
    """A read-only manager on an existing checkpoint folder (it reads no step's metrics up front)."""
    if not os.path.exists(directory):
        raise UserError(f"--ckpt {directory}: no such folder")
    if not os.path.isdir(directory):
        raise UserError(f"--ckpt {directory}: is a file, expected a checkpoint folder")
    try:
        return ocp.CheckpointManager(os.path.abspath(directory), options=ocp.CheckpointManagerOptions(read_only=True))
    except Exception as e:
        raise UserError(f"{directory}: cannot open the checkpoints ({_first_line(e)})") from None


def _score(directory: str, step: int) -> float:
    """The step's best-checkpoint metric, or -inf where it has none or it cannot be read."""
    try:
        with open(os.path.join(directory, str(step), "metrics", "metrics")) as f:
            return float(json.load(f)[BEST_METRIC])
    except (OSError, ValueError, KeyError, TypeError):
        return float("-inf")


def load_intact(directory: str, like_fn: Callable[[dict[str, Any]], Any], best: bool = False) -> tuple[int, dict[str, Any], Any]:
    """(step, meta, state) of the newest (or best) checkpoint that reads back whole; damaged steps
    are skipped with a warning naming them and why. `like_fn(meta)` gives the state's structure."""
    mngr = reader(directory)
    steps = sorted(mngr.all_steps(), reverse=True)
    if best:
        steps.sort(key=lambda s: _score(directory, s), reverse=True)
    if not steps:
        raise UserError(f"--ckpt {directory}: holds no checkpoint (train one with: python train.py --workdir {directory})")
    for step in steps:
        try:
            meta = read_meta(mngr, step)
            return step, meta, restore_state(mngr, step, like_fn(meta))
        except UserError as e:
            log.warning("skipping damaged checkpoint: %s", e)
    raise UserError(f"{directory}: no intact checkpoint (all of steps {', '.join(map(str, steps))} are damaged)")


def quarantine(directory: str, step: int) -> str:
    """Move a damaged step folder aside (never deleted) so that new checkpoints can take its number."""
    target = os.path.join(directory, f"damaged-{step}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.rename(os.path.join(directory, str(step)), target)
    return target


def key_to_json(key: jax.Array) -> list[int]:
    return [int(v) for v in np.asarray(jax.random.key_data(key)).ravel()]


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__
