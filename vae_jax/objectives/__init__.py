"""Objectives: the contract every training objective meets, and the registry, the only place that maps
`config.objective` to one. The twin of the family registry (vae_jax.families).

An objective is one module: a subclass of `Objective` (a frozen dataclass of the options it reads)
and a `register` call with the function that builds it from a Config:

    objectives.register("infovae", lambda config: InfoVAE(config.beta), options=("beta",))

The objectives shipped here (vae, iwae, ae) are imported when first built, so that reading flags
(`--help`, Config validation) does not import JAX. The terms they are made of (the ELBO's parts,
importance weights) are in `objectives.terms`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from vae_jax.errors import UserError
from vae_jax.options import Option, imported, refuse_unread, samples_at_most

Aux = Any  # an objective's own state: a pytree (a codebook's moving averages; {} for none)


class Batch(NamedTuple):
    """The whole batch of one training step, as a loss sees it."""

    x: Any  # (B, H, W, C) float32 model inputs in [0, 1] (binarized for a Bernoulli likelihood)
    c: Any  # (B, n_conditions) one-hot conditions of a conditional model, or None
    n_train: int  # N, the size of the training set (a Python int: static under jit)


@dataclass(frozen=True)
class Group:
    """Parameters an objective trains with a loss and an optimizer of their own (a discriminator).

    init(model, key) -> group params;
    loss(model, params, group_params, aux, batch, key, step) -> (value to minimise, {name: scalar}),
    differentiated with respect to group_params only; `params` are the model's (before its update of
    this step, or after it for an objective whose `alternating` is True)."""

    name: str
    init: Callable[..., Any]
    loss: Callable[..., tuple[Any, dict[str, Any]]]
    optimizer: Any  # optax.GradientTransformation


class Objective:
    """What training maximises. A subclass is a frozen dataclass of the options it reads, and says:

    - `name`; `formula`: the objective in words, for reports; `defines_likelihood`: whether the model
      it trains defines p(x), an NLL to report (a plain autoencoder does not); `best`: the test
      metric the best checkpoint maximises ('elbo' or 'recon', see evaluation.split_metrics);
    - `loss(model, params, aux, batch, key, step) -> (value to minimise, {name: scalar})` over the
      WHOLE batch (a `Batch`; `step`: optimisation steps taken, an int32 scalar; `aux`:
      {'state': its own state, 'groups': {name: {'params': ..., 'opt_state': ...}}});
    - where it has them: `init` of its own state `aux`, `update` of it outside the gradient after each
      step, and `groups`, parameters trained by their own loss and optimizer, after the model's
      update (`alternating`) or from the same state as it.
    """

    name: str = ""
    formula: str = ""
    defines_likelihood: bool = True
    best: str = "elbo"
    alternating: bool = True

    @property
    def samples(self) -> int:
        """Decoder passes per example in one training step (what memory grows with)."""
        return 1

    @property
    def label(self) -> str:
        """The objective as reports name it, with its options (e.g. 'IWAE (k=5)')."""
        return self.name

    @property
    def groups(self) -> tuple[Group, ...]:
        return ()

    def init(self, model: Any, params: Any, key: Any) -> Aux:
        """The objective's own state for a model with fresh `params`; `key` draws what it needs."""
        return {}

    def loss(self, model: Any, params: Any, aux: Aux, batch: Batch, key: Any, step: Any) -> tuple[Any, dict]:
        """(the value to minimise, {name: batch-mean statistic}) of one step on the whole `batch`."""
        raise NotImplementedError

    def update(self, model: Any, params: Any, aux: dict, batch: Batch, key: Any, step: Any) -> Aux:
        """Its own state after a step, outside the gradient (`params`: the model's updated parameters;
        `aux`: as the loss sees it, with the groups' updated parameters)."""
        return aux["state"]

    def score(self, test: dict[str, float]) -> float:
        """What the best checkpoint maximises, from the test metrics of an epoch."""
        return test[self.best]


Builder = Callable[[Any], Objective]  # build(config) -> the objective with the config's options


@dataclass(frozen=True)
class Spec:
    """How an objective is built, which Config options it reads, and what `--help` says of it."""

    build: Builder | str  # the function, or "module:function" imported when first built
    options: tuple[str, ...] = ()  # Config fields that only some objectives read, read by this one
    summary: str = ""
    defines_likelihood: bool = True  # as the objective built says (checked): read before JAX is imported


# the options the objectives shipped here read (Config fields and flags, in this order)
OPTIONS = (
    Option("k", 5, "iwae: importance samples per example", positive=True, check=samples_at_most),
    Option("kl_warmup_epochs", 0, "vae: beta rises linearly from 0 to --beta over this many epochs", minimum=0),
    Option(
        "free_bits",
        0.0,
        "vae: KL per latent dimension below this many nats costs nothing (Kingma et al. 2016)",
        minimum=0,
    ),
    Option("beta", 1.0, "weight of the KL term (1 is the true ELBO; beta-VAE otherwise)", minimum=0, after="ema"),
)
_OBJECTIVES: dict[str, Spec] = {
    "vae": Spec("vae_jax.objectives.vae:build", ("beta", "free_bits", "kl_warmup_epochs"), "ELBO"),
    "iwae": Spec("vae_jax.objectives.iwae:build", ("k",), "importance-weighted bound with --k samples"),
    "ae": Spec("vae_jax.objectives.autoencoder:build", (), "plain autoencoder", defines_likelihood=False),
}
BUILTIN = tuple(_OBJECTIVES)


def register(
    name: str, build: Builder, options: tuple[str, ...] = (), summary: str = "", defines_likelihood: bool = True
) -> None:
    """Make `--objective name` train with the objective `build(config)` gives; `options`: the Config
    fields it reads that other objectives refuse; `defines_likelihood`: as its Objective says. A name
    already taken is refused."""
    if name in _OBJECTIVES:
        raise ValueError(f"objective {name!r} is already registered")
    _OBJECTIVES[name] = Spec(build, tuple(options), summary, defines_likelihood)


def names() -> tuple[str, ...]:
    return tuple(_OBJECTIVES)


def spec(name: str) -> Spec:
    if name not in _OBJECTIVES:
        raise UserError(f"--objective: {name!r} is not one of {', '.join(_OBJECTIVES)}")
    return _OBJECTIVES[name]


def help_text() -> str:
    """What `--objective` says: each built-in objective in a few words."""
    listed = [f"{name} ({s.summary})" for name, s in _OBJECTIVES.items() if name in BUILTIN]
    return f"{', '.join(listed[:-1])} or {listed[-1]}"


def unread_by(name: str) -> set[str]:
    """The options other objectives read and the objective `name` does not."""
    return {o for s in _OBJECTIVES.values() for o in s.options} - set(spec(name).options)


def check(config: Any) -> None:
    """Refuse an unknown objective, and options it does not read (another objective's)."""
    spec(config.objective)
    refuse_unread(config, "--objective", config.objective, {n: s.options for n, s in _OBJECTIVES.items()})


def of(config: Any) -> Objective:
    """The objective `config` trains, with its options."""
    registered = spec(config.objective)
    objective = imported(registered.build)(config)
    if objective.defines_likelihood != registered.defines_likelihood:
        raise ValueError(f"objective {config.objective!r} was registered with another defines_likelihood")
    return objective


_TERMS = (
    "ElboTerms kl_of elbo_parts elbo log_importance_weights iwae_bound ae_recon per_example per_example_keys "
    "batch_elbo group_sums"
).split()


def __getattr__(name: str) -> Any:
    """The terms (objectives.terms) under their old names, imported when first used (they need JAX)."""
    if name not in _TERMS:
        raise AttributeError(f"module 'vae_jax.objectives' has no attribute {name!r}")
    return getattr(importlib.import_module("vae_jax.objectives.terms"), name)
