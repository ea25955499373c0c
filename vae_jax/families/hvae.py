"""A deep hierarchical VAE (LVAE, Sønderby et al. 2016; NVAE, Vahdat & Kautz 2020; VDVAE, Child 2021):
a bottom-up encoder and a top-down decoder of residual blocks over several resolutions, with latent
groups z_1 (the top, coarsest) ... z_L, each a feature map (h_l, w_l, latent_dim):

    p(z) = N(z_1; 0, I) prod_{l>1} p(z_l | z_<l),    q(z|x) = prod_l q(z_l | x, z_<l),

and p(x|z) read from the top-down state after the last group. Every prior and posterior is a
diagonal Gaussian computed from the top-down state (the posterior also from the bottom-up features
at its resolution), the posterior relative to its prior (NVAE's residual form: mean_q = mean_p +
d_mean, log_var_q = log_var_p + d_log_var); the KL of a group is analytic given the groups above.

The networks compute raw numbers only. What a group's z is (drawn from q, drawn from the prior,
or given) is decided by a `choose(g, prior, posterior)` function that HVAE passes in: all the
probability lives in HVAE. With one group this is a one-latent VAE: q(z_1|x), N(0, I), p(x|z_1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from vae_jax.distributions import Likelihood, gaussian_log_prob, kl_gaussians, kl_standard_normal, reparameterize
from vae_jax.families.ladder import BottomUp, Choose, TopDown
from vae_jax.families.networks import check_stages
from vae_jax.latent import Draw, Params, temperatures


def groups_per_stage(n_groups: int, n_stages: int) -> tuple[int, ...]:
    """Latent groups of each stage, coarsest first: spread evenly, the coarser stages taking the rest."""
    return tuple(n_groups // n_stages + (1 if s < n_groups % n_stages else 0) for s in range(n_stages))


def default_groups(image_shape: tuple[int, int, int], n_stages: int) -> int:
    """--groups 0: one group per stage for images up to 28x28 (groups at 1/4 and 1/2 resolution with
    the default two stages), two per stage up to 32x32, three beyond."""
    side = max(image_shape[:2])
    return n_stages * (1 if side <= 28 else 2 if side <= 32 else 3)


def _gaussian(raw: jax.Array | None, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """(mean, log_var) float32 from a head's raw output (..., 2 * latent); zeros for None (N(0, I))."""
    if raw is None:
        return jnp.zeros(shape, jnp.float32), jnp.zeros(shape, jnp.float32)
    mean, log_var = jnp.split(raw.astype(jnp.float32), 2, axis=-1)
    return mean, log_var


def _prior_and_posterior(prior: jax.Array | None, post: jax.Array, shape: tuple[int, ...]) -> tuple[jax.Array, ...]:
    """(prior mean, prior log_var, posterior mean, posterior log_var) of a group from its heads'
    raw outputs, the posterior relative to the prior (NVAE's residual form)."""
    p_mean, p_log_var = _gaussian(prior, shape)
    d_mean, d_log_var = _gaussian(post, shape)
    return p_mean, p_log_var, p_mean + d_mean, p_log_var + d_log_var


@dataclass(frozen=True, eq=False)
class HVAE:
    """Static description of a hierarchical VAE; parameters live outside, in a plain pytree
    {'encoder': bottom-up, 'decoder': top-down}. The latent z is flat: its groups, top first, each
    a (h, w, latent_dim) map flattened. A latent.LatentModel; unconditional (it is given c = None
    and ignores it)."""

    bottom_up: BottomUp  # the encoder's deterministic path, x -> features at every stage
    top_down: TopDown  # the groups' priors and posteriors, top first, and the decoder
    likelihood: Likelihood  # p(x|z)
    image_shape: tuple[int, int, int]  # (H, W, C)
    group_shapes: tuple[tuple[int, int, int], ...]  # (h, w, latent_dim) of each group, top first
    n_conditions: int = 0  # always unconditional
    kl_analytic = True  # each group's KL given the groups above
    discrete = False

    @property
    def description(self) -> dict[str, str]:
        return {
            "prior": f"top-down hierarchy of {len(self.groups)} latent groups, each Gaussian given those above",
            "posterior": "diagonal Gaussian per group given the image and the groups above",
            "kl": "closed form per group, given the drawn groups above",
        }

    @property
    def groups(self) -> tuple[int, ...]:
        """Sizes of the latent groups, top first."""
        return tuple(math.prod(s) for s in self.group_shapes)

    @property
    def latent_dim(self) -> int:
        return sum(self.groups)

    @property
    def convolutional(self) -> bool:
        return True

    def condition(self, labels: jax.Array | None) -> None:
        """None: the hierarchy is unconditional (--conditional is refused for it)."""
        return None

    def init(self, key: jax.Array) -> Params:
        """Fresh parameters drawn from `key`."""
        k_up, k_down = jax.random.split(key)
        x = jnp.zeros((1, *self.image_shape), jnp.float32)
        up = self.bottom_up.init(k_up, x).get("params", {})
        feats = self.bottom_up.apply({"params": up}, x)
        given = self._given(jnp.zeros((1, self.latent_dim), jnp.float32))
        return {"encoder": up, "decoder": self.top_down.init(k_down, 1, feats, given)["params"]}

    def _features(self, params: Params, x: jax.Array) -> list[jax.Array]:
        return self.bottom_up.apply({"params": params["encoder"]}, x)

    def _down(self, params: Params, n: int, feats, choose: Choose) -> jax.Array:
        return self.top_down.apply({"params": params["decoder"]}, n, feats, choose).astype(jnp.float32)

    def _shape(self, g: int, n: int) -> tuple[int, ...]:
        return (n, *self.group_shapes[g])

    def _given(self, z: jax.Array) -> Choose:
        """Every group takes its part of the flat z: (n, latent_dim)."""
        parts = jnp.split(z, list(_offsets(self.groups)), axis=-1)
        return lambda g, prior, post: parts[g].reshape(self._shape(g, z.shape[0]))

    def posterior(self, params: Params, x: jax.Array, key: jax.Array, n: int, c: jax.Array | None = None) -> Draw:
        """n draws z ~ q(z|x) for ONE example x: (H, W, C); the bottom-up pass runs once, group g
        draws its noise from fold_in(key, g)."""
        kl, log_q, log_p, zs = [], [], [], []

        def choose(g, prior, post):
            p_mean, p_log_var, mean, log_var = _prior_and_posterior(prior, post, self._shape(g, n))
            z = reparameterize(jax.random.fold_in(key, g), mean, log_var)
            group_kl = (
                kl_standard_normal(mean, log_var) if prior is None else kl_gaussians(mean, log_var, p_mean, p_log_var)
            )
            kl.append(group_kl.reshape(n, -1))
            log_q.append(jnp.sum(gaussian_log_prob(z, mean, log_var).reshape(n, -1), axis=-1))
            log_p.append(jnp.sum(gaussian_log_prob(z, p_mean, p_log_var).reshape(n, -1), axis=-1))
            zs.append(z.reshape(n, -1))
            return z

        out = self._down(params, n, self._features(params, x[None]), choose)
        return Draw(out, jnp.concatenate(kl, axis=-1), sum(log_q), sum(log_p), jnp.concatenate(zs, axis=-1))

    def _mean_path(self, params: Params, x: jax.Array) -> tuple[jax.Array, ...]:
        """Down q's mean path (each group at its posterior mean given the means above): x (B, H, W, C)
        -> (posterior mean, posterior log_var, prior mean, prior log_var), each (B, latent_dim)."""
        parts = []

        def choose(g, prior, post):
            p_mean, p_log_var, mean, log_var = _prior_and_posterior(prior, post, self._shape(g, x.shape[0]))
            parts.append((mean, log_var, p_mean, p_log_var))
            return mean

        self._down(params, x.shape[0], self._features(params, x), choose)
        return tuple(jnp.concatenate([a.reshape(x.shape[0], -1) for a in column], axis=-1) for column in zip(*parts))

    def encode(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """q along its mean path: x (B, H, W, C) -> (mean, log_var), each (B, latent_dim)."""
        mean, log_var, _, _ = self._mean_path(params, x)
        return mean, log_var

    def mean_shift(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """(E_q[z_l] - E_p[z_l | z_<l]) / std_p[z_l | z_<l] along q's mean path: x (B, H, W, C) ->
        (B, latent_dim); for the top group (prior N(0, I)) the posterior mean. Its variance over x
        is what active units count: a group below the top whose posterior is its prior varies with
        the groups above, yet carries nothing about x; and the prior's scale sets what "varies" means."""
        mean, _, prior_mean, prior_log_var = self._mean_path(params, x)
        return (mean - prior_mean) * jnp.exp(-0.5 * prior_log_var)

    def decode(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """p(x|z) parameters for the whole latent given: z (B, latent_dim) -> raw output (B, H, W, C, P)."""
        return self._down(params, z.shape[0], None, self._given(z))

    def decode_mean(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """Mean of p(x|z): z (B, latent_dim) -> (B, H, W, C)."""
        return self.likelihood.mean(self.decode(params, z, c))

    def log_prior(self, params: Params, z_top: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """log N(z_top; 0, I) of top-group latents (B, groups[0]) -> (B,)."""
        return jnp.sum(gaussian_log_prob(z_top, 0.0, 0.0), axis=-1)

    def to_standard(self, params: Params, z_top: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """The top group in its prior's standard deviations: the top prior is N(0, I), so z_top itself."""
        return z_top

    def from_standard(self, params: Params, u: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """The inverse of to_standard: u itself."""
        return u

    def decode_top(self, params: Params, z_top: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """Mean of p(x|z) with the top group given, z_top (B, groups[0]), and every group below at
        its prior mean given the groups above (temperature 0) -> (B, H, W, C)."""
        n = z_top.shape[0]

        def choose(g, prior, post):
            return z_top.reshape(self._shape(0, n)) if g == 0 else _gaussian(prior, self._shape(g, n))[0]

        return self.likelihood.mean(self._down(params, n, None, choose))

    def generate(
        self,
        params: Params,
        key: jax.Array,
        n: int,
        c: jax.Array | None = None,
        temperature: float | Sequence[float] = 1.0,
    ) -> jax.Array:
        """Raw output (n, H, W, C, P) of n draws from the prior, group g with its standard deviation
        scaled by its temperature (one for all groups or one per group) and noise from fold_in(key, g)."""
        return self._down(params, n, None, self._from_prior(key, n, temperature))

    def _from_prior(self, key: jax.Array, n: int, temperature: float | Sequence[float], drawn: list | None = None):
        """Every group drawn from its prior given those above, with its standard deviation times its
        temperature and noise from fold_in(key, g); each z appended to `drawn`, flat."""
        ts = temperatures(temperature, len(self.groups))

        def choose(g, prior, post):
            mean, log_var = _gaussian(prior, self._shape(g, n))
            z = mean + ts[g] * jnp.exp(0.5 * log_var) * jax.random.normal(jax.random.fold_in(key, g), mean.shape)
            if drawn is not None:
                drawn.append(z.reshape(n, -1))
            return z

        return choose

    def sample_prior(self, params: Params, key: jax.Array, n: int, c=None, temperature: Any = 1.0) -> jax.Array:
        """n draws z ~ p(z) of every group, top first, flat (n, latent_dim); as generate draws them
        (the top-down pass runs: a group's prior depends on those above)."""
        drawn: list = []
        self._down(params, n, None, self._from_prior(key, n, temperature, drawn))
        return jnp.concatenate(drawn, axis=-1)


def _offsets(sizes: Sequence[int]) -> list[int]:
    """Where each group after the first starts in the flat latent."""
    return [sum(sizes[:i]) for i in range(1, len(sizes))]


def build(config, likelihood: Likelihood, image_shape: tuple[int, int, int], n_conditions: int = 0) -> HVAE:
    """--model hvae (families.Builder): --groups groups of --latent-dim channels (0: default_groups)
    over len(--channels) stride-2 stages of the given widths (finest first), --depth blocks each."""
    return build_hvae(
        likelihood,
        image_shape,
        config.latent_dim,
        config.channels,
        config.depth,
        config.groups,
        jnp.dtype(config.dtype),
    )


def build_hvae(
    likelihood: Likelihood,
    image_shape: tuple[int, int, int],
    latent: int,
    channels: Sequence[int],
    depth: int,
    n_groups: int,
    dtype: Any = jnp.float32,
) -> HVAE:
    """An HVAE with `n_groups` groups of `latent` channels (0: default_groups) over len(channels)
    stride-2 stages of the given widths (finest first) for images of `image_shape` (H, W, C)."""
    check_stages("hvae", image_shape, channels)
    n_stages = len(channels)
    per_stage = groups_per_stage(n_groups or default_groups(image_shape, n_stages), n_stages)
    height, width, _ = image_shape
    shapes = []
    for s, count in enumerate(per_stage):
        scale = 2 ** (n_stages - s)
        shapes += [(height // scale, width // scale, latent)] * count
    out_shape = (*image_shape, likelihood.n_params)
    top_down = TopDown(tuple(channels), depth, per_stage, latent, out_shape, dtype)
    return HVAE(BottomUp(tuple(channels), depth, dtype), top_down, likelihood, tuple(image_shape), tuple(shapes))
