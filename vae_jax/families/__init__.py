"""The registry of model families: the only place that maps `config.model` to a family.

A family is one module that builds a `latent.LatentModel` and registers it:

    families.register("linear", build_linear)   # build(config, likelihood, image_shape, n_conditions)

The families shipped here are imported when first built, so that reading flags (`--help`, Config
validation) does not import JAX.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vae_jax import objectives
from vae_jax.errors import UserError

# build(config, likelihood, image_shape (H, W, C), n_conditions) -> a latent.LatentModel
Builder = Callable[[Any, Any, tuple[int, int, int], int], Any]


@dataclass(frozen=True)
class Family:
    """How a family is built, and which of the Config's family options it reads."""

    build: Builder | str  # the function, or "module:function" imported when first built
    conditional: bool = True  # takes --conditional
    options: tuple[str, ...] = ()  # Config fields that only some families read, read by this one


LATENT_OPTIONS = ("mixture_prior", "flow")  # reads --prior vamp/mog, --flow iaf
MAX_FLOW_STEPS = 64
_FAMILIES: dict[str, Family] = {
    "mlp": Family("vae_jax.families.vae:build", options=("hidden", *LATENT_OPTIONS)),
    "conv": Family("vae_jax.families.vae:build", options=("channels", *LATENT_OPTIONS)),
    "resnet": Family("vae_jax.families.vae:build", options=("channels", "depth", *LATENT_OPTIONS)),
    "hvae": Family("vae_jax.families.hvae:build", conditional=False, options=("channels", "depth", "groups")),
}
BUILTIN = tuple(_FAMILIES)


def register(name: str, build: Builder, conditional: bool = True, options: tuple[str, ...] = ()) -> None:
    """Make `--model name` build models with `build`; a name already taken is refused."""
    if name in _FAMILIES:
        raise ValueError(f"model family {name!r} is already registered")
    _FAMILIES[name] = Family(build, conditional, tuple(options))


def names() -> tuple[str, ...]:
    return tuple(_FAMILIES)


def family(name: str) -> Family:
    if name not in _FAMILIES:
        raise UserError(f"--model: {name!r} is not one of {', '.join(_FAMILIES)}")
    return _FAMILIES[name]


def check(config: Any) -> None:
    """Refuse a Config whose model is unknown, or that sets what its family does not read."""
    chosen = family(config.model)
    if config.conditional and not chosen.conditional:
        raise UserError(f"--model {config.model} is unconditional: drop --conditional")
    if config.groups and "groups" not in chosen.options:
        readers = [n for n, f in _FAMILIES.items() if "groups" in f.options]
        raise UserError(f"--groups applies to --model {' or '.join(readers)} only, not {config.model}")
    mixture, flow = config.prior in ("vamp", "mog"), config.flow != "none"
    for option, used, flag in (("mixture_prior", mixture, f"--prior {config.prior}"), ("flow", flow, "--flow")):
        if used and option not in chosen.options:
            readers = [n for n, f in _FAMILIES.items() if option in f.options]
            raise UserError(f"{flag} applies to --model {', '.join(readers)}, not {config.model}")
    _check_latent_options(config, mixture, flow)


def _check_latent_options(config: Any, mixture: bool, flow: bool) -> None:
    """Refuse options of a prior or flow that the run does not have, and what needs a closed-form KL."""
    changed = lambda name: getattr(config, name) != type(config).__dataclass_fields__[name].default  # noqa: E731
    unused = {
        "pseudo-inputs": config.prior != "vamp" and changed("pseudo_inputs"),
        "components": config.prior != "mog" and changed("components"),
        "flow-steps": not flow and changed("flow_steps"),
        "flow-hidden": not flow and changed("flow_hidden"),
    }
    if any(unused.values()):
        name = next(n for n, on in unused.items() if on)
        owner = {"pseudo-inputs": "--prior vamp", "components": "--prior mog"}.get(name, "--flow iaf")
        raise UserError(f"--{name} applies to {owner} only")
    if flow and config.flow_steps > MAX_FLOW_STEPS:
        raise UserError(
            f"--flow-steps {config.flow_steps}: at most {MAX_FLOW_STEPS} (each step is its own part of the compiled "
            "program: compilation grows with them)"
        )
    if mixture and config.conditional:
        raise UserError(f"--prior {config.prior} is unconditional: a conditional VAE has --prior class (or normal)")
    if (mixture or flow) and not objectives.spec(config.objective).defines_likelihood:
        raise UserError(f"--prior vamp/mog and --flow shape p(x), which --objective {config.objective} does not define")
    if (mixture or flow) and config.free_bits > 0:
        raise UserError(
            "--free-bits needs the KL per latent unit in closed form, which --prior vamp/mog and --flow iaf do not have"
        )


def size_flags(config: Any) -> list[str]:
    """The flags that set how large the model `config` describes is (what to lower when it does not fit)."""
    sizes = [o for o in ("hidden", "channels", "depth", "groups") if o in family(config.model).options]
    flags = [f"--{o}" for o in sizes] + ["--latent-dim"]
    flags += {"vamp": ["--pseudo-inputs"], "mog": ["--components"]}.get(config.prior, [])
    return flags + (["--flow-steps", "--flow-hidden"] if config.flow != "none" else [])


def build(config: Any, image_shape: tuple[int, int, int], num_classes: int = 10) -> Any:
    """The model `config` describes (a latent.LatentModel), for images of `image_shape` (H, W, C);
    `num_classes` matters only for a conditional model."""
    from vae_jax.distributions import make_likelihood

    config = config.resolved()
    chosen = family(config.model)
    builder = chosen.build
    if isinstance(builder, str):
        module, function = builder.split(":")
        builder = getattr(importlib.import_module(module), function)
    likelihood = make_likelihood(config.likelihood, config.sigma, config.mixtures)
    return builder(config, likelihood, tuple(image_shape), num_classes if config.conditional else 0)
