"""vae_jax: variational autoencoders as pure JAX functions.

import vae_jax
m = vae_jax.load("checkpoints/")
imgs = m.sample(jax.random.key(0), 16)

The names below are imported when first used, so that `import vae_jax.config` (or a command's
`--help`) does not pay for JAX and Orbax.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {  # public name -> the module that defines it
    "Model": "api",
    "load": "api",
    "Config": "config",
    "Draw": "latent",
    "LatentModel": "latent",
    "Params": "latent",
    "bernoulli_log_prob": "distributions",
    "gaussian_log_prob": "distributions",
    "kl_gaussians": "distributions",
    "kl_standard_normal": "distributions",
    "make_likelihood": "distributions",
    "reparameterize": "distributions",
    "NonFiniteLoss": "errors",
    "UserError": "errors",
    "evaluate": "evaluation",
    "train": "experiment",
    "HVAE": "families.hvae",
    "ElboTerms": "objectives",
    "Objective": "objectives",
    "batch_elbo": "objectives",
    "elbo": "objectives",
    "iwae_bound": "objectives",
    "VAE": "families.vae",
    "build": "families",
    "register": "families",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'vae_jax' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"vae_jax.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
