"""A VAE = encoder network + decoder network + likelihood head, used through pure functions of params.

A conditional VAE also passes a condition c: (B, n_conditions) one-hot labels to both networks,
and by default has a learned Gaussian prior per class, p(z|y) = N(mean_y, diag exp(log_var_y))
(the conditional prior of Sohn et al. 2015, one Gaussian per class; Doersch's §4 CVAE keeps
N(0, I)): with N(0, I), z learns the class from x before the decoder learns to read it from y,
and a sample drawn for label y shows whatever class its z falls on (measured: 31% of samples
of the class asked for on the MNIST sample, 61% with the class prior at the same budget).
"""

from __future__ import annotations

from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae_jax.distributions import Likelihood, gaussian_log_prob, kl_gaussians, kl_standard_normal, reparameterize
from vae_jax.families.iaf import IAF
from vae_jax.families.networks import CONV_MODELS, make_networks
from vae_jax.latent import Draw, Params, temperatures
from vae_jax.priors import Mixture, MixtureOfGaussians, VampPrior, mixture_log_prob, mixture_moments, mixture_sample

# Params: {'encoder': pytree, 'decoder': pytree[, 'prior': {'mean', 'log_var'}: (n_conditions, latent_dim)
#          or a mixture prior's own (priors.py)][, 'flow': an IAF's steps]}


@dataclass(frozen=True, eq=False)
class VAE:
    """Static description of a model; parameters live outside, in a plain pytree."""

    encoder: nn.Module
    decoder: nn.Module
    likelihood: Likelihood
    latent_dim: int
    image_shape: tuple[int, int, int]
    n_conditions: int = 0  # 0: unconditional; else the number of classes of a conditional VAE
    class_prior: bool = False  # a conditional VAE's p(z|y) is learned, one Gaussian per class; else N(0, I)
    convolutional: bool = False  # its networks are convolutions
    mixture: Mixture | None = None  # p(z) is this mixture of Gaussians instead of N(0, I)
    flow: IAF | None = None  # q(z|x) is the encoder's Gaussian carried through this flow
    discrete = False  # z is continuous

    @property
    def kl_analytic(self) -> bool:
        """KL(q || p) per unit in closed form: both Gaussian; else the ELBO uses log q(z|x) - log p(z)."""
        return self.mixture is None and self.flow is None

    @property
    def description(self) -> dict[str, str]:
        prior = "N(mean_y, diag var_y), learned per class" if self.class_prior else "N(0, I)"
        posterior = self.flow.text if self.flow else "diagonal Gaussian"
        kl = "closed form" if self.kl_analytic else "estimated: log q(z|x) - log p(z) of the drawn z"
        return {"prior": self.mixture.text if self.mixture else prior, "posterior": posterior, "kl": kl}

    def condition(self, labels: jax.Array | None) -> jax.Array | None:
        """One-hot conditions (B, n_conditions) for int labels (B,), or None for an unconditional VAE."""
        if not self.n_conditions:
            return None
        if labels is None:
            raise ValueError("a conditional VAE needs labels")
        return jax.nn.one_hot(labels, self.n_conditions, dtype=jnp.float32)

    def init(self, key: jax.Array) -> Params:
        """Fresh parameters drawn from `key`."""
        k_enc, k_dec = jax.random.split(key)
        x = jnp.zeros((1, *self.image_shape), jnp.float32)
        z = jnp.zeros((1, self.latent_dim), jnp.float32)
        c = jnp.zeros((1, self.n_conditions), jnp.float32) if self.n_conditions else None
        params = {
            "encoder": self.encoder.init(k_enc, x, c)["params"],
            "decoder": self.decoder.init(k_dec, z, c)["params"],
        }
        if self.mixture:
            params["prior"] = self.mixture.init(jax.random.fold_in(key, 1), self.latent_dim, self.image_shape)
        if self.flow:
            params["flow"] = self.flow.init(jax.random.fold_in(key, 2))
        if self.class_prior:  # starts as N(0, I) for every class
            zeros = jnp.zeros((self.n_conditions, self.latent_dim), jnp.float32)
            params["prior"] = {"mean": zeros, "log_var": zeros}
        return params

    def prior(self, params: Params, c: jax.Array | None = None) -> tuple[jax.Array | float, jax.Array | float]:
        """(mean, log_var) of the prior: of p(z | c), each (B, latent_dim), with a class prior (c: (B,
        n_conditions) one-hot), else (0.0, 0.0): N(0, I)."""
        if not self.class_prior:
            return 0.0, 0.0
        return c @ params["prior"]["mean"], c @ params["prior"]["log_var"]

    def components(self, params: Params):
        """A mixture prior's (means (K, D), log_vars (K, D), log_weights (K,)); a VampPrior's are the
        encoder's Gaussians at its pseudo-inputs (before any flow)."""
        return self.mixture.components(params["prior"], lambda u: self.gaussian(params, u)[:2])

    def log_prior(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """log p(z) (or log p(z | c) for a class prior) of z (n, latent_dim) -> (n,)."""
        if self.mixture:
            return mixture_log_prob(z, self.components(params))
        p_mean, p_log_var = self.prior(params, c)
        return jnp.sum(gaussian_log_prob(z, p_mean, p_log_var), axis=-1)

    def standard(self, params: Params, c: jax.Array | None = None) -> tuple[jax.Array | float, jax.Array | float]:
        """The prior's mean and log-variance per unit (a mixture's moments)."""
        return mixture_moments(self.components(params)) if self.mixture else self.prior(params, c)

    def to_standard(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """z (B, latent_dim) in the prior's standard deviations from its mean: (z - mean) / std (of a
        mixture: its mean and standard deviation per unit)."""
        if not (self.class_prior or self.mixture):
            return z
        mean, log_var = self.standard(params, c)
        return (z - mean) * jnp.exp(-0.5 * log_var)

    def from_standard(self, params: Params, u: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """The inverse of to_standard: mean + std * u, (B, latent_dim)."""
        if not (self.class_prior or self.mixture):
            return u
        mean, log_var = self.standard(params, c)
        return mean + jnp.exp(0.5 * log_var) * u

    def gaussian(self, params: Params, x: jax.Array, c: jax.Array | None = None):
        """The encoder's Gaussian and flow context: x (B, H, W, C) -> (mean, log_var (B, latent_dim),
        context (B, flow.context) or None)."""
        out = self.encoder.apply({"params": params["encoder"]}, x, c).astype(jnp.float32)
        if not self.flow:
            mean, log_var = jnp.split(out, 2, axis=-1)
            return mean, log_var, None
        d = self.latent_dim
        return out[:, :d], out[:, d : 2 * d], out[:, 2 * d :]

    def encode(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """q(z|x[, c]) along its mean path: x (B, H, W, C) in [0, 1] -> (mean, log_var), each
        (B, latent_dim). With a flow: the Gaussian's mean carried through it, and a log-variance from
        the diagonal of the flow's Jacobian there (a linearisation)."""
        mean, log_var, context = self.gaussian(params, x, c)
        if not self.flow:
            return mean, log_var
        z, log_s = self.flow(params["flow"], mean, context)
        return z, log_var + 2.0 * log_s

    def decode(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """p(x|z[, c]) parameters: z (B, latent_dim) -> raw output (B, H, W, C, P) for the likelihood,
        float32 whatever the networks compute in (log-likelihoods are always summed in float32)."""
        return self.decoder.apply({"params": params["decoder"]}, z, c).astype(jnp.float32)

    def decode_mean(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """Mean of p(x|z[, c]): z (B, latent_dim) -> (B, H, W, C)."""
        return self.likelihood.mean(self.decode(params, z, c))

    def mean_shift(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """(E_q[z] - E_p[z]) / std_p[z] (with N(0, I): the posterior mean): x (B, H, W, C) -> (B, latent_dim)."""
        return self.to_standard(params, self.encode(params, x, c)[0], c)

    def decode_top(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """decode_mean: the top latent group is the whole latent."""
        return self.decode_mean(params, z, c)

    @property
    def groups(self) -> tuple[int, ...]:
        """Sizes of the latent groups: one group of latent_dim units."""
        return (self.latent_dim,)

    @property
    def group_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.latent_dim,),)

    def posterior(self, params: Params, x: jax.Array, key: jax.Array, n: int, c: jax.Array | None = None) -> Draw:
        """n draws z ~ q(z|x[, c]) for ONE example x: (H, W, C); the encoder runs once."""
        cs = None if c is None else c[None]
        mean, log_var, context = self.gaussian(params, x[None], cs)
        shape = (n, self.latent_dim)
        z = reparameterize(key, jnp.broadcast_to(mean, shape), jnp.broadcast_to(log_var, shape))
        log_q = jnp.sum(gaussian_log_prob(z, mean, log_var), axis=-1)
        if self.flow:
            z, log_s = self.flow(params["flow"], z, jnp.broadcast_to(context, (n, context.shape[-1])))
            log_q = log_q - jnp.sum(log_s, axis=-1)
        log_p = self.log_prior(params, z, cs)
        kl = None
        if self.kl_analytic:
            p_mean, p_log_var = self.prior(params, cs)
            kl = (
                kl_gaussians(mean, log_var, p_mean, p_log_var)
                if self.class_prior
                else kl_standard_normal(mean, log_var)
            )
            kl = jnp.broadcast_to(kl.astype(jnp.float32), z.shape)
        out = self.decode(params, z, None if c is None else jnp.broadcast_to(c, (n, *c.shape)))
        return Draw(out, kl, log_q, log_p, z)

    def generate(
        self, params: Params, key: jax.Array, n: int, c: jax.Array | None = None, temperature: float = 1.0
    ) -> jax.Array:
        """Raw decoder output (n, H, W, C, P) of n draws z from the prior, its standard deviation times
        `temperature`; c: (n, n_conditions)."""
        return self.decode(params, self.sample_prior(params, key, n, c, temperature), c)

    def sample_prior(
        self, params: Params, key: jax.Array, n: int, c: jax.Array | None = None, temperature: float = 1.0
    ) -> jax.Array:
        """n draws z ~ p(z[|c]) (n, latent_dim), its standard deviation times `temperature`."""
        (t,) = temperatures(temperature, 1)
        if self.mixture:  # a component, then its Gaussian with its standard deviation times t
            return mixture_sample(key, self.components(params), n, t)
        return self.from_standard(params, t * jax.random.normal(key, (n, self.latent_dim)), c)


def build(config, likelihood: Likelihood, image_shape: tuple[int, int, int], n_conditions: int) -> VAE:
    """The one-latent VAE that `config` describes (families.Builder): --model mlp (dense layers of
    --hidden widths), conv (stride-2 convolutions of --channels widths, sub-pixel up-sampling) or
    resnet (--depth residual blocks per stage); --prior vamp or mog, --flow iaf."""
    flow = IAF(config.latent_dim, config.flow_steps, config.flow_hidden) if config.flow == "iaf" else None
    mixture = {"vamp": VampPrior(config.pseudo_inputs), "mog": MixtureOfGaussians(config.components)}.get(config.prior)
    encoder, decoder = make_networks(
        config.model,
        image_shape,
        config.latent_dim,
        likelihood.n_params,
        config.hidden,
        config.channels,
        config.depth,
        jnp.dtype(config.dtype),
        flow.context if flow else 0,
    )
    class_prior = bool(n_conditions) and config.prior in ("auto", "class")
    convolutional = config.model in CONV_MODELS
    return VAE(
        encoder,
        decoder,
        likelihood,
        config.latent_dim,
        image_shape,
        n_conditions,
        class_prior,
        convolutional,
        mixture,
        flow,
    )
