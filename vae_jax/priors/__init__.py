"""Priors p(z) of the one-latent family (families.vae), and their registry: the only place that maps
`config.prior` to a prior. A prior is one module, a `base.Prior` subclass with pure functions of its
own parameters (params['prior']), and a registry line:

    priors.register("laplace", build_laplace, options=("prior_scale",))   # build(config, n_conditions)

The priors shipped here are imported when first built, so that reading flags does not import JAX.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vae_jax.errors import UserError
from vae_jax.options import Option, imported, refuse_unread

Builder = Callable[[Any, int], Any]  # build(config, n_conditions) -> a base.Prior


@dataclass(frozen=True)
class Spec:
    """How a prior is built and what a Config may combine it with (read before JAX is imported)."""

    build: Builder | str  # the function, or "module:function" imported when first built
    options: tuple[str, ...] = ()  # Config fields that only this prior reads
    conditional: str = "any"  # "any", "only" (needs --conditional) or "never" (refuses it)
    analytic: bool = True  # KL(q || p) per latent unit in closed form for a diagonal Gaussian q
    shapes_px: bool = False  # it exists only to shape p(x): an objective that defines none refuses it
    summary: str = ""


# the options the priors shipped here read (Config fields and flags, in this order)
OPTIONS = (
    Option(
        "pseudo_inputs",
        500,
        "--prior vamp: K, the learned pseudo-inputs (they start as noise, not images)",
        positive=True,
    ),
    Option("components", 10, "--prior mog: Gaussians in the mixture prior", positive=True),
)
_PRIORS: dict[str, Spec] = {
    "normal": Spec("vae_jax.priors.normal:build", summary="normal is N(0, I)"),
    "class": Spec(
        "vae_jax.priors.classes:build",
        conditional="only",
        summary="class (conditional VAEs) is a learned Gaussian per class, N(mean_y, diag var_y), so that a sample "
        "drawn for a label shows that class",
    ),
    "vamp": Spec(
        "vae_jax.priors.vamp:build",
        ("pseudo_inputs",),
        "never",
        False,
        True,
        "vamp is the VampPrior (1/K) sum_k q(z|u_k) with --pseudo-inputs learned images u_k",
    ),
    "mog": Spec(
        "vae_jax.priors.mixture:build",
        ("components",),
        "never",
        False,
        True,
        "mog a mixture of --components Gaussians, means, variances and weights learned",
    ),
}
AUTO = "auto"  # class for a conditional model, normal otherwise


def register(name: str, build: Builder, **spec: Any) -> None:
    """Make `--prior name` build priors with `build`.

    Args:
        name: the name `--prior` takes; a name already taken is refused (ValueError).
        build: build(config, n_conditions) -> the Prior, or "module:function", imported when first built.
        **spec: the rest of its Spec: options (the Config fields only it reads), conditional ('any', 'only',
            'never'), analytic (KL per unit in closed form), shapes_px.
    """
    if name in _PRIORS or name == AUTO:
        raise ValueError(f"prior {name!r} is already registered")
    _PRIORS[name] = Spec(build, **spec)


def names() -> tuple[str, ...]:
    return (AUTO, *_PRIORS)


def resolved(name: str, conditional: bool) -> str:
    """The prior `--prior name` gives a model that is (or is not) conditional."""
    return ("class" if conditional else "normal") if name == AUTO else name


def spec(name: str, conditional: bool = False) -> Spec:
    name = resolved(name, conditional)
    if name not in _PRIORS:
        raise UserError(f"--prior: {name!r} is not one of {', '.join(names())}")
    return _PRIORS[name]


def help_text() -> str:
    listed = "; ".join(s.summary for s in _PRIORS.values() if s.summary)
    return f"p(z): {listed}; auto: class for --conditional, normal otherwise"


def options() -> set[str]:
    """The Config fields some prior reads."""
    return {o for s in _PRIORS.values() for o in s.options}


def check(config: Any) -> None:
    """Refuse a prior that is unknown or does not fit --conditional, and options of other priors."""
    chosen = spec(config.prior, config.conditional)
    if chosen.conditional == "only" and not config.conditional:
        raise UserError(f"--prior {config.prior} is one Gaussian per class: it needs --conditional")
    if chosen.conditional == "never" and config.conditional:
        raise UserError(f"--prior {config.prior} is unconditional: a conditional VAE has --prior class (or normal)")
    name = resolved(config.prior, config.conditional)
    refuse_unread(config, "--prior", name, {n: s.options for n, s in _PRIORS.items()})


def build(config: Any, n_conditions: int) -> Any:
    """The prior (a base.Prior) `config` describes, for a model with `n_conditions` classes."""
    return imported(spec(config.prior, bool(n_conditions)).build)(config, n_conditions)
