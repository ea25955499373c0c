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
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from vae_jax import integrity, logs, runmeta, saving
from vae_jax import workdir as wd
from vae_jax.errors import UserError, first_line
from vae_jax.runmeta import RunMeta, Unreadable, from_json
from vae_jax.state import TrainState

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
    # a step --keep retires is renamed into wd.REMOVED in one move (a reader never finds it half
    # deleted), then deleted from there once the save that retired it is on disk (saving.Saver.finish)
    options = ocp.CheckpointManagerOptions(
        best_fn=_best, best_mode="max", preservation_policy=policy, todelete_subdir=wd.REMOVED
    )
    return _opened(directory, options)


def _opened(directory: str, options: ocp.CheckpointManagerOptions) -> ocp.CheckpointManager:
    try:
        return ocp.CheckpointManager(os.path.abspath(directory), options=options)
    except Exception as e:  # Orbax reads every step's metadata here; any damage surfaces as some error
        bad = damaged_metrics(directory)
        where = (
            f"; the metrics of step(s) {', '.join(map(str, bad))} are damaged: move those folders aside" if bad else ""
        )
        raise UserError(f"{directory}: cannot open the checkpoints ({first_line(e)}){where}") from None


def _json_file(path: str) -> Any:
    """The JSON in `path`, or None where there is no such file (OSError, ValueError: it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return None


def metrics_damage(directory: str, step: int, recorded: Any) -> str | None:
    """What is wrong with the metrics file of `step` (None: nothing) given the metrics its metadata
    `recorded` when it was saved (format 2 on; None for older steps, whose file is only read)."""
    try:
        on_disk = _json_file(os.path.join(directory, str(step), "metrics", "metrics"))
    except (OSError, ValueError, RecursionError):
        return "its metrics file cannot be read"
    if recorded is not None and on_disk != recorded.get("metrics"):
        return "its metrics file does not match the metrics its metadata recorded (flipped bytes)"
    return None


def damaged_metrics(directory: str) -> list[int]:
    """Steps whose metrics file is damaged (metrics_damage): Orbax reads them all when it opens the
    folder for training (where a step's own metadata is damaged too), and one that cannot be read
    stops it, while one with a changed score misleads which step it keeps as the best."""
    bad = []
    for step in wd.steps_in(directory):
        try:
            meta = _json_file(os.path.join(directory, str(step), "meta", "metadata"))
        except (OSError, ValueError, RecursionError):
            meta = None  # its metadata is damaged: the step is passed over where it is read
        sealed = integrity.is_sealed(meta, runmeta.SEAL)
        if metrics_damage(directory, step, meta if sealed else None):
            bad.append(step)
    return bad


def reader(directory: str) -> ocp.CheckpointManager:
    """A read-only manager on an existing checkpoint folder (it reads no step's metadata or metrics up
    front: read_meta reads and checks those of the steps it is asked for)."""
    if not os.path.exists(directory):
        raise UserError(f"--ckpt {directory}: no such folder")
    if not os.path.isdir(directory):
        raise UserError(f"--ckpt {directory}: is a file, expected a checkpoint folder")
    if all(os.path.isdir(os.path.join(directory, item)) for item in ("state", "meta")):
        parent = os.path.dirname(os.path.abspath(directory))
        raise UserError(f"--ckpt {directory}: is one step of the run in {parent}; give that folder: --ckpt {parent}")
    return _opened(directory, ocp.CheckpointManagerOptions(read_only=True, lightweight_initialize=True))


def read_meta(mngr: ocp.CheckpointManager, step: int) -> RunMeta:
    """The metadata of `step` (older formats migrated). Damaged if it cannot be read; a UserError
    if it reads but holds no valid config."""
    try:
        saved = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    except Exception as e:
        raise Damaged(f"{mngr.directory}: cannot read checkpoint step {step} ({first_line(e)})") from None
    try:
        meta = from_json(saved, str(mngr.directory), step)
    except Unreadable as e:
        raise Damaged(f"{mngr.directory}: checkpoint step {step}: {e}") from None
    damage = metrics_damage(str(mngr.directory), step, saved if meta.format >= 2 else None)
    if damage:
        raise Damaged(f"{mngr.directory}: checkpoint step {step}: {damage}")
    return meta


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


class _StateBefore3(NamedTuple):
    """The train state as formats 0 to 2 saved it: no objective state."""

    params: Any
    opt_state: Any
    step: Any


def restore_train_state(mngr: ocp.CheckpointManager, step: int, meta: RunMeta, like: TrainState) -> TrainState:
    """The train state of `step`, checked against its digests, with the structure of `like`. A step
    of a format before 3 holds no objective state (its objectives had none): it is read without one
    and given `like`'s."""
    if meta.format >= runmeta.AUX_FORMAT:
        return checked(mngr, step, meta, restore_state(mngr, step, like))
    old = checked(mngr, step, meta, restore_state(mngr, step, _StateBefore3(*like[:3])))
    return TrainState(*old, aux=like.aux)


def state_of(like_fn: Callable[[RunMeta], TrainState]) -> Restore:
    """Restores the train state; `like_fn(meta)` gives its structure (and may refuse the step with a
    UserError, which stops the search)."""
    return lambda mngr, step, meta: restore_train_state(mngr, step, meta, like_fn(meta))


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


def _no_step(directory: str, removed_before: bool) -> UserError:
    """What to tell of a folder where no step is listed: every step removed meanwhile (an earlier
    listing had one removed), a folder of images, a first step still being written, or nothing yet."""
    if removed_before:
        return UserError(
            f"{directory}: no intact checkpoint (every step was removed meanwhile by the run writing there, "
            "--keep); run this again, or once that run ends"
        )
    if _holds_images(directory):
        return UserError(
            f"--ckpt {directory}: is a folder of images, not of checkpoints; train on it with: "
            f"python train.py --dataset {directory} --workdir runs/mine, then --ckpt runs/mine"
        )
    heads = [name.split(".")[0] for name in wd.unfinished_saves(directory)]  # Orbax's "<step>.orbax-..."
    unfinished = sorted(int(h) for h in heads if h.isdigit())
    if unfinished:
        return UserError(
            f"--ckpt {directory}: holds no finished checkpoint yet (step {unfinished[-1]} is being written, or a "
            "run that wrote it ended before it was saved); run this again once a run there has saved one"
        )
    return UserError(f"--ckpt {directory}: holds no checkpoint (train one with: python train.py --workdir {directory})")


def _holds_images(directory: str) -> bool:
    """Whether a folder (or its class subfolders) holds PNG or JPEG files."""
    from vae_jax.data.images import SUFFIXES

    return any(any(f.lower().endswith(SUFFIXES) for f in files) for _, _, files in os.walk(directory))


class _Removed(Exception):
    """A step that was there when the folder was listed and is gone now (a run's --keep retired it)."""


READ_ATTEMPTS = 5  # listings of a folder whose steps a run removes while they are read


def load_intact(directory: str, restore: Restore, best: bool = False) -> Found:
    """(step, meta, state) of the newest (or best) checkpoint that reads back whole; damaged steps
    are skipped with a warning naming them and why (and left where they are). A step that a run
    writing the folder removes while it is read (--keep) is not damage: the folder is listed again
    (READ_ATTEMPTS in all) and the newest step then taken."""
    removed = False
    for _ in range(READ_ATTEMPTS - 1):
        try:
            return _load_once(directory, restore, best, retry=True, removed_before=removed)
        except _Removed as e:
            removed = True
            log.info("%s: checkpoint step %s was removed meanwhile (by the run writing there); reading again",
                     directory, e)  # fmt: skip
    return _load_once(directory, restore, best, retry=False, removed_before=removed)


def _load_once(directory: str, restore: Restore, best: bool, retry: bool, removed_before: bool) -> Found:
    """load_intact over the steps listed now; a step removed while it was read raises _Removed with
    `retry`, and is passed over without (`removed_before`: an earlier listing had one removed)."""
    mngr = reader(directory)
    steps = sorted(mngr.all_steps(), reverse=True)
    if best:
        steps.sort(key=lambda s: _score(directory, s), reverse=True)
    if not steps:
        raise _no_step(directory, removed_before)
    removed: list[int] = []

    def passed_over(step: int, e: Damaged) -> None:
        if os.path.isdir(os.path.join(directory, str(step))):
            log.warning("skipping damaged checkpoint: %s", e)
        elif retry:
            raise _Removed(step)
        else:
            removed.append(step)
            log.info("%s: checkpoint step %d was removed meanwhile (by the run writing there)", directory, step)

    found = newest_intact(mngr, steps, restore, passed_over)
    if found is not None:
        return found
    damaged = [s for s in steps if s not in removed]
    said = [f"steps {', '.join(map(str, removed))} were removed meanwhile by the run writing there (--keep)"]
    said = (said if removed else []) + ([f"steps {', '.join(map(str, damaged))} are damaged"] if damaged else [])
    again = "; run this again, or once that run ends" if removed else ""
    raise UserError(f"{directory}: no intact checkpoint ({'; '.join(said)}){again}")
