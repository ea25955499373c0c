"""Samplers fitted to a trained model's latents (ex-post density estimation, Ghosh et al. 2020),
and their registry: the only place that maps `sample.py --sampler NAME` to a density. A VAE's
aggregate posterior rarely fills its prior: regions of p(z) that no image encodes to decode to
blur, and a density fitted to where the training images do encode avoids them.

A sampler is one module of pure functions of its fitted state (a dict of arrays, stored as an .npz
beside the checkpoint by vae_jax.fitted), its options given as keywords:

    fit(z (N, D), key, **options) -> (state, the fit's objective per round: mean log-likelihood or its bound)
    log_prob(state, z (N, D), **options) -> (N,) (or a lower bound on it: the registry line's `density` says)
    sample(state, key, n, temperature, **options) -> (n, D)

(a sampler of a discrete model's codes, `codes=True`: codes (N, h, w) int in place of z, and fit is told
the codebook's size K as `k=`).

and a registry line: samplers.register("maf", "vae_jax.samplers.autoregressive:MAF", what, ...).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from vae_jax.errors import UserError

PRIOR = "prior"  # no fitted sampler: draw from the model's p(z)


@dataclass(frozen=True)
class Spec:
    name: str
    module: Any  # the module (or "package.module" imported when first used) with fit, log_prob, sample
    what: str  # what it fits, in words, with {option} fields: "a {components}-component Gaussian mixture"
    options: dict[str, int] = field(default_factory=dict)  # its options and their defaults
    flags: tuple[str, ...] = ()  # the options sample.py offers as --flags; they name its file
    hint: str = "try another --sampler"  # what to do when its fit does not converge
    density: str = "log-density"  # what its log_prob gives, where it is not the exact log-density
    codes: bool = False  # fitted to a discrete model's codes (N, h, w) int, its fit told K (`k=`); not to z

    @property
    def functions(self) -> Any:
        """What has its fit, log_prob and sample: the module, or "package.module[:name]" imported now."""
        if not isinstance(self.module, str):
            return self.module
        path, _, name = self.module.partition(":")
        found = importlib.import_module(path)
        return getattr(found, name) if name else found

    def tag(self, options: dict[str, int]) -> str:
        """Its file's name part: gmm10 for 10 components, maf for the MAF."""
        return self.name + "".join(str(options[name]) for name in self.flags)

    def describe(self, options: dict[str, int]) -> str:
        return self.what.format(**options)


_SAMPLERS: dict[str, Spec] = {}


def register(name: str, module: str, what: str, **spec: Any) -> None:
    """Make `--sampler name` fit the density of `module` (its fit, log_prob, sample)."""
    if name in _SAMPLERS or name == PRIOR:
        raise ValueError(f"sampler {name!r} is already registered")
    _SAMPLERS[name] = Spec(name, module, what, **spec)


def names() -> tuple[str, ...]:
    return (PRIOR, *_SAMPLERS)


def chosen(name: str) -> Spec:
    if name not in _SAMPLERS:
        raise UserError(f"--sampler: {name!r} is not one of {', '.join(names())}")
    return _SAMPLERS[name]


def options_of(spec: Spec, given: dict[str, int | None]) -> dict[str, int]:
    """Its options: its defaults, with what `given` sets (None: not given); an option given that it
    does not read is refused."""
    for name, value in given.items():
        if value is not None and name not in spec.options:
            owners = " or ".join(s.name for s in _SAMPLERS.values() if name in s.options)
            raise UserError(f"--{name.replace('_', '-')} applies to --sampler {owners} only, not --sampler {spec.name}")
    return spec.options | {name: value for name, value in given.items() if value is not None}


def help_text() -> str:
    listed = "; ".join(f"{s.name}: {s.describe(s.options)}" for s in _SAMPLERS.values())
    return f"draw z from: prior (the model's p(z), default) or a density fitted to the training latents ({listed})"


register(
    "gmm",
    "vae_jax.samplers.gmm",
    "a {components}-component Gaussian mixture with full covariances, fitted by EM (Ghosh et al. 2020)",
    options={"components": 10},
    flags=("components",),
    hint="try fewer --components",
)
register(
    "maf",
    "vae_jax.samplers.autoregressive:MAF",
    "a masked autoregressive flow, {blocks} MADEs of {layers}x{hidden} units (Papamakarios et al. 2017)",
    options={"blocks": 2, "layers": 3, "hidden": 128, "epochs": 100},
)
register(
    "iaf",
    "vae_jax.samplers.autoregressive:IAF",
    "an inverse autoregressive flow, {blocks} MADEs of {layers}x{hidden} units (Kingma et al. 2016)",
    options={"blocks": 2, "layers": 3, "hidden": 128, "epochs": 100},
)
register(
    "twostage",
    "vae_jax.samplers.twostage",
    "a second VAE on the latents, {depth} ReLU layers of {width} units each way (Dai & Wipf 2019)",
    options={"depth": 3, "width": 1024, "epochs": 100},
    density="log-density bound (64-draw importance-weighted)",
)
register(
    "pixelcnn",
    "vae_jax.samplers.pixelcnn",
    "a gated PixelCNN over the codes, {layers} blocks of {hidden} channels (van den Oord et al. 2016)",
    options={"layers": 10, "hidden": 64, "epochs": 20},
    codes=True,
)
