"""Flows that carry the one-latent family's Gaussian q(z|x) (families.vae), and their registry: the
only place that maps `config.flow` to a flow. A flow is one module with a static description and
pure functions of its own parameters (params['flow']):

    init(key) -> params;  context: units of encoder context it reads (0: none);  text: in words
    __call__(params, z_0, h) -> (z_T, log |det dz_T/dz_0|): (n, D), (n,)
    diagonal(params, z_0, h) -> (z_T, per-unit log-scale (n, D)) where the Jacobian is triangular
        (encode's log-variance along the mean path), or (z_T, None) where it has no diagonal to give

and a registry line: flows.register("planar", build_planar, options=("flow_steps",)).

A flow registered with target=True also reads the image's target and draws noise of its own (the
Hamiltonian flow): __call__(params, z_0, h, key, log_joint), log_joint(z) = log p(x, z) (n,); its
log-det then includes its noise's densities (log r(rho_T) - log q(rho_0)), so that log q - log p
stays an importance weight of p(x) in the extended space.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vae_jax.errors import UserError
from vae_jax.options import Option, imported, refuse_unread

Builder = Callable[[Any], Any]  # build(config) -> the flow
NONE = "none"  # q(z|x) is the encoder's diagonal Gaussian
MAX_FLOW_STEPS = 64


def _check_steps(config: Any) -> None:
    if config.flow_steps > MAX_FLOW_STEPS:
        raise UserError(
            f"--flow-steps {config.flow_steps}: at most {MAX_FLOW_STEPS} (each step is its own part of the compiled "
            "program: compilation grows with them)"
        )


@dataclass(frozen=True)
class Spec:
    build: Builder | str  # the function, or "module:function" imported when first built
    options: tuple[str, ...] = ()  # Config fields that only this flow reads
    check: Callable[[Any], None] | None = None  # refuses values of its options it cannot take
    summary: str = ""
    target: bool = False  # it reads the image's log p(x, z) and a key (see the module's docstring)


# the options the flows shipped here read (Config fields and flags, in this order)
OPTIONS = (
    Option("flow_steps", 4, "--flow iaf, planar, radial: steps of the flow", positive=True),
    Option(
        "flow_hidden",
        256,
        "--flow iaf, planar, radial: units of the context the encoder gives the flow (iaf: and of each step's "
        "two masked layers)",
        positive=True,
    ),
    Option(
        "leapfrog_step", 0.001, "--flow hamiltonian: the leapfrog steps' size at the start (learned)", positive=True
    ),
    Option(
        "beta0",
        0.3,
        "--flow hamiltonian: the momenta's inverse temperature beta_0 at the start (learned), in (0, 1)",
        check=lambda value: None if 0 < value < 1 else "must lie strictly between 0 and 1",
    ),
)
_FLOWS: dict[str, Spec] = {
    "iaf": Spec(
        "vae_jax.flows.iaf:build",
        ("flow_steps", "flow_hidden"),
        _check_steps,
        "iaf carries it through --flow-steps inverse autoregressive flow steps that read a context from the "
        "encoder (Kingma et al. 2016)",
    ),
    "planar": Spec(
        "vae_jax.flows.planar:build",
        ("flow_steps", "flow_hidden"),
        _check_steps,
        "planar through --flow-steps planar steps (Rezende & Mohamed 2015)",
    ),
    "radial": Spec(
        "vae_jax.flows.radial:build",
        ("flow_steps", "flow_hidden"),
        _check_steps,
        "radial through --flow-steps radial steps (Rezende & Mohamed 2015)",
    ),
    "hamiltonian": Spec(
        "vae_jax.flows.hamiltonian:build",
        ("flow_steps", "leapfrog_step", "beta0"),
        _check_steps,
        "hamiltonian through --flow-steps tempered leapfrog steps on the image's log p(x, z) (the Hamiltonian VAE, "
        "Caterini et al. 2018)",
        target=True,
    ),
}


def register(name: str, build: Builder, **spec: Any) -> None:
    """Make `--flow name` build flows with `build`.

    Args:
        name: the name `--flow` takes; a name already taken is refused (ValueError).
        build: build(config) -> the flow, or "module:function", imported when first built.
        **spec: the rest of its Spec: options (the Config fields only it reads), check (refuses values of
            them it cannot take), target (it reads the image's log p(x, z) and a key).
    """
    if name in _FLOWS or name == NONE:
        raise ValueError(f"flow {name!r} is already registered")
    _FLOWS[name] = Spec(build, **spec)


def names() -> tuple[str, ...]:
    return (NONE, *_FLOWS)


def chosen(config: Any) -> Spec | None:
    """The Spec of the flow `config` names, or None for no flow."""
    if config.flow == NONE:
        return None
    if config.flow not in _FLOWS:
        raise UserError(f"--flow: {config.flow!r} is not one of {', '.join(names())}")
    return _FLOWS[config.flow]


def help_text() -> str:
    listed = "; ".join(s.summary for s in _FLOWS.values() if s.summary)
    return f"q(z|x): none is a diagonal Gaussian; {listed}"


def check(config: Any) -> None:
    """Refuse an unknown flow, options of other flows, and values its own check refuses."""
    flow = chosen(config)
    refuse_unread(config, "--flow", config.flow, {n: s.options for n, s in _FLOWS.items()})
    if flow and flow.check:
        flow.check(config)


def reads_target(config: Any) -> bool:
    """Whether the flow `config` describes reads the image's log p(x, z) (Spec.target)."""
    flow = chosen(config)
    return bool(flow and flow.target)


def build(config: Any) -> Any:
    """The flow `config` describes, or None."""
    flow = chosen(config)
    if flow is None:
        return None
    return imported(flow.build)(config)
