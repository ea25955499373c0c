"""--latent-space sphere: the hyperspherical VAE (Davidson et al. 2018, "Hyperspherical Variational
Auto-Encoders", arXiv:1804.00891). z lies on the unit sphere S^{m-1} in R^m (m = --latent-dim):
q(z|x) is a von Mises-Fisher distribution, its mean direction mu and concentration
kappa = softplus(.) + 1 from the encoder (the paper's code), and p(z) is uniform on the sphere.
The KL is in closed form for the whole latent (it does not split by unit); the draws are Wood's
rejection sampler, reparameterised, with the gradient correction of the acceptance (vmf.score).
The networks are --model mlp, conv or resnet's, the encoder giving m + 1 numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vae_jax import vmf
from vae_jax.distributions import Likelihood
from vae_jax.families.networks import CONV_MODELS
from vae_jax.families.vae import VAE, networks
from vae_jax.latent import Draw, Params
from vae_jax.priors.sphere import UniformSphere


@dataclass(frozen=True, eq=False)
class HypersphericalVAE(VAE):
    """A VAE whose z lies on the unit sphere; parameters {'encoder', 'decoder'}."""

    @property
    def description(self) -> dict[str, str]:
        return {
            "prior": self.prior.text,
            "posterior": "von Mises-Fisher (mean direction and concentration from the encoder)",
            "kl": "closed form, for the whole latent (it does not split by unit)",
        }

    def von_mises_fisher(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """q(z|x[, c]): x (B, H, W, C) -> (mean direction mu (B, m), unit; concentration kappa (B,), > 1)."""
        out = self.encoder.apply({"params": params["encoder"]}, x, c).astype(jnp.float32)
        direction = out[:, :-1]
        mu = direction / jnp.maximum(jnp.linalg.norm(direction, axis=-1, keepdims=True), 1e-12)
        return mu, jax.nn.softplus(out[:, -1]) + 1.0

    def encode(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """q's mode, mu, and -log kappa per unit (a vMF's spread about its mode is about 1 / kappa per
        direction of the sphere's tangent space), each (B, m)."""
        mu, kappa = self.von_mises_fisher(params, x, c)
        return mu, jnp.broadcast_to(-jnp.log(kappa)[:, None], mu.shape)

    def mean_shift(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """E_q[z] = A_m(kappa) mu in the uniform prior's standard deviations, 1 / sqrt(m) per unit: (B, m)."""
        mu, kappa = self.von_mises_fisher(params, x, c)
        return self.to_standard(params, vmf.mean_resultant_length(kappa, self.latent_dim)[:, None] * mu, c)

    def posterior(self, params: Params, x: jax.Array, key: jax.Array, n: int, c: jax.Array | None = None) -> Draw:
        """n draws z ~ vMF(mu(x), kappa(x)) for ONE example x: (H, W, C); Draw.kl is (n, 1), the whole KL."""
        cs = None if c is None else c[None]
        mu, kappa = self.von_mises_fisher(params, x[None], cs)
        # the sampler draws n; the density, KL and score read the one kappa, broadcast (one host call each)
        z, eps = vmf.sample(key, jnp.broadcast_to(mu, (n, self.latent_dim)), jnp.broadcast_to(kappa, (n,)))
        log_q = vmf.log_prob(z, mu, kappa)
        kl = jnp.broadcast_to(vmf.kl_to_uniform(kappa, self.latent_dim)[:, None], (n, 1))
        out = self.decode(params, z, None if c is None else jnp.broadcast_to(c, (n, *c.shape)))
        score = vmf.score(eps, kappa, self.latent_dim)
        return Draw(out, kl, log_q, self.log_prior(params, z, cs), z, None, score)


def build(config, likelihood: Likelihood, image_shape: tuple[int, int, int], n_conditions: int) -> HypersphericalVAE:
    """The hyperspherical VAE with --model mlp, conv or resnet's networks (families.Builder)."""
    m = config.latent_dim
    encoder, decoder = networks(config, likelihood, image_shape, m + 1)
    convolutional = config.model in CONV_MODELS
    return HypersphericalVAE(
        encoder, decoder, likelihood, m, image_shape, n_conditions, UniformSphere(m), convolutional
    )
