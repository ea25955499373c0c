"""The contract of a prior p(z) of the one-latent family (families.vae): a static description (sizes,
options) with pure functions of its own parameters, params['prior'] (None where it has none).
Nothing here knows about networks: a prior that needs the encoder (the VampPrior) is given it as a
function, `encode`: x (K, H, W, C) -> (mean, log_var), each (K, D)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

Encode = Callable[[jax.Array], tuple[jax.Array, jax.Array]]


class Prior:
    """A prior over a latent of `latent_dim` units. z: (n, latent_dim); c: (n, n_conditions) one-hot or None.

    A subclass gives `text` (the prior in words), `analytic` (and then `kl`), `log_prob` and
    `moments`; `init` where it has parameters; `sample` where drawing is not the Gaussian
    mean + std * eps of its moments (a mixture draws a component first).
    """

    latent_dim: int
    text: str = ""
    analytic: bool = False  # KL(q || p) per unit in closed form for a diagonal Gaussian q

    def init(self, key: jax.Array, image_shape: tuple[int, int, int]) -> Any | None:
        """Its parameters (params['prior']), or None: it has none."""
        return None

    def log_prob(self, params: Any, z: jax.Array, c: jax.Array | None, encode: Encode) -> jax.Array:
        """log p(z), or log p(z | c) given c -> (n,)."""
        raise NotImplementedError

    def moments(self, params: Any, c: jax.Array | None, encode: Encode) -> tuple[Any, Any]:
        """Its mean and log-variance per unit ((n, D) given c, (D,) or scalars otherwise)."""
        raise NotImplementedError

    def kl(self, params: Any, mean: jax.Array, log_var: jax.Array, c: jax.Array | None) -> jax.Array:
        """KL(N(mean, diag exp(log_var)) || p) per unit, (n, D); only where `analytic`."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form KL")

    def to_standard(self, params: Any, z: jax.Array, c: jax.Array | None, encode: Encode) -> jax.Array:
        """z in its standard deviations from its mean, per unit: (z - mean) / std."""
        mean, log_var = self.moments(params, c, encode)
        return (z - mean) * jnp.exp(-0.5 * log_var)

    def from_standard(self, params: Any, u: jax.Array, c: jax.Array | None, encode: Encode) -> jax.Array:
        """The inverse of to_standard: mean + std * u."""
        mean, log_var = self.moments(params, c, encode)
        return mean + jnp.exp(0.5 * log_var) * u

    def sample(
        self, params: Any, key: jax.Array, n: int, c: jax.Array | None, temperature: float, encode: Encode
    ) -> jax.Array:
        """n draws z from p(z) (or p(z | c)): (n, D), its standard deviation times `temperature`."""
        return self.from_standard(params, temperature * jax.random.normal(key, (n, self.latent_dim)), c, encode)
