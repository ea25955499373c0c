"""vae_jax: variational autoencoders as pure JAX functions.

import vae_jax
m = vae_jax.load("checkpoints/")
imgs = m.sample(jax.random.key(0), 16)
"""

from vae_jax import logs  # first: it records the root logger's handlers before Orbax is imported
from vae_jax.api import Model, load
from vae_jax.config import Config
from vae_jax.distributions import (
    bernoulli_log_prob,
    gaussian_log_prob,
    kl_gaussians,
    kl_standard_normal,
    make_likelihood,
    reparameterize,
)
from vae_jax.errors import NonFiniteLoss, UserError
from vae_jax.evaluation import evaluate
from vae_jax.experiment import train
from vae_jax.hvae import HVAE
from vae_jax.objectives import ElboTerms, Objective, batch_elbo, elbo, iwae_bound
from vae_jax.vae import VAE, build

logs.restore_root()  # Orbax's import gave the root logger a handler (absl): the user's logging.basicConfig works

__all__ = [
    "HVAE",
    "VAE",
    "Config",
    "ElboTerms",
    "Model",
    "NonFiniteLoss",
    "Objective",
    "UserError",
    "batch_elbo",
    "bernoulli_log_prob",
    "build",
    "elbo",
    "evaluate",
    "gaussian_log_prob",
    "iwae_bound",
    "kl_gaussians",
    "kl_standard_normal",
    "load",
    "make_likelihood",
    "reparameterize",
    "train",
]
