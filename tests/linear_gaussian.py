"""A linear-Gaussian VAE whose log p(x) and exact posterior are known in closed form.

linear_gaussian() -> (vae, params(mean_scale, log_var_shift), log_px(x), one x, draw(n)).
"""

import jax.numpy as jnp
import numpy as np
from scipy import stats

from vae_jax.distributions import Gaussian
from vae_jax.families.networks import MLPDecoder, MLPEncoder
from vae_jax.families.vae import VAE


def linear_gaussian(seed: int = 0, latent: int = 2, dim: int = 5, sigma: float = 0.5, scales=(2.0, 0.7)):
    """p(z) = N(0, I), p(x|z) = N(W z + b, sigma^2 I) with orthogonal columns of W, so the exact
    posterior is diagonal: cov S = (I + W^T W / sigma^2)^-1, mean S W^T (x - b) / sigma^2."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(dim, latent)))
    w = q * np.asarray(scales)[:latent]
    b = rng.normal(size=dim)
    vae = VAE(MLPEncoder((), 2 * latent), MLPDecoder((), (dim, 1, 1, 1)), Gaussian(sigma), latent, (dim, 1, 1))
    post_var = 1.0 / (1.0 + np.sum(w**2, 0) / sigma**2)
    a = (post_var[:, None] * w.T) / sigma**2  # posterior mean = a (x - b)

    def params(mean_scale: float = 1.0, log_var_shift: float = 0.0):
        kernel = np.concatenate([a.T * mean_scale, np.zeros((dim, latent))], 1)
        bias = np.concatenate([-(a @ b) * mean_scale, np.log(post_var) + log_var_shift])
        return {
            "encoder": {
                "Dense_0": {"kernel": jnp.asarray(kernel, jnp.float32), "bias": jnp.asarray(bias, jnp.float32)}
            },
            "decoder": {"Dense_0": {"kernel": jnp.asarray(w.T, jnp.float32), "bias": jnp.asarray(b, jnp.float32)}},
        }

    def log_px(x):
        return stats.multivariate_normal.logpdf(x, b, w @ w.T + sigma**2 * np.eye(dim))

    def draw(n: int, seed: int = 1) -> np.ndarray:
        """n examples x ~ p(x), shaped (n, dim, 1, 1) like images."""
        r = np.random.default_rng(seed)
        x = r.normal(size=(n, latent)) @ w.T + b + sigma * r.normal(size=(n, dim))
        return x.reshape(n, dim, 1, 1).astype(np.float32)

    return vae, params, log_px, draw(1, seed)[0, :, 0, 0] * 1.5, draw
