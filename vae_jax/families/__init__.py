"""The registry of model families: the only place that maps `config.model` to a family.

A family is one module that builds a `latent.LatentModel` and registers it:

    families.register("linear", build_linear)   # build(config, likelihood, image_shape, n_conditions)

The families shipped here are imported when first built, so that reading flags (`--help`, Config
validation) does not import JAX.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vae_jax import flows, objectives, priors
from vae_jax.errors import UserError
from vae_jax.options import Option, changed, imported

# build(config, likelihood, image_shape (H, W, C), n_conditions) -> a latent.LatentModel
Builder = Callable[[Any, Any, tuple[int, int, int], int], Any]


@dataclass(frozen=True)
class Family:
    """How a family is built, and which of the Config's family options it reads."""

    build: Builder | str  # the function, or "module:function" imported when first built
    conditional: bool = True  # takes --conditional
    options: tuple[str, ...] = ()  # Config fields that only some families read, read by this one
    discrete: bool = False  # z is discrete (codes): trained by the objectives that say so (objectives.Spec)


# the options the families shipped here read (Config fields and flags, in this order)
OPTIONS = (
    Option("hidden", (500,), "mlp hidden layer sizes, comma separated (decoder mirrors them)", positive=True),
    Option("channels", (32, 64), "conv/resnet/hvae widths, one stride-2 stage each, comma separated", positive=True),
    Option("depth", 1, "resnet, hvae: residual blocks per stage", positive=True),
    Option(
        "groups",
        0,
        "hvae: latent groups, spread over the stages coarsest first (0: one per stage up to 28x28, i.e. at 1/4 "
        "and 1/2 resolution by default, two per stage up to 32x32, three beyond)",
        minimum=0,
    ),
    Option("codebook_size", 512, "vqvae: K, the code vectors of the codebook, each --latent-dim long", positive=True),
)


@dataclass(frozen=True)
class Space:
    """Where z lives, other than R^latent_dim (--latent-space): its family builder and, in words, its
    own q(z|x) and p(z) (it takes no --prior, --flow or --conditional)."""

    build: str  # "module:function", imported when first built
    has: str  # "von Mises-Fisher q(z|x) and uniform p(z)"
    options: tuple[str, ...] = ()  # Config fields that only this space reads
    min_dim: int = 1  # the fewest latent units it takes


# where z lives, for the families that read --latent-space: None is R^latent_dim (the family's own build)
SPACES: dict[str, Space | None] = {
    "euclidean": None,
    "sphere": Space(
        "vae_jax.families.sphere:build", "von Mises-Fisher q(z|x) and uniform p(z)", min_dim=2
    ),  # S^0 is two points
    "poincare": Space("vae_jax.families.poincare:build", "wrapped normal q(z|x) and p(z) on the ball", ("curvature",)),
}
OPTIONS += (
    Option(
        "latent_space",
        "euclidean",
        "mlp, conv, resnet: where z lives: euclidean (R^latent_dim: a Gaussian q(z|x), --prior, --flow); sphere "
        "(the unit sphere in R^latent_dim: a von Mises-Fisher q(z|x) and a uniform prior, Davidson et al. 2018); "
        "poincare (the Poincaré ball of --curvature: wrapped normals, Mathieu et al. 2019)",
        check=lambda value: None if value in SPACES else f"not one of {', '.join(SPACES)}",
    ),
    Option("curvature", 1.0, "--latent-space poincare: the ball's curvature is -curvature", positive=True),
)
LATENT_OPTIONS = ("prior", "flow", "latent_space")  # reads --prior (other than normal), --flow, --latent-space
_FAMILIES: dict[str, Family] = {
    "mlp": Family("vae_jax.families.vae:build", options=("hidden", *LATENT_OPTIONS)),
    "conv": Family("vae_jax.families.vae:build", options=("channels", *LATENT_OPTIONS)),
    "resnet": Family("vae_jax.families.vae:build", options=("channels", "depth", *LATENT_OPTIONS)),
    "hvae": Family("vae_jax.families.hvae:build", conditional=False, options=("channels", "depth", "groups")),
    "vqvae": Family(
        "vae_jax.families.vqvae:build", conditional=False, options=("channels", "depth", "codebook_size"), discrete=True
    ),
}
BUILTIN = tuple(_FAMILIES)


def register(
    name: str, build: Builder, conditional: bool = True, options: tuple[str, ...] = (), discrete: bool = False
) -> None:
    """Make `--model name` build models with `build`.

    Args:
        name: the name `--model` takes; a name already taken is refused (ValueError).
        build: build(config, likelihood, image_shape, n_conditions) -> the LatentModel, or "module:function",
            imported when first built.
        conditional: whether the family takes --conditional.
        options: the Config fields it reads that other families refuse.
        discrete: whether its z is discrete (codes): then only the objectives registered as discrete train it.
    """
    if name in _FAMILIES:
        raise ValueError(f"model family {name!r} is already registered")
    _FAMILIES[name] = Family(build, conditional, tuple(options), discrete)


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
    for option in ("groups", "codebook_size"):
        if changed(config, option) and option not in chosen.options:
            readers = [n for n, f in _FAMILIES.items() if option in f.options]
            raise UserError(
                f"--{option.replace('_', '-')} applies to --model {' or '.join(readers)} only, not {config.model}"
            )
    _check_discrete(config, chosen)
    _check_space(config, chosen)
    priors.check(config)
    flows.check(config)
    prior, flow = priors.spec(config.prior, config.conditional), flows.chosen(config)
    shaped = {"prior": prior.shapes_px, "flow": flow is not None}
    for option, flag in (("prior", f"--prior {config.prior}"), ("flow", "--flow")):
        if shaped[option] and option not in chosen.options:
            readers = [n for n, f in _FAMILIES.items() if option in f.options]
            raise UserError(f"{flag} applies to --model {', '.join(readers)}, not {config.model}")
    shaping = [f"--prior {config.prior}"] * prior.shapes_px + [f"--flow {config.flow}"] * (flow is not None)
    if shaping and not objectives.spec(config.objective).defines_likelihood:
        verb = "shapes" if len(shaping) == 1 else "shape"
        raise UserError(f"{' and '.join(shaping)} {verb} p(x), which --objective {config.objective} does not define")
    estimated = [f"--prior {config.prior}"] * (not prior.analytic) + [f"--flow {config.flow}"] * (flow is not None)
    if estimated and config.free_bits > 0:
        raise UserError(
            f"--free-bits needs the KL per latent unit in closed form, which {' and '.join(estimated)} "
            f"{'does' if len(estimated) == 1 else 'do'} not have"
        )


def euclidean(config: Any) -> bool:
    """Whether the model `config` describes has z in R^latent_dim (a density fitted there describes it),
    not on a manifold such as the sphere nor discrete (codes)."""
    return SPACES[config.latent_space] is None and not family(config.model).discrete


def _check_discrete(config: Any, chosen: Family) -> None:
    """Refuse a discrete family trained by an objective for continuous latents, and the reverse."""
    if chosen.discrete == objectives.spec(config.objective).discrete:
        return
    if chosen.discrete:
        readers = [n for n in objectives.names() if objectives.spec(n).discrete]
        raise UserError(
            f"--model {config.model} has a discrete z (codes): train it with --objective {' or '.join(readers)}"
        )
    readers = [n for n, f in _FAMILIES.items() if f.discrete]
    raise UserError(f"--objective {config.objective} trains a discrete z (codes): use --model {' or '.join(readers)}")


def _check_space(config: Any, chosen: Family) -> None:
    """Refuse --latent-space where the family does not read it, what a space has no use for, and the
    options of another space."""
    space = SPACES[config.latent_space]
    read = space.options if space else ()
    for name in sorted({o for s in SPACES.values() if s for o in s.options} - set(read)):
        if changed(config, name):
            owners = " or ".join(n for n, s in SPACES.items() if s and name in s.options)
            raise UserError(f"--{name} applies to --latent-space {owners} only, not {config.latent_space}")
    if space is None:
        return
    flag = f"--latent-space {config.latent_space}"
    if "latent_space" not in chosen.options:
        readers = [n for n, f in _FAMILIES.items() if "latent_space" in f.options]
        raise UserError(f"{flag} applies to --model {', '.join(readers)}, not {config.model}")
    if config.latent_dim < space.min_dim:
        raise UserError(f"{flag} needs --latent-dim {space.min_dim} or more")
    unread = [
        ("--conditional", config.conditional),
        (f"--prior {config.prior}", changed(config, "prior")),
        (f"--flow {config.flow}", flows.chosen(config) is not None),
        ("--free-bits", config.free_bits > 0),
    ]
    for what, given in unread:
        if given:
            raise UserError(f"{flag} has its own {space.has}, and no KL per unit: drop {what}")


def size_flags(config: Any) -> list[str]:
    """The flags that set how large the model `config` describes is (what to lower when it does not fit)."""
    sizes = [o for o in ("hidden", "channels", "depth", "groups") if o in family(config.model).options]
    flow = flows.chosen(config)
    latent = [*priors.spec(config.prior, config.conditional).options, *(flow.options if flow else ())]
    return [f"--{o.replace('_', '-')}" for o in (*sizes, "latent_dim", *latent)]


def build(config: Any, image_shape: tuple[int, int, int], num_classes: int = 10) -> Any:
    """The model a config describes.

    Args:
        config: the Config (its family, latent space, likelihood and their options).
        image_shape: (H, W, C) of the images it models.
        num_classes: the classes of a conditional model (read only when config.conditional).

    Returns:
        The model's functions, a LatentModel.
    """
    from vae_jax.distributions import make_likelihood

    config = config.resolved()
    chosen = family(config.model)
    space = SPACES[config.latent_space]  # check: a space only where the family reads it
    builder = imported(space.build if space else chosen.build)
    likelihood = make_likelihood(config.likelihood, config.sigma, config.mixtures)
    return builder(config, likelihood, tuple(image_shape), num_classes if config.conditional else 0)
