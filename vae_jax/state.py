"""The train state: the model's parameters and optimizer state, the step, and the objective's own
state and parameter groups (its `aux`); and how a step moves the objective's part."""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import Batch, Objective

Stats = dict[str, jax.Array]  # per-step statistics


class TrainState(NamedTuple):
    params: Params
    opt_state: Any
    step: jax.Array  # int32 scalar: optimisation steps taken
    # the objective's: {'state': its own (Objective.init), 'groups': {name: {'params', 'opt_state'}}}
    aux: Any = None


def init_state(
    vae: LatentModel, optimizer: optax.GradientTransformation, objective: Objective, key: jax.Array
) -> TrainState:
    """Fresh parameters from `key` (as vae.init(key) draws them), the optimizer's state, and the
    objective's state and parameter groups, drawn from keys folded from `key`."""
    params = vae.init(key)
    own = objective.init(vae, params, jax.random.fold_in(key, 1))
    groups = {}
    for g, group in enumerate(objective.groups):
        group_params = group.init(vae, jax.random.fold_in(key, 2 + g))
        groups[group.name] = {"params": group_params, "opt_state": group.optimizer.init(group_params)}
    aux = {"state": own, "groups": groups}
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32), aux)


def objective_steps(
    objective: Objective, vae: LatentModel, state: TrainState, params: Params, batch: Batch, key, checks: list, stats
) -> tuple[Any, Stats]:
    """The objective's parameter groups stepped by their own losses and optimizers (from the model's
    parameters before its update, or after it for an `alternating` objective), then its own state
    updated outside the gradient -> (its new aux, the step's stats with each group's loss). Each
    group's loss and gradient leaves are appended to `checks` (what must be finite for the step to
    count). Group g draws from fold_in(key, 1 + g), the state's update from fold_in(key, 0): the
    model's loss keeps `key` itself."""
    seen = params if objective.alternating else state.params
    groups = dict(state.aux["groups"])
    for g, group in enumerate(objective.groups):
        held = groups[group.name]
        loss = partial(group.loss, vae, seen)
        (value, group_stats), grads = jax.value_and_grad(loss, has_aux=True)(
            held["params"], state.aux, batch, jax.random.fold_in(key, 1 + g), state.step
        )
        updates, opt_state = group.optimizer.update(grads, held["opt_state"], held["params"])
        groups[group.name] = {"params": optax.apply_updates(held["params"], updates), "opt_state": opt_state}
        checks += [value, *jax.tree.leaves(grads)]
        stats = stats | {f"{group.name}_loss": value} | {f"{group.name}_{k}": v for k, v in group_stats.items()}
    aux = {"state": state.aux["state"], "groups": groups}
    own = objective.update(vae, params, aux, batch, jax.random.fold_in(key, 0), state.step)
    return {"state": own, "groups": groups}, stats
