"""--latent-space poincare: the Poincaré VAE (Mathieu et al. 2019, "Continuous Hierarchical
Representations with Poincaré Variational Auto-Encoders", arXiv:1901.06033). z lies in the Poincaré
ball of curvature -c (c = --curvature): q(z|x) is a wrapped normal N_W(mu, diag sigma^2) with
mu = exp_0(the encoder's first d outputs) and sigma = softplus(its next d) + 1e-5 (the paper's
code), p(z) the wrapped normal N_W(0, I). The KL has no closed form: the ELBO uses log q(z|x) -
log p(z) of the drawn z, both densities with respect to the ball's Riemannian volume. The decoder
reads z's coordinates in the ball (pythae's; the paper's code offers that, one on log_0(z), and a
gyroplane layer). The networks are --model mlp, conv or resnet's.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax import poincare
from vae_jax.distributions import Likelihood
from vae_jax.families.networks import CONV_MODELS
from vae_jax.families.vae import VAE, networks
from vae_jax.latent import Draw, Params
from vae_jax.priors.poincare import WrappedNormal

MIN_SCALE = 1e-5  # the paper's code adds it to the softplus


@dataclass(frozen=True, eq=False)
class PoincareVAE(VAE):
    """A VAE whose z lies in the Poincaré ball; parameters {'encoder', 'decoder'}."""

    @property
    def kl_analytic(self) -> bool:
        return False

    @property
    def description(self) -> dict[str, str]:
        return {
            "prior": self.prior.text,
            "posterior": "wrapped normal on the Poincaré ball (mean and per-unit scale from the encoder)",
            "kl": "estimated: log q(z|x) - log p(z) of the drawn z",
        }

    def gaussian(self, params: Params, x: jax.Array, c: jax.Array | None = None):
        """q(z|x[, c]): x (B, H, W, C) -> (mu (B, d) on the ball, log sigma^2 (B, d) of the tangent Gaussian, None)."""
        out = self.encoder.apply({"params": params["encoder"]}, x, c).astype(jnp.float32)
        d = self.latent_dim
        scale = jax.nn.softplus(out[:, d:]) + MIN_SCALE
        return poincare.expmap0(out[:, :d], self.prior.curvature), 2 * jnp.log(scale), None

    def posterior(self, params: Params, x: jax.Array, key: jax.Array, n: int, c: jax.Array | None = None) -> Draw:
        """n draws z ~ N_W(mu(x), sigma(x)^2) for ONE example x: (H, W, C)."""
        cs = None if c is None else c[None]
        mu, log_var, _ = self.gaussian(params, x[None], cs)
        shape = (n, self.latent_dim)
        mus, log_vars = jnp.broadcast_to(mu, shape), jnp.broadcast_to(log_var, shape)
        curvature = self.prior.curvature
        z = poincare.sample(key, mus, log_vars, curvature)
        log_q = poincare.log_prob(z, mus, log_vars, curvature)
        out = self.decode(params, z, None if c is None else jnp.broadcast_to(c, (n, *c.shape)))
        return Draw(out, None, log_q, self.log_prior(params, z, cs), z)


def build(config, likelihood: Likelihood, image_shape: tuple[int, int, int], n_conditions: int) -> PoincareVAE:
    """The Poincaré VAE with --model mlp, conv or resnet's networks (families.Builder)."""
    d = config.latent_dim
    encoder, decoder = networks(config, likelihood, image_shape, 2 * d)
    prior = WrappedNormal(d, config.curvature)
    return PoincareVAE(encoder, decoder, likelihood, d, image_shape, n_conditions, prior, config.model in CONV_MODELS)
