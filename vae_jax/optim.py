"""The optimizer a Config asks for, all from Optax: Adam, or AdamW with --weight-decay; a constant
or cosine learning rate after a linear warm-up; clipping by global gradient norm; and an
exponential moving average (EMA) of the parameters, kept in the optimizer state so that it is
checkpointed, skipped with a non-finite step and restored with everything else.

With the default flags this is plain `optax.adam(lr)`, state and all, so checkpoints written
before these options existed restore and resume unchanged.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax

from vae_jax.config import Config

Params = Any


class ParamEmaState(NamedTuple):
    ema: Params  # the moving average of the parameters after each step


def param_ema(decay: float) -> optax.GradientTransformation:
    """Keeps ema <- decay * ema + (1 - decay) * params after each update (the last link of a chain:
    it sees the final updates and the parameters they are applied to); updates pass unchanged."""

    def init(params: Params) -> ParamEmaState:
        return ParamEmaState(jax.tree.map(lambda p: p.copy(), params))

    def update(updates, state: ParamEmaState, params: Params):
        new = optax.apply_updates(params, updates)
        return updates, ParamEmaState(jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, state.ema, new))

    return optax.GradientTransformation(init, update)


def learning_rate(config: Config, total_steps: int) -> float | optax.Schedule:
    """`config.lr`, or a schedule of the step: a linear warm-up from 0 over `warmup_steps`, then
    constant or a cosine decay to 0 at `total_steps`."""
    lr, warmup = config.lr, config.warmup_steps
    if config.lr_schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total_steps, warmup + 1), end_value=0.0)
    if warmup:
        return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)], [warmup])
    return lr


def make_optimizer(config: Config, total_steps: int = 1) -> optax.GradientTransformation:
    """The optimizer of a run of `total_steps` steps (only a cosine schedule depends on it)."""
    lr = learning_rate(config, total_steps)
    adam = optax.adamw(lr, weight_decay=config.weight_decay) if config.weight_decay else optax.adam(lr)
    clip = [optax.clip_by_global_norm(config.clip_norm)] if config.clip_norm else []
    ema = [param_ema(config.ema)] if config.ema else []
    return optax.chain(*clip, adam, *ema) if clip or ema else adam


def ema_params(opt_state: Any) -> Params | None:
    """The moving average of the parameters kept in an optimizer state, or None without --ema."""
    for part in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, ParamEmaState)):
        if isinstance(part, ParamEmaState):
            return part.ema
    return None
