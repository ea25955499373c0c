"""--sampler pixelcnn: a gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with
PixelCNN Decoders", arXiv:1606.05328) fitted to a discrete model's training codes: the
autoregressive prior over the h x w grid of codes that the VQ-VAE paper trains after its model
(van den Oord et al. 2017, §3.2), in raster order,

    p(c) = prod_{i, j} p(c_ij | the codes of the rows above, and left of j in row i),

each factor a softmax over the K codes. The network: codes embedded, then `layers` gated blocks of a
vertical stack (the rows above) and a horizontal stack (the row to the left), each
tanh(a) * sigmoid(b); the first block masked so a position does not see itself (mask A, a 7x7
kernel), the others 3x3 with residual horizontal stacks; then ReLU, a 1x1 convolution, ReLU and a
1x1 convolution to K logits. The VQ-VAE paper gives no sizes for it and its code is not public; the
defaults are pythae's PixelCNN sampler's depth (10 layers, 64 channels), whose layers are plain
masked convolutions, not gated ones. Fitted by Adam (3e-4) on minibatches of 64 grids by maximum
likelihood.

It reads codes (N, h, w) int, not continuous latents: a continuous model's z has no grid of
categorical values to model (pythae's PixelCNN sampler is for its VQ-VAE only, too).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vae_jax.samplers.adam import flatten, minimise, unflatten

LEARNING_RATE = 3e-4


class GatedBlock(nn.Module):
    """One gated block: (vertical, horizontal) features (B, h, w, C) each -> the same."""

    width: int
    kernel: int
    first: bool  # mask A: a position sees neither its own row (vertical) nor itself (horizontal)

    @nn.compact
    def __call__(self, v: jax.Array, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        k, half = self.kernel, self.kernel // 2
        row_mask = jnp.ones((half + 1, k, 1, 1)).at[-1].set(0.0 if self.first else 1.0)
        col_mask = jnp.ones((1, half + 1, 1, 1)).at[:, -1].set(0.0 if self.first else 1.0)
        vertical = _MaskedConv(2 * self.width, (half + 1, k), ((half, 0), (half, half)), row_mask)(v)
        horizontal = _MaskedConv(2 * self.width, (1, half + 1), ((0, 0), (half, 0)), col_mask)(h)
        out_v = _gate(vertical)
        out = _gate(horizontal + nn.Conv(2 * self.width, (1, 1))(vertical))
        out_h = nn.Conv(self.width, (1, 1))(out)
        return out_v, out_h if self.first else out_h + h


class _MaskedConv(nn.Module):
    """A convolution whose kernel is multiplied by `mask` (kh, kw, 1, 1), padded as `padding` says."""

    features: int
    kernel_size: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]
    mask: jax.Array

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (*self.kernel_size, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        out = jax.lax.conv_general_dilated(
            x, kernel * self.mask, (1, 1), self.padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return out + bias


def _gate(a: jax.Array) -> jax.Array:
    first, second = jnp.split(a, 2, axis=-1)
    return jnp.tanh(first) * jax.nn.sigmoid(second)


class GatedPixelCNN(nn.Module):
    """Codes (B, h, w) int in 0..K-1 -> logits (B, h, w, K) of each code given those before it."""

    k: int
    width: int
    layers: int

    @nn.compact
    def __call__(self, codes: jax.Array) -> jax.Array:
        x = nn.Embed(self.k, self.width)(codes)
        v, h = x, x
        for i in range(self.layers):
            v, h = GatedBlock(self.width, 7 if i == 0 else 3, i == 0)(v, h)
        out = nn.relu(nn.Conv(self.width, (1, 1))(nn.relu(h)))
        return nn.Conv(self.k, (1, 1))(out)


def _network(state: dict) -> tuple[GatedPixelCNN, dict]:
    """The network and its parameters from a fitted state."""
    k, width, layers = (int(v) for v in np.asarray(state["shape"]))
    params = unflatten({name: a for name, a in state.items() if name not in ("shape", "grid")})
    return GatedPixelCNN(k, width, layers), params


def _log_prob(network: GatedPixelCNN, params: dict, codes: jax.Array) -> jax.Array:
    logits = network.apply({"params": params}, codes)
    picked = jnp.take_along_axis(jax.nn.log_softmax(logits), codes[..., None], axis=-1)
    return jnp.sum(picked, axis=(1, 2, 3))


def fit(codes: jax.Array, key: jax.Array, k: int, layers: int = 10, hidden: int = 64, epochs: int = 20):
    """Maximum likelihood by Adam on the training codes.

    Args:
        codes: the training codes (N, h, w) int.
        key: the PRNG key of the initial weights and the minibatches.
        k: the codebook's size K.
        layers: gated blocks.
        hidden: the width of each stack.
        epochs: passes over the codes.

    Returns:
        (its state: flat named arrays, with 'shape' (K, hidden, layers) and 'grid' (h, w); each epoch's
        mean log-likelihood per grid (epochs,)).
    """
    codes = jnp.asarray(codes, jnp.int32)
    network = GatedPixelCNN(k, hidden, layers)
    k_init, k_fit = jax.random.split(key)
    params = network.init(k_init, codes[:1])["params"]
    loss = lambda p, x, _: -jnp.mean(_log_prob(network, p, x))  # noqa: E731
    params, history = minimise(loss, params, codes, k_fit, epochs, LEARNING_RATE, convolutional=True)
    shape = {"shape": np.array([k, hidden, layers]), "grid": np.array(codes.shape[1:])}
    return flatten(params) | shape, history


def log_prob(state: dict, codes: jax.Array, **options) -> jax.Array:
    """log p(c) of each grid of codes (N, h, w) -> (N,), in nats, 256 grids at a time."""
    network, params = _network(state)
    run = jax.jit(lambda c: _log_prob(network, params, c))
    codes = jnp.asarray(codes, jnp.int32)
    return jnp.concatenate([run(codes[i : i + 256]) for i in range(0, len(codes), 256)])


def sample(state: dict, key: jax.Array, n: int, temperature: float = 1.0, **options) -> jax.Array:
    """n grids of codes (n, h, w) drawn one position at a time in raster order, each code from the
    softmax of its logits divided by `temperature` (0: the most likely code)."""
    network, params = _network(state)
    h, w = (int(v) for v in np.asarray(state["grid"]))

    def position(codes, i):
        logits = network.apply({"params": params}, codes)[:, i // w, i % w]
        if temperature > 0:
            drawn = jax.random.categorical(jax.random.fold_in(key, i), logits / temperature)
        else:
            drawn = jnp.argmax(logits, axis=-1)
        return codes.at[:, i // w, i % w].set(drawn.astype(jnp.int32)), None

    codes, _ = jax.jit(lambda c: jax.lax.scan(position, c, jnp.arange(h * w)))(jnp.zeros((n, h, w), jnp.int32))
    return codes
