"""--model vqvae: the vector-quantised VAE (van den Oord et al. 2017, "Neural Discrete Representation
Learning", arXiv:1711.00937). The encoder maps an image to an h x w grid of vectors z_e of
--latent-dim units (h, w: the image's sides halved once per --channels stage); each is replaced by
its nearest of the K = --codebook-size code vectors e_1..e_K, and the decoder reads that grid z_q.
q(z|x) is one-hot (the nearest code at each position) and, while the VQ-VAE trains, p(z) is uniform
over the codes, so the KL is log K per position, a constant (the paper's §3.1). The gradient of the
reconstruction reaches the encoder straight through the quantisation (z_e + sg[z_q - z_e]); how the
codebook learns is the objective's (vae_jax.objectives.vqvae).

The latent z, flat as everywhere (latent.py), is the grid of code vectors: (B, h * w * D). Beside
the contract, a discrete family gives `quantize`, `embed`, `codebook` and `with_codebook`.
Networks (the paper's, with our stages): per --channels entry a stride-2 4x4 convolution, then
--depth residual blocks and a 1x1 convolution to D; the decoder mirrors them with sub-pixel
up-sampling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae_jax.distributions import Likelihood
from vae_jax.families.networks import ResBlock, check_stages, subpixel_upsample
from vae_jax.latent import Draw, Params, continuous_only, temperatures


class VQEncoder(nn.Module):
    """x (B, H, W, C) -> z_e (B, H / 2^L, W / 2^L, D), L = len(channels)."""

    channels: Sequence[int]
    depth: int
    code_dim: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = x
        for i, width in enumerate(self.channels):
            h = nn.Conv(width, (4, 4), strides=(2, 2), padding="SAME", dtype=self.dtype)(h)
            h = nn.relu(h) if i + 1 < len(self.channels) else h
        for _ in range(self.depth):
            h = ResBlock(self.channels[-1], self.dtype)(h)
        return nn.Conv(self.code_dim, (1, 1), dtype=self.dtype)(nn.relu(h))


class VQDecoder(nn.Module):
    """z_q (B, h, w, D) -> the raw output (B, H, W, C, P) the likelihood reads."""

    channels: Sequence[int]
    depth: int
    out_shape: tuple[int, int, int, int]  # (H, W, C, P)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        _, _, c_out, p = self.out_shape
        h = nn.Conv(self.channels[-1], (3, 3), padding="SAME", dtype=self.dtype)(z)
        for _ in range(self.depth):
            h = ResBlock(self.channels[-1], self.dtype)(h)
        for width in reversed(self.channels[:-1]):
            h = subpixel_upsample(nn.relu(h), width, self.dtype)
        h = subpixel_upsample(nn.relu(h), c_out * p, self.dtype)
        return h.reshape(z.shape[0], *self.out_shape)


class Quantized(NamedTuple):
    """An encoder's output and its quantisation, each flat over the grid."""

    z_e: jax.Array  # (B, latent_dim) the encoder's vectors
    z_q: jax.Array  # (B, latent_dim) the nearest code vector at each position (differentiable in the codebook)
    codes: jax.Array  # (B, h * w) int32, the index of each position's code


def nearest(vectors: jax.Array, codebook: jax.Array) -> jax.Array:
    """The index of the code vector nearest each vector (squared Euclidean distance; ties: the first).

    Args:
        vectors: (..., D).
        codebook: (K, D).

    Returns:
        (...,) int32 indices in 0..K-1.
    """
    distances = (
        jnp.sum(vectors**2, -1, keepdims=True) - 2.0 * vectors @ codebook.T + jnp.sum(codebook**2, -1)
    )  # (..., K)
    return jnp.argmin(distances, axis=-1).astype(jnp.int32)


@dataclass(frozen=True, eq=False)
class VQVAE:
    """Static description of a VQ-VAE; parameters {'encoder', 'decoder', 'codebook': (K, D)} live outside."""

    encoder: nn.Module  # x (B, H, W, C) -> z_e (B, h, w, D)
    decoder: nn.Module  # z_q (B, h, w, D) -> the raw output (B, H, W, C, P) the likelihood reads
    likelihood: Likelihood  # p(x|z)
    codebook_size: int  # K
    code_dim: int  # D
    grid: tuple[int, int]  # (h, w) code positions
    image_shape: tuple[int, int, int]  # (H, W, C)
    n_conditions = 0
    kl_analytic = True  # log K per position
    discrete = True
    convolutional = True

    @property
    def positions(self) -> int:
        return math.prod(self.grid)

    @property
    def latent_dim(self) -> int:
        return self.positions * self.code_dim

    @property
    def groups(self) -> tuple[int, ...]:
        return (self.latent_dim,)

    @property
    def group_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((*self.grid, self.code_dim),)

    @property
    def description(self) -> dict[str, str]:
        h, w = self.grid
        return {
            "prior": f"uniform over the {self.codebook_size} codes at each of the {h}x{w} positions",
            "posterior": "one-hot: the nearest code vector at each position (vector quantisation)",
            "kl": f"closed form: log {self.codebook_size} nats per position",
        }

    def condition(self, labels: jax.Array | None) -> None:
        """None: a VQ-VAE is unconditional."""
        return None

    def init(self, key: jax.Array) -> Params:
        """Fresh parameters; the codebook uniform in +-sqrt(3 / D) (the official code's variance scaling)."""
        k_enc, k_dec, k_code = jax.random.split(key, 3)
        x = jnp.zeros((1, *self.image_shape), jnp.float32)
        z = jnp.zeros((1, *self.grid, self.code_dim), jnp.float32)
        limit = math.sqrt(3.0 / self.code_dim)
        return {
            "encoder": self.encoder.init(k_enc, x)["params"],
            "decoder": self.decoder.init(k_dec, z)["params"],
            "codebook": jax.random.uniform(k_code, (self.codebook_size, self.code_dim), jnp.float32, -limit, limit),
        }

    def codebook(self, params: Params) -> jax.Array:
        """The code vectors (K, D)."""
        return params["codebook"]

    def with_codebook(self, params: Params, codebook: jax.Array) -> Params:
        """`params` with the code vectors (K, D) replaced."""
        return {**params, "codebook": codebook}

    def quantize(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> Quantized:
        """x (B, H, W, C) in [0, 1] -> its encoder's vectors, their nearest codes and the codes' indices."""
        z_e = self.encoder.apply({"params": params["encoder"]}, x).astype(jnp.float32)
        z_e = z_e.reshape(x.shape[0], self.positions, self.code_dim)
        codes = nearest(jax.lax.stop_gradient(z_e), params["codebook"])
        z_q = params["codebook"][codes]
        flat = (x.shape[0], self.latent_dim)
        return Quantized(z_e.reshape(flat), z_q.reshape(flat), codes)

    def embed(self, params: Params, codes: jax.Array) -> jax.Array:
        """Code indices (B, h * w) -> z, their code vectors, flat (B, latent_dim)."""
        return params["codebook"][codes].reshape(codes.shape[0], self.latent_dim)

    def encode(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """q(z|x) is a point mass: (z_q, -inf), each (B, latent_dim)."""
        z_q = self.quantize(params, x).z_q
        return z_q, jnp.full_like(z_q, -jnp.inf)

    def decode(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """z (B, latent_dim) -> raw output (B, H, W, C, P), float32."""
        grid = z.reshape(z.shape[0], *self.grid, self.code_dim)
        return self.decoder.apply({"params": params["decoder"]}, grid).astype(jnp.float32)

    def decode_mean(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """Mean of p(x|z): (B, H, W, C)."""
        return self.likelihood.mean(self.decode(params, z))

    def decode_top(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """decode_mean: one latent group."""
        return self.decode_mean(params, z)

    def posterior(self, params: Params, x: jax.Array, key: jax.Array, n: int, c: jax.Array | None = None) -> Draw:
        """The one z of q(z|x) for ONE example x (H, W, C), n times: z = z_e + sg[z_q - z_e] (its value z_q,
        its gradient the encoder's), log q = 0, log p = -h w log K, KL (n, 1) = h w log K."""
        z_e, z_q, _ = self.quantize(params, x[None])
        z = jnp.broadcast_to(z_e + jax.lax.stop_gradient(z_q - z_e), (n, self.latent_dim))
        kl = jnp.full((n, 1), self.positions * math.log(self.codebook_size), jnp.float32)
        return Draw(self.decode(params, z), kl, jnp.zeros(n), -kl[:, 0], z)

    def log_prior(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """log p(z) of z (B, latent_dim) on the code grid (its vectors codes): -h w log K each, (B,)."""
        return jnp.full(z.shape[0], -self.positions * math.log(self.codebook_size), jnp.float32)

    def _moments(self, params: Params) -> tuple[jax.Array, jax.Array]:
        """The mean and standard deviation per unit (D,) of z under the uniform prior (over the codebook)."""
        codebook = params["codebook"]
        return codebook.mean(0), jnp.maximum(codebook.std(0), 1e-12)

    def to_standard(self, params: Params, z: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """z (B, latent_dim) less the prior's mean in its standard deviations, per unit of each position."""
        mean, std = self._moments(params)
        return ((z.reshape(z.shape[0], -1, self.code_dim) - mean) / std).reshape(z.shape)

    def from_standard(self, params: Params, u: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """The inverse of to_standard."""
        mean, std = self._moments(params)
        return (u.reshape(u.shape[0], -1, self.code_dim) * std + mean).reshape(u.shape)

    def mean_shift(self, params: Params, x: jax.Array, c: jax.Array | None = None) -> jax.Array:
        """The chosen code vectors in the prior's standard deviations, (B, latent_dim): what active units count."""
        return self.to_standard(params, self.quantize(params, x).z_q)

    def sample_prior(
        self, params: Params, key: jax.Array, n: int, c: jax.Array | None = None, temperature: Any = 1.0
    ) -> jax.Array:
        """n code grids drawn uniformly, as z (n, latent_dim); a temperature other than 1 is refused."""
        if temperatures(temperature, 1) != (1.0,):
            continuous_only(self, "a temperature other than 1")
        return self.embed(params, jax.random.randint(key, (n, self.positions), 0, self.codebook_size))

    def generate(
        self, params: Params, key: jax.Array, n: int, c: jax.Array | None = None, temperature: Any = 1.0
    ) -> jax.Array:
        """Raw decoder output (n, H, W, C, P) of n code grids drawn from the prior."""
        return self.decode(params, self.sample_prior(params, key, n, c, temperature))


def build(config, likelihood: Likelihood, image_shape: tuple[int, int, int], n_conditions: int) -> VQVAE:
    """The VQ-VAE `config` describes (families.Builder): --channels stages, --depth residual blocks,
    --codebook-size codes of --latent-dim units."""
    channels, dtype = tuple(config.channels), jnp.dtype(config.dtype)
    check_stages("vqvae", image_shape, channels)
    scale = 2 ** len(channels)
    grid = (image_shape[0] // scale, image_shape[1] // scale)
    encoder = VQEncoder(channels, config.depth, config.latent_dim, dtype)
    decoder = VQDecoder(channels, config.depth, (*image_shape, likelihood.n_params), dtype)
    return VQVAE(encoder, decoder, likelihood, config.codebook_size, config.latent_dim, grid, tuple(image_shape))
