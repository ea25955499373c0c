"""The optimizer a Config asks for, all from Optax: Adam, or AdamW with --weight-decay; a constant
or cosine learning rate after a linear warm-up; clipping by global gradient norm; and an
exponential moving average (EMA) of the parameters, kept in the optimizer state so that it is
checkpointed, skipped with a non-finite step and restored with everything else; and VDVAE's
skipping of updates whose gradient norm is far above its running level (Child 2021).

With the default flags this is plain `optax.adam(lr)`, state and all, so checkpoints written
before these options existed restore and resume unchanged.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
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


SKIP_WARMUP_STEPS = 50  # steps averaged into the gradient-norm level before any step is judged by it
SKIP_LEVEL_DECAY = 0.99  # then the level is a moving average of the norms, a spike counted at the threshold


class SkipState(NamedTuple):
    inner: Any  # the wrapped optimizer's state, unchanged by a skipped update
    level: jax.Array  # float32: running average of the gradient norms
    seen: jax.Array  # int32: updates seen
    skipped: jax.Array  # bool: whether the last update was skipped


def skip_spikes(inner: optax.GradientTransformation, threshold: float) -> optax.GradientTransformation:
    """`inner`, except that an update whose gradient's global norm is above `threshold` times the
    running level of the norms changes nothing (zero updates, `inner`'s state kept). The level
    follows a spike only as far as the threshold, so a lasting rise of the norms lifts it within
    a few dozen steps instead of freezing training."""

    def init(params: Params) -> SkipState:
        return SkipState(inner.init(params), jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32), jnp.array(False))

    def update(grads, state: SkipState, params: Params = None):
        norm = optax.global_norm(grads).astype(jnp.float32)
        judged = state.seen >= SKIP_WARMUP_STEPS
        spike = judged & (norm > threshold * state.level)
        rate = jnp.maximum(1.0 / (state.seen + 1), 1.0 - SKIP_LEVEL_DECAY)
        target = jnp.where(judged, jnp.minimum(norm, threshold * state.level), norm)
        level = state.level + rate * (target - state.level)
        updates, inner_state = inner.update(grads, state.inner, params)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(spike, b, a), new, old)  # noqa: E731
        updates = jax.tree.map(lambda u: jnp.where(spike, jnp.zeros_like(u), u), updates)
        return updates, SkipState(keep(inner_state, state.inner), level, state.seen + 1, spike)

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
    optimizer = optax.chain(*clip, adam, *ema) if clip or ema else adam
    return skip_spikes(optimizer, config.skip_threshold) if config.skip_threshold else optimizer


def _part(opt_state: Any, kind: type) -> Any:
    for part in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, kind)):
        if isinstance(part, kind):
            return part
    return None


def ema_params(opt_state: Any) -> Params | None:
    """The moving average of the parameters kept in an optimizer state, or None without --ema."""
    part = _part(opt_state, ParamEmaState)
    return None if part is None else part.ema


def spike_skipped(opt_state: Any) -> jax.Array | None:
    """Whether the last update was skipped for its gradient norm (bool scalar), or None without --skip-threshold."""
    part = _part(opt_state, SkipState)
    return None if part is None else part.skipped
