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
        """Its parameters, params['prior'] of the model.

        Args:
            key: the PRNG key they are drawn from.
            image_shape: (H, W, C) of the data (a VampPrior's pseudo-inputs are images).

        Returns:
            The parameters, or None where it has none.
        """
        return None

    def log_prob(self, params: Any, z: jax.Array, c: jax.Array | None, encode: Encode) -> jax.Array:
        """log p(z), or log p(z | c) given c.

        Args:
            params: its parameters, params['prior'] of the model (None where it has none).
            z: latents (n, latent_dim).
            c: one-hot conditions (n, n_conditions) of a conditional model, or None.
            encode: the model's encoder, x (K, H, W, C) -> (mean, log_var), each (K, D) (what a VampPrior reads).

        Returns:
            (n,) log-densities in nats.
        """
        raise NotImplementedError

    def moments(self, params: Any, c: jax.Array | None, encode: Encode) -> tuple[Any, Any]:
        """Its mean and log-variance per unit.

        Args:
            params: its parameters, params['prior'] of the model (None where it has none).
            c: one-hot conditions (n, n_conditions) of a conditional model, or None.
            encode: the model's encoder, x (K, H, W, C) -> (mean, log_var), each (K, D) (what a VampPrior reads).

        Returns:
            (mean, log_var), (n, D) each given c, (D,) or scalars otherwise.
        """
        raise NotImplementedError

    def kl(self, params: Any, mean: jax.Array, log_var: jax.Array, c: jax.Array | None) -> jax.Array:
        """KL(N(mean, diag exp(log_var)) || p) per unit, in closed form; only where `analytic`.

        Args:
            params: its parameters, params['prior'] of the model (None where it has none).
            mean: the posterior's means (n, D).
            log_var: its log-variances (n, D).
            c: one-hot conditions (n, n_conditions) of a conditional model, or None.

        Returns:
            (n, D) in nats.
        """
        raise NotImplementedError(f"{type(self).__name__} has no closed-form KL")

    def to_standard(self, params: Any, z: jax.Array, c: jax.Array | None, encode: Encode) -> jax.Array:
        """z in its standard deviations from its mean, per unit: (z - mean) / std.

        Args:
            params: its parameters, params['prior'] of the model (None where it has none).
            z: latents (n, D).
            c: one-hot conditions (n, n_conditions) of a conditional model, or None.
            encode: the model's encoder, x (K, H, W, C) -> (mean, log_var), each (K, D) (what a VampPrior reads).

        Returns:
            (n, D).
        """
        mean, log_var = self.moments(params, c, encode)
        return (z - mean) * jnp.exp(-0.5 * log_var)

    def from_standard(self, params: Any, u: jax.Array, c: jax.Array | None, encode: Encode) -> jax.Array:
        """The inverse of `to_standard`: mean + std * u.

        Args:
            params: its parameters, params['prior'] of the model (None where it has none).
            u: standard coordinates (n, D).
            c: one-hot conditions (n, n_conditions) of a conditional model, or None.
            encode: the model's encoder, x (K, H, W, C) -> (mean, log_var), each (K, D) (what a VampPrior reads).

        Returns:
            (n, D).
        """
        mean, log_var = self.moments(params, c, encode)
        return mean + jnp.exp(0.5 * log_var) * u

    def sample(
        self, params: Any, key: jax.Array, n: int, c: jax.Array | None, temperature: float, encode: Encode
    ) -> jax.Array:
        """n draws z from p(z) (or p(z | c)), its standard deviation times `temperature`.

        Args:
            params: its parameters, params['prior'] of the model (None where it has none).
            key: the PRNG key of the draws.
            n: how many draws.
            c: one-hot conditions (n, n_conditions) of a conditional model, or None.
            temperature: the factor of the standard deviation.
            encode: the model's encoder, x (K, H, W, C) -> (mean, log_var), each (K, D) (what a VampPrior reads).

        Returns:
            (n, D).
        """
        return self.from_standard(params, temperature * jax.random.normal(key, (n, self.latent_dim)), c, encode)
