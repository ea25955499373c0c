"""Resuming a run in its folder: the same config and data or a clear refusal, damaged steps moved
aside (never deleted), the newest intact train state restored."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from vae_jax import checkpoint, parallel, saving
from vae_jax.checkpoint import Damaged, checked, newest_intact, read_meta, reader, restore_state, state_of
from vae_jax.config import Config
from vae_jax.errors import UserError
from vae_jax.runmeta import RunMeta, data_text

log = logging.getLogger("vae_jax")


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
    unopenable = checkpoint.damaged_metrics(directory) if parallel.is_main_process() else []
    for step in unopenable:
        log.warning(
            "skipping damaged checkpoint step %d (its metrics file is damaged); moved to %s",
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

    def whole_step(mngr: Any, step: int, meta: RunMeta) -> Any:
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
