"""Orbax checkpoints: train state, the parameters samplers use, and the run's metadata.

A step folder holds `state` (params, optimizer state, step; Orbax's standard array format, no
pickle), `sampling_params` (from format 1 on) and `meta` (plain JSON, runmeta.RunMeta). Read-only
users rebuild the model from `meta` alone.

Only a step whose files are damaged (missing, truncated, unreadable) is ever skipped; a step that
reads back whole but does not fit what the caller expects (another parameter or optimizer
structure, an unknown config field) stops the caller with a UserError, and nothing is moved.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import jax

from vae_jax import integrity, logs, parallel, saving
from vae_jax.config import Config
from vae_jax.errors import UserError, first_line
from vae_jax.runmeta import RunMeta, Unreadable, data_text, from_json

ocp = logs.import_orbax()
pp = ocp.checkpoint_managers.preservation_policy

log = logging.getLogger("vae_jax")

BEST_METRIC = "score"  # test ELBO, or an autoencoder's test reconstruction log-likelihood


class Damaged(UserError):
    """A checkpoint step whose files are missing, truncated or unreadable."""


def _best(metrics: dict[str, float]) -> float:
    return metrics[BEST_METRIC]


def manager(directory: str, keep: int = 3) -> ocp.CheckpointManager:
    """A CheckpointManager that keeps the `keep` newest steps plus the epoch end with the best test
    ELBO (mid-epoch saves have no metrics: they count among the newest only)."""
    best = pp.BestN(get_metric_fn=_best, n=1, keep_checkpoints_without_metrics=False)
    policy = pp.AnyPreservationPolicy([pp.LatestN(keep), best])
    options = ocp.CheckpointManagerOptions(best_fn=_best, best_mode="max", preservation_policy=policy)
    return _opened(directory, options)


def _opened(directory: str, options: ocp.CheckpointManagerOptions) -> ocp.CheckpointManager:
    try:
        return ocp.CheckpointManager(os.path.abspath(directory), options=options)
    except Exception as e:  # Orbax reads every step's metadata here; any damage surfaces as some error
        bad = unreadable_metrics(directory)
        where = (
            f"; the metrics of step(s) {', '.join(map(str, bad))} are damaged: move those folders aside" if bad else ""
        )
        raise UserError(f"{directory}: cannot open the checkpoints ({first_line(e)}){where}") from None


def unreadable_metrics(directory: str) -> list[int]:
    """Steps whose metrics file cannot be read as JSON: Orbax reads them all when it opens the
    folder (where a step's own metadata is damaged too), and one of them stops it."""
    bad = []
    steps = sorted(int(e) for e in os.listdir(directory) if e.isdigit()) if os.path.isdir(directory) else []
    for step in steps:
        path = os.path.join(directory, str(step), "metrics", "metrics")
        try:
            with open(path) as f:
                json.load(f)
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            bad.append(step)
    return bad


def reader(directory: str) -> ocp.CheckpointManager:
    """A read-only manager on an existing checkpoint folder (it reads no step's metrics up front)."""
    if not os.path.exists(directory):
        raise UserError(f"--ckpt {directory}: no such folder")
    if not os.path.isdir(directory):
        raise UserError(f"--ckpt {directory}: is a file, expected a checkpoint folder")
    if all(os.path.isdir(os.path.join(directory, item)) for item in ("state", "meta")):
        parent = os.path.dirname(os.path.abspath(directory))
        raise UserError(f"--ckpt {directory}: is one step of the run in {parent}; give that folder: --ckpt {parent}")
    return _opened(directory, ocp.CheckpointManagerOptions(read_only=True))


def read_meta(mngr: ocp.CheckpointManager, step: int) -> RunMeta:
    """The metadata of `step` (older formats migrated). Damaged if it cannot be read; a UserError
    if it reads but holds no valid config."""
    try:
        saved = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    except Exception as e:
        raise Damaged(f"{mngr.directory}: cannot read checkpoint step {step} ({first_line(e)})") from None
    try:
        return from_json(saved, str(mngr.directory), step)
    except Unreadable as e:
        raise Damaged(f"{mngr.directory}: checkpoint step {step}: {e}") from None


def restore_state(mngr: ocp.CheckpointManager, step: int, like: Any, item: str = "state") -> Any:
    """The train state (or another `item`) saved at `step`, with the structure, shapes and dtypes of
    `like` (arrays or jax.ShapeDtypeStruct templates).

    If it fails, the step is read once more as saved, with no template: when that works the files
    are whole and the step does not fit `like` (UserError); otherwise the step is Damaged. Running
    out of memory is never taken for damage."""
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])  # for templates that name none
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding or device), like)
    saving.drop_orbax_unraisables()  # a damaged step's reads fail in Orbax's tasks too, during and after this
    try:
        return mngr.restore(step, args=ocp.args.Composite(**{item: ocp.args.StandardRestore(abstract)}))[item]
    except Exception as e:
        error = first_line(e)
    if "out of memory" in error.lower():
        raise UserError(f"{mngr.directory}: not enough memory to restore checkpoint step {step} ({error})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "sharding info not provided": it is read from the step itself
            mngr.restore(step, args=ocp.args.Composite(**{item: ocp.args.StandardRestore()}))
    except Exception:
        raise Damaged(f"{mngr.directory}: cannot restore checkpoint step {step} ({error})") from None
    raise UserError(
        f"{mngr.directory}: checkpoint step {step} is intact but does not fit this model"
        f"{' and optimizer' if item == 'state' else ''} ({error}); "
        "nothing was moved: use the version that wrote it, another --workdir, or --fresh to set the run aside"
    )


Found = tuple[int, RunMeta, Any]  # (step, meta, what was restored)
# restore(mngr, step, meta) -> the step's arrays, checked against their digests (see `state_of`)
Restore = Callable[[ocp.CheckpointManager, int, RunMeta], Any]


def checked(mngr: ocp.CheckpointManager, step: int, meta: RunMeta, tree: Any, name: str | None = None) -> Any:
    """`tree` as restored from `step`, once it matches the digests recorded when it was saved (Damaged if not)."""
    changed = integrity.mismatches(meta.digests, tree, name)
    if changed:
        raise Damaged(
            f"{mngr.directory}: checkpoint step {step}: {' and '.join(changed)} "
            f"{'does' if len(changed) == 1 else 'do'} not match the digest recorded when it was saved "
            "(flipped bytes)"
        )
    return tree


def state_of(like_fn: Callable[[RunMeta], Any]) -> Restore:
    """Restores the train state; `like_fn(meta)` gives its structure (and may refuse the step with a
    UserError, which stops the search)."""
    return lambda mngr, step, meta: checked(mngr, step, meta, restore_state(mngr, step, like_fn(meta)))


def newest_intact(
    mngr: ocp.CheckpointManager, steps: list[int], restore: Restore, on_damaged: Callable[[int, Damaged], None]
) -> Found | None:
    """The first of `steps` that reads back whole, or None; `on_damaged(step, error)` is told of
    each damaged step passed over."""
    for step in steps:
        try:
            meta = read_meta(mngr, step)
            return step, meta, restore(mngr, step, meta)
        except Damaged as e:
            on_damaged(step, e)
    return None


def _score(directory: str, step: int) -> float:
    """The step's best-checkpoint metric, or -inf where it has none or it cannot be read."""
    try:
        with open(os.path.join(directory, str(step), "metrics", "metrics")) as f:
            return float(json.load(f)[BEST_METRIC])
    except (OSError, ValueError, KeyError, TypeError):
        return float("-inf")


def load_intact(directory: str, restore: Restore, best: bool = False) -> Found:
    """(step, meta, state) of the newest (or best) checkpoint that reads back whole; damaged steps
    are skipped with a warning naming them and why (and left where they are)."""
    mngr = reader(directory)
    steps = sorted(mngr.all_steps(), reverse=True)
    if best:
        steps.sort(key=lambda s: _score(directory, s), reverse=True)
    if not steps:
        raise UserError(
            f"--ckpt {directory}: holds no checkpoint (train one with: python train.py --workdir {directory})"
        )
    found = newest_intact(mngr, steps, restore, lambda step, e: log.warning("skipping damaged checkpoint: %s", e))
    if found is None:
        raise UserError(f"{directory}: no intact checkpoint (all of steps {', '.join(map(str, steps))} are damaged)")
    return found


def _refuse_another_config(directory: str, saved: Config, config: Config) -> None:
    diffs = saved.differences(config)
    if diffs:
        raise UserError(
            f"{directory} holds a run with a different config ({'; '.join(diffs)}); "
            "use another --workdir, or --fresh to move the old run aside and start again"
        )


def check_config(directory: str, config: Config) -> None:
    """Refuse (UserError) a folder whose newest readable step holds a run of another config, from its
    metadata alone (before any data is read; resume checks the data and restores the state)."""
    if not any(e.isdigit() for e in os.listdir(directory)):
        return
    try:
        mngr = reader(directory)
    except UserError:
        return  # damaged beyond opening: resume sets the damaged steps aside, then checks
    for step in sorted(mngr.all_steps(), reverse=True):
        try:
            meta = read_meta(mngr, step)
        except Damaged:
            continue
        _refuse_another_config(directory, meta.config, config)
        return


def resume(directory: str, config: Config, state: Any, data_now: dict[str, Any]) -> tuple[Any, int]:
    """(state, completed epochs) of the newest intact step in `directory`, or (state, 0) when it
    holds none. `state` gives the structure to restore into. A step of another config or other
    data (`data_now`: runmeta.DATA_FIELDS) is refused with what differs; damaged steps (in what
    training resumes from or in what readers read) are moved aside by process 0, and every process
    waits for that before going on; when every step was damaged the run stops (UserError) rather
    than start again from step 0 unannounced."""
    unopenable = unreadable_metrics(directory) if parallel.is_main_process() else []
    for step in unopenable:
        log.warning(
            "skipping damaged checkpoint step %d (its metrics cannot be read); moved to %s",
            step,
            quarantine(directory, step),
        )
    set_aside_first = parallel.main_process_says(bool(unopenable))  # every process decides alike below
    mngr = reader(directory)

    def same_run(meta: RunMeta) -> Any:
        _refuse_another_config(directory, meta.config, config)
        if meta.other_data(data_now):  # older runs did not record every field: those are not compared
            raise UserError(
                f"{directory} holds a run trained on {data_text(meta.data)}, but the data now are "
                f"{data_text(data_now)}; use the same data, another --workdir, or --fresh to "
                "move the old run aside and start again"
            )
        return state

    def set_aside(step: int, e: Damaged) -> None:
        where = quarantine(directory, step) if parallel.is_main_process() else "aside by process 0"
        log.warning("skipping damaged checkpoint step %d (%s); moved to %s", step, e, where)

    steps = sorted(mngr.all_steps(), reverse=True)

    def whole_step(mngr: ocp.CheckpointManager, step: int, meta: RunMeta) -> Any:
        """The state, once it and (format 1) the parameters readers use match their digests."""
        restored = state_of(same_run)(mngr, step, meta)
        if meta.format >= 1:  # the same structure as the state's params (the EMA's too)
            params = restore_state(mngr, step, restored.params, saving.PARAMS_ITEM)
            checked(mngr, step, meta, params, saving.PARAMS_ITEM)
        return restored

    found = newest_intact(mngr, steps, whole_step, set_aside)
    parallel.barrier("damaged checkpoints set aside")
    if found is None and (steps or set_aside_first):
        steps = sorted(steps + unopenable, reverse=True)
        raise UserError(
            f"{directory}: no intact checkpoint (steps {', '.join(map(str, steps))} are damaged and were moved to "
            "damaged-<step>-<date>/); nothing was trained: run the same command again to start from step 0"
        )
    if found is None:
        return state, 0
    step, meta, state = found
    log.info("%s: resuming at step %d (%d epochs done)", directory, step, meta.epoch)
    return state, meta.epoch


def quarantine(directory: str, step: int) -> str:
    """Move a damaged step folder aside (never deleted) so that new checkpoints can take its number."""
    target = os.path.join(directory, f"damaged-{step}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.rename(os.path.join(directory, str(step)), target)
    return target
