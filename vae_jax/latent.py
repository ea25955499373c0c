"""The contract every model family meets: what objectives, training, evaluation, outputs, pictures
and the API use of a model, and nothing more. A family is a static description (frozen, hashable
by identity: jit takes it as a static argument) plus these pure functions of a parameter pytree.

Latents are flat: z (B, latent_dim) is the family's groups, top first, each flattened (a one-latent
VAE has one group). `c` is a condition (one-hot labels, (B, n_conditions) or (n_conditions,) for
one example); a family with n_conditions = 0 is given None and may ignore it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import jax
import numpy as np

from vae_jax.distributions import Likelihood
from vae_jax.errors import UserError

Params = Any  # a plain pytree: {'encoder': ..., 'decoder': ...[, whatever else the family keeps]}


class Draw(NamedTuple):
    """n draws z ~ q(z|x) for ONE example and what the objectives need of them. Leading axis n everywhere."""

    out: jax.Array  # (n, H, W, C, P) raw decoder output for the likelihood, float32
    kl: jax.Array | None  # (n, D) analytic KL(q || p) per latent unit (below the top: given the drawn
    # groups above), or (n, 1) where the closed form is the whole latent's and does not split by unit (a
    # von Mises-Fisher q); None where the model has none in closed form (LatentModel.kl_analytic False)
    log_q: jax.Array  # (n,) log q(z|x) of the drawn z
    log_p: jax.Array  # (n,) log p(z) of the drawn z under the prior
    z: jax.Array | None = None  # (n, latent_dim) the drawn z, flat (what batch-level objectives compare
    # with draws from the prior: LatentModel.sample_prior)
    gaussian: tuple[jax.Array, jax.Array] | None = None  # (mean, log_var), each (latent_dim,): the diagonal
    # Gaussian z was drawn from, where q(z|x) is one (one latent group, no flow); None otherwise
    score: jax.Array | None = None  # (n,) zero, whose gradient is that of log pi(eps | params) of the accepted
    # proposals of a rejection sampler (vmf.score): stop_gradient(f) * score added to a draw's f corrects
    # the gradient of E_q[f] (Naesseth et al. 2017); None where z is reparameterised without rejection


def temperatures(temperature: float | Sequence[float], n_groups: int) -> tuple[float, ...]:
    """One prior temperature per latent group from one number (all groups) or one per group."""
    ts = tuple(float(t) for t in np.ravel(temperature)) if np.ndim(temperature) else (float(temperature),) * n_groups
    if len(ts) != n_groups or any(t < 0 for t in ts):
        raise UserError(f"give one temperature >= 0, or one per latent group ({n_groups}); got {temperature}")
    return ts


def continuous_only(vae: Any, what: str) -> None:
    """Refuse `what` (encode's mean and log-variance, a temperature, the explorer's standard
    coordinates: what only a continuous z has) for a model whose z is discrete (UserError)."""
    if vae.discrete:
        raise UserError(f"{what} is defined for a continuous latent; this model's z is discrete")


class LatentModel(Protocol):
    """What the rest of the package may ask of a model. Shapes: x (B, H, W, C) in [0, 1]; z (B, latent_dim)."""

    likelihood: Likelihood  # reads the decoder's raw output (..., H, W, C, P)
    image_shape: tuple[int, int, int]  # (H, W, C)
    n_conditions: int  # 0: unconditional; else the number of classes
    kl_analytic: bool  # Draw.kl is given: KL(q || p) in closed form, per unit or for the whole latent (else
    # the ELBO uses log q - log p)
    discrete: bool  # whether z is discrete (codes); a continuous z is what encode's mean, to_standard and a
    # temperature are defined for (a discrete family refuses them with a UserError)

    @property
    def description(self) -> dict[str, str]:
        """In words, what reports show: {'prior': p(z), 'posterior': q(z|x), 'kl': how the ELBO's KL is
        computed, starting "closed form" where it is not estimated}."""

    @property
    def group_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The shape of each latent group, top first ((latent_dim,) for a one-latent VAE)."""

    @property
    def groups(self) -> tuple[int, ...]:
        """Units of each latent group, top first; they sum to latent_dim."""

    @property
    def latent_dim(self) -> int:
        """Units of the flat latent z."""

    @property
    def convolutional(self) -> bool:
        """Whether its networks are convolutions (XLA:CPU runs them slowly in loops: training on a CPU
        takes one step per call; evaluation's chunks are sized for them)."""

    def condition(self, labels: jax.Array | None) -> jax.Array | None:
        """One-hot conditions (B, n_conditions) for int labels (B,), or None for an unconditional model."""

    def init(self, key: jax.Array) -> Params:
        """Fresh parameters drawn from `key`."""

    def posterior(self, params: Params, x: jax.Array, key: jax.Array, n: int, c: jax.Array | None = None) -> Draw:
        """n draws z ~ q(z|x[, c]) for ONE example x: (H, W, C)."""

    def encode(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """q along its mean path: x (B, H, W, C) -> (mean, log_var), each (B, latent_dim)."""

    def mean_shift(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """(E_q[z] - E_p[z]) / std_p[z] per unit along q's mean path, (B, latent_dim): what active units count."""

    def decode(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """Raw decoder output (B, H, W, C, P) for the whole latent z (B, latent_dim), float32."""

    def decode_mean(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """Mean of p(x|z[, c]): (B, latent_dim) -> (B, H, W, C)."""

    def decode_top(self, params: Params, z_top: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """Mean of p(x|z) from the top group z_top (B, groups[0]), any groups below at their prior
        means given those above -> (B, H, W, C)."""

    def log_prior(self, params: Params, z_top: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """log p(z_top) of top-group latents (B, groups[0]) under the prior (of the top group) -> (B,)."""

    def to_standard(self, params: Params, z_top: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """Top-group latents (B, groups[0]) in the prior's standard deviations, per unit, from its mean
        (a mixture's: the mixture's mean and standard deviation per unit)."""

    def from_standard(self, params: Params, u: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """The inverse of to_standard."""

    def sample_prior(
        self, params: Params, key: jax.Array, n: int, c: jax.Array | None = None, temperature: Any = 1.0
    ) -> jax.Array:
        """n draws z from the prior (given c: (n, n_conditions), for a conditional model), flat
        (n, latent_dim), each group's standard deviation times its temperature (one number for all
        groups, or one per group)."""

    def generate(
        self, params: Params, key: jax.Array, n: int, c: jax.Array | None = None, temperature: Any = 1.0
    ) -> jax.Array:
        """Raw decoder output (n, H, W, C, P) of n draws from the prior, each group's standard
        deviation times its temperature (one number for all groups, or one per group)."""
