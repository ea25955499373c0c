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
        """The conditions a conditional model's functions take, from class labels.

        Args:
            labels: int labels (B,) in 0..n_conditions - 1, or None.

        Returns:
            One-hot conditions (B, n_conditions); None for an unconditional model.
        """

    def init(self, key: jax.Array) -> Params:
        """Fresh parameters.

        Args:
            key: the PRNG key the initial weights are drawn from.

        Returns:
            The parameter pytree.
        """

    def posterior(self, params: Params, x: jax.Array, key: jax.Array, n: int, c: jax.Array | None = None) -> Draw:
        """n draws z ~ q(z|x[, c]) for ONE example (batch it with jax.vmap).

        Args:
            params: the model's parameters (from `init` or a checkpoint).
            x: one image (H, W, C) in [0, 1].
            key: the PRNG key of the draws.
            n: how many draws.
            c: the one-hot condition (n_conditions,) of a conditional model; None for an unconditional one.

        Returns:
            A `Draw` whose arrays have leading axis n.
        """

    def encode(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """q(z|x) along its mean path (each group's posterior given the means of those above).

        Args:
            params: the model's parameters (from `init` or a checkpoint).
            x: images (B, H, W, C) in [0, 1].
            c: one-hot conditions (B, n_conditions) of a conditional model; None for an unconditional one.

        Returns:
            (mean, log_var), each (B, latent_dim).
        """

    def mean_shift(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """How far q(z|x)'s mean is from the prior's, in the prior's standard deviations: what active units count.

        Args:
            params: the model's parameters (from `init` or a checkpoint).
            x: images (B, H, W, C) in [0, 1].
            c: one-hot conditions (B, n_conditions) of a conditional model; None for an unconditional one.

        Returns:
            (E_q[z] - E_p[z]) / std_p[z] per unit along q's mean path, (B, latent_dim).
        """

    def decode(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """The decoder's raw output, what the likelihood reads.

        Args:
            params: the model's parameters (from `init` or a checkpoint).
            z: the whole latent, flat (B, latent_dim).
            c: one-hot conditions (B, n_conditions) of a conditional model; None for an unconditional one.

        Returns:
            (B, H, W, C, P) float32, P the likelihood's numbers per pixel.
        """

    def decode_mean(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """The mean of p(x|z[, c]).

        Args:
            params: the model's parameters (from `init` or a checkpoint).
            z: the whole latent, flat (B, latent_dim).
            c: one-hot conditions (B, n_conditions) of a conditional model; None for an unconditional one.

        Returns:
            Images (B, H, W, C) in [0, 1].
        """

    def decode_top(self, params: Params, z_top: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """The mean of p(x|z) from the top group alone, any groups below at their prior means given those above.

        Args:
            params: the model's parameters (from `init` or a checkpoint).
            z_top: top-group latents (B, groups[0]).
            c: one-hot conditions (B, n_conditions) of a conditional model; None for an unconditional one.

        Returns:
            Images (B, H, W, C) in [0, 1].
        """

    def log_prior(self, params: Params, z_top: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """log p(z_top) under the prior of the top group.

        Args:
            params: the model's parameters (from `init` or a checkpoint).
            z_top: top-group latents (B, groups[0]).
            c: one-hot conditions (B, n_conditions) of a conditional model; None for an unconditional one.

        Returns:
            (B,) log-densities in nats.
        """

    def to_standard(self, params: Params, z_top: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """Top-group latents in the prior's standard deviations, per unit, from its mean (a mixture's: the
        mixture's mean and standard deviation per unit).

        Args:
            params: the model's parameters (from `init` or a checkpoint).
            z_top: top-group latents (B, groups[0]).
            c: one-hot conditions (B, n_conditions) of a conditional model; None for an unconditional one.

        Returns:
            (B, groups[0]) standard coordinates.
        """

    def from_standard(self, params: Params, u: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """The inverse of `to_standard`.

        Args:
            params: the model's parameters (from `init` or a checkpoint).
            u: standard coordinates (B, groups[0]).
            c: one-hot conditions (B, n_conditions) of a conditional model; None for an unconditional one.

        Returns:
            Top-group latents (B, groups[0]).
        """

    def sample_prior(
        self, params: Params, key: jax.Array, n: int, c: jax.Array | None = None, temperature: Any = 1.0
    ) -> jax.Array:
        """n draws z from the prior, each group's standard deviation times its temperature.

        Args:
            params: the model's parameters (from `init` or a checkpoint).
            key: the PRNG key of the draws.
            n: how many draws.
            c: one-hot conditions (n, n_conditions) of a conditional model; None for an unconditional one.
            temperature: the prior's standard deviation is multiplied by it: one number for all groups, or one
                per group (top first).

        Returns:
            z, flat (n, latent_dim).
        """

    def generate(
        self, params: Params, key: jax.Array, n: int, c: jax.Array | None = None, temperature: Any = 1.0
    ) -> jax.Array:
        """The decoder's raw output for n draws from the prior (`sample_prior`, then `decode`).

        Args:
            params: the model's parameters (from `init` or a checkpoint).
            key: the PRNG key of the draws.
            n: how many draws.
            c: one-hot conditions (n, n_conditions) of a conditional model; None for an unconditional one.
            temperature: the prior's standard deviation is multiplied by it: one number for all groups, or one
                per group (top first).

        Returns:
            (n, H, W, C, P) float32.
        """


class DiscreteModel(LatentModel, Protocol):
    """What a family whose z is discrete (`discrete` True: codes on a grid) gives beside the contract,
    for the objectives and samplers of codes. Its z, flat as everywhere, is the grid of the chosen code
    vectors; group_shapes[0] is (h, w, D)."""

    codebook_size: int  # K, the codes

    def quantize(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> Any:
        """The encoder's vectors, their nearest codes and the codes' indices.

        Args:
            params: the model's parameters.
            x: images (B, H, W, C) in [0, 1].
            c: None (a discrete family here is unconditional).

        Returns:
            (z_e, z_q, codes): z_e and z_q (B, latent_dim), z_q differentiable in the codebook; codes (B, h * w) int32.
        """

    def embed(self, params: Params, codes: jax.Array) -> jax.Array:
        """The code vectors of code indices.

        Args:
            params: the model's parameters.
            codes: (B, h * w) int, in 0..K-1.

        Returns:
            z, flat (B, latent_dim).
        """

    def codebook(self, params: Params) -> jax.Array:
        """The code vectors.

        Args:
            params: the model's parameters.

        Returns:
            (K, D).
        """

    def with_codebook(self, params: Params, codebook: jax.Array) -> Params:
        """The parameters with other code vectors (what an objective that keeps the codebook writes).

        Args:
            params: the model's parameters.
            codebook: (K, D).

        Returns:
            The parameters with `codebook` in place of theirs.
        """
