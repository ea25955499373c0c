"""Objectives: the contract every training objective meets, and the registry, the only place that maps
`config.objective` to one. The twin of the family registry (vae_jax.families).

An objective is one module: a subclass of `Objective` (a frozen dataclass of the options it reads)
and a `register` call with the function that builds it from a Config:

    objectives.register("infovae", lambda config: InfoVAE(config.beta), options=("beta",))

The objectives shipped here (vae, iwae, ae and the rest of BUILTIN) are imported when first built, so that reading flags
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

    name: str  # the group's name: its parameters are aux['groups'][name]
    init: Callable[..., Any]  # init(model, key) -> the group's parameters
    loss: Callable[..., tuple[Any, dict[str, Any]]]  # loss(model, params, group_params, aux, batch, key, step)
    optimizer: Any  # its optimizer, an :class:`optax.GradientTransformation`


class Objective:
    """What training maximises. A subclass is a frozen dataclass of the options it reads, and says:

    - `name`; `formula`: the objective in words, for reports; `defines_likelihood`: whether the model
      it trains defines p(x), an NLL to report (a plain autoencoder does not); `best`: the test
      metric the best checkpoint maximises ('elbo' or 'recon', see evaluation.split_metrics);
    - `loss(model, params, aux, batch, key, step) -> (value to minimise, {name: scalar})` over the
      WHOLE batch (a `Batch`; `step`: optimisation steps taken, an int32 scalar; `aux`:
      {'state': its own state, 'groups': {name: {'params': ..., 'opt_state': ...}}});
    - where it has them: `init` of its own state `aux`, `update` of it outside the gradient after each
      step (and `written`: what of the model's parameters that state sets), and `groups`, parameters
      trained by their own loss and optimizer, after the model's update (`alternating`) or from the
      same state as it.
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
        """The objective's own state, aux['state'], for a model with fresh parameters.

        Args:
            model: the model being trained (a LatentModel).
            params: the model's parameters.
            key: the PRNG key it draws what it needs from.

        Returns:
            The state (a pytree; {} where it has none).
        """
        return {}

    def loss(self, model: Any, params: Any, aux: Aux, batch: Batch, key: Any, step: Any) -> tuple[Any, dict]:
        """The loss of one step on the whole batch, differentiated with respect to the model's parameters.

        Args:
            model: the model being trained (a LatentModel).
            params: the model's parameters.
            aux: {'state': the objective's own state, 'groups': {name: {'params': ..., 'opt_state': ...}}}.
            batch: the whole batch of the step (a `Batch`).
            key: the step's PRNG key.
            step: optimisation steps taken so far, an int32 scalar.

        Returns:
            (the value to minimise, the batch-mean statistics by name), scalars.
        """
        raise NotImplementedError

    def update(self, model: Any, params: Any, aux: dict, batch: Batch, key: Any, step: Any) -> Aux:
        """Its own state after a step, outside the gradient.

        Args:
            model: the model being trained (a LatentModel).
            params: the model's parameters after the step's update.
            aux: as the loss sees it, with the groups' updated parameters.
            batch: the whole batch of the step (a `Batch`).
            key: the step's PRNG key.
            step: optimisation steps taken so far, an int32 scalar.

        Returns:
            The new aux['state'].
        """
        return aux["state"]

    def written(self, model: Any, params: Any, state: Aux) -> Any:
        """The model's parameters with what the objective's own state sets written into them (a codebook
        kept by moving averages), after each step; the parameters themselves where it sets none.

        Args:
            model: the model being trained (a LatentModel).
            params: the model's parameters after the step.
            state: the objective's own state after the step (aux['state']).

        Returns:
            The parameters the next step starts from.
        """
        return params

    def score(self, test: dict[str, float]) -> float:
        """What the best checkpoint maximises.

        Args:
            test: the test metrics of an epoch, {name: value}.

        Returns:
            The score (higher is better).
        """
        return test[self.best]


Builder = Callable[[Any], Objective]  # build(config) -> the objective with the config's options


@dataclass(frozen=True)
class Spec:
    """How an objective is built, which Config options it reads, and what `--help` says of it."""

    build: Builder | str  # the function, or "module:function" imported when first built
    options: tuple[str, ...] = ()  # Config fields that only some objectives read, read by this one
    summary: str = ""
    defines_likelihood: bool = True  # as the objective built says (checked): read before JAX is imported
    discrete: bool = False  # trains a model whose z is discrete (codes), and only such a model


# the options the objectives shipped here read (Config fields and flags, in this order)
def _one_of(*allowed: str) -> Callable[[str], str | None]:
    return lambda value: None if value in allowed else f"is not one of {', '.join(allowed)}"


def _fraction(value: float) -> str | None:
    return None if 0.0 <= value <= 1.0 else "must be in [0, 1]"


# the options the objectives shipped here read (Config fields and flags, in this order)
OPTIONS = (
    Option(
        "k",
        5,
        "iwae, miwae, piwae, ciwae: importance samples per example (per bound, of the M of miwae and piwae)",
        positive=True,
        check=samples_at_most,
    ),
    Option("m", 8, "miwae, piwae: M, the bounds of --k samples averaged (Rainforth et al. 2018)", positive=True),
    Option("ciwae_beta", 0.5, "ciwae: weight of the ELBO beside the IWAE bound (1 - it)", check=_fraction),
    Option("kl_warmup_epochs", 0, "vae: beta rises linearly from 0 to --beta over this many epochs", minimum=0),
    Option(
        "free_bits",
        0.0,
        "vae: KL per latent dimension below this many nats costs nothing (Kingma et al. 2016)",
        minimum=0,
    ),
    Option("info_alpha", 0.0, "infovae: alpha, the KL weighs 1 - alpha (Zhao et al. 2019)"),
    Option("info_lambda", 1000.0, "infovae: lambda, the MMD weighs alpha + lambda - 1", minimum=0),
    Option("wae_lambda", 10.0, "wae: lambda, the weight of the MMD (Tolstikhin et al. 2018)", minimum=0),
    Option(
        "wae_encoder", "deterministic", "wae: deterministic or gaussian", check=_one_of("deterministic", "gaussian")
    ),
    Option("mmd_kernel", "imq", "infovae, wae: the MMD's kernel, imq or rbf", check=_one_of("imq", "rbf")),
    Option("rae_beta", 1e-4, "rae-l2, rae-gp: weight of the code's norm |z|^2 / 2 (Ghosh et al. 2020)", minimum=0),
    Option("rae_lambda", 1e-7, "rae-l2, rae-gp: weight of the decoder's regulariser", minimum=0),
    Option("aae_weight", 1.0, "aae: weight of the adversarial term (Makhzani et al. 2016)", minimum=0),
    Option(
        "vaegan_gamma",
        1e-6,
        "vaegan: the decoder's weight of the feature-wise reconstruction beside the GAN's (Larsen et al. 2016)",
        check=_fraction,
    ),
    Option("tc_alpha", 1.0, "beta-tc: alpha, the weight of the index-code mutual information", minimum=0),
    Option("tc_beta", 6.0, "beta-tc: beta, the weight of the total correlation (Chen et al. 2018)", minimum=0),
    Option("tc_gamma", 1.0, "beta-tc: gamma, the weight of the dimension-wise KL", minimum=0),
    Option("tc_estimator", "mws", "beta-tc: q(z) from the batch by mws or mss sampling", check=_one_of("mws", "mss")),
    Option("factor_gamma", 40.0, "factor: gamma, the weight of the total correlation (Kim & Mnih 2018)", minimum=0),
    Option("anneal_gamma", 1000.0, "annealed: gamma, the weight of |KL - C| (Burgess et al. 2018)", minimum=0),
    Option("anneal_capacity", 25.0, "annealed: C_max, the capacity C reaches, in nats", minimum=0),
    Option("anneal_steps", 100_000, "annealed: optimisation steps over which C rises from 0 to C_max", minimum=0),
    Option(
        "dip_lambda_od", 10.0, "dip-i, dip-ii: weight of the covariance's off-diagonal (Kumar et al. 2018)", minimum=0
    ),
    Option(
        "dip_lambda_d",
        0.0,
        "dip-i, dip-ii: weight of the diagonal's distance from 1; 0: 10 lambda_od (dip-i) or lambda_od (dip-ii)",
        minimum=0,
    ),
    Option("vq_beta", 0.25, "vqvae: beta, the weight of the commitment loss (van den Oord et al. 2017)", minimum=0),
    Option(
        "codebook_update",
        "loss",
        "vqvae: how the codebook learns: loss (its term |sg[z_e] - e|^2, by the optimizer) or ema (moving averages "
        "of the encoder outputs each code is given, decay --vq-decay)",
        check=_one_of("loss", "ema"),
    ),
    Option(
        "vq_decay",
        0.99,
        "vqvae: the moving averages' decay (of --codebook-update ema, and of each code's use for --vq-restart)",
        check=lambda value: None if 0.0 <= value < 1.0 else "must be in [0, 1)",
    ),
    Option(
        "vq_restart",
        0.0,
        "vqvae: a code whose moving average of positions per step falls below this restarts at one of the batch's "
        "encoder outputs, drawn at random (Jukebox's dead-code restarts, Dhariwal et al. 2020; its 1.0); 0: never",
        minimum=0,
    ),
    Option(
        "beta",
        1.0,
        "vae, msssim: weight of the KL term (1 is the true ELBO; beta-VAE otherwise)",
        minimum=0,
        after="ema",
    ),
)
_MMD = ("mmd_kernel",)
_OBJECTIVES: dict[str, Spec] = {
    "vae": Spec("vae_jax.objectives.vae:build", ("beta", "free_bits", "kl_warmup_epochs"), "ELBO"),
    "iwae": Spec("vae_jax.objectives.iwae:build", ("k",), "importance-weighted bound with --k samples"),
    "ae": Spec("vae_jax.objectives.autoencoder:build", (), "plain autoencoder", defines_likelihood=False),
    "infovae": Spec("vae_jax.objectives.infovae:build", ("info_alpha", "info_lambda", *_MMD), "InfoVAE-MMD"),
    "wae": Spec(
        "vae_jax.objectives.wae:build", ("wae_lambda", "wae_encoder", *_MMD), "WAE-MMD", defines_likelihood=False
    ),
    "miwae": Spec("vae_jax.objectives.miwae:build", ("m", "k"), "M IWAE-K bounds averaged"),
    "piwae": Spec("vae_jax.objectives.piwae:build", ("m", "k"), "decoder on IWAE-MK, encoder on MIWAE"),
    "ciwae": Spec("vae_jax.objectives.ciwae:build", ("k", "ciwae_beta"), "beta ELBO + (1 - beta) IWAE"),
    "rae-l2": Spec("vae_jax.objectives.rae:build_l2", ("rae_beta", "rae_lambda"), "RAE, decoder weight decay", False),
    "rae-gp": Spec("vae_jax.objectives.rae:build_gp", ("rae_beta", "rae_lambda"), "RAE, gradient penalty", False),
    "aae": Spec("vae_jax.objectives.aae:build", ("aae_weight",), "adversarial autoencoder"),
    "vaegan": Spec("vae_jax.objectives.vaegan:build", ("vaegan_gamma",), "VAE-GAN", defines_likelihood=False),
    "msssim": Spec("vae_jax.objectives.msssim:build", ("beta",), "MS-SSIM VAE", defines_likelihood=False),
    "beta-tc": Spec(
        "vae_jax.objectives.betatc:build", ("tc_alpha", "tc_beta", "tc_gamma", "tc_estimator"), "beta-TCVAE"
    ),
    "factor": Spec("vae_jax.objectives.factorvae:build", ("factor_gamma",), "FactorVAE"),
    "annealed": Spec(
        "vae_jax.objectives.annealed:build", ("anneal_gamma", "anneal_capacity", "anneal_steps"), "AnnealedVAE"
    ),
    "dip-i": Spec("vae_jax.objectives.dip:build_i", ("dip_lambda_od", "dip_lambda_d"), "DIP-VAE-I"),
    "dip-ii": Spec("vae_jax.objectives.dip:build_ii", ("dip_lambda_od", "dip_lambda_d"), "DIP-VAE-II"),
    "vqvae": Spec(
        "vae_jax.objectives.vqvae:build",
        ("vq_beta", "codebook_update", "vq_decay", "vq_restart"),
        "VQ-VAE",
        discrete=True,
    ),
}
BUILTIN = tuple(_OBJECTIVES)


def register(
    name: str,
    build: Builder,
    options: tuple[str, ...] = (),
    summary: str = "",
    defines_likelihood: bool = True,
    discrete: bool = False,
) -> None:
    """Make `--objective name` train with the objective `build(config)` gives.

    Args:
        name: the name `--objective` takes; a name already taken is refused (ValueError).
        build: build(config) -> the Objective with the config's options, or "module:function", imported
            when first built.
        options: the Config fields it reads that other objectives refuse.
        summary: what `--help` says of it, in a few words.
        defines_likelihood: as its Objective says: whether the model it trains defines p(x).
        discrete: whether it trains the models whose z is discrete (codes), and only those.
    """
    if name in _OBJECTIVES:
        raise ValueError(f"objective {name!r} is already registered")
    _OBJECTIVES[name] = Spec(build, tuple(options), summary, defines_likelihood, discrete)


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
