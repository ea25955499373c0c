"""Structural similarity (Wang et al. 2004) and its multi-scale form (MS-SSIM, Wang et al. 2003) of
images in [0, 1], written once in JAX:

    SSIM = l * cs,  l = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1),  cs = (2 s_xy + C2) / (s_x^2 + s_y^2 + C2),

the local means and (co)variances under an 11-tap Gaussian window of sigma 1.5 (the images' edges
reflected, as scipy's and scikit-image's filters do), C1 = 0.01^2, C2 = 0.03^2. MS-SSIM multiplies
the mean cs of each scale, halved by 2x2 averages, and the mean l of the coarsest, each to Wang's
weight, with as many of the five scales as keep the image at least 7 pixels wide (their weights
rescaled to sum to one), and each scale's mean term clipped below at 1e-6 (TensorFlow's
ssim_multiscale clips at 0, where the power's gradient is infinite).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

WINDOW, SIGMA, C1, C2 = 11, 1.5, 0.01**2, 0.03**2
WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # finest scale first
SMALLEST = 7
FLOOR = 1e-6  # the least a scale's mean term counts for (TensorFlow clips at 0)


def _window() -> np.ndarray:
    taps = np.exp(-((np.arange(WINDOW) - WINDOW // 2) ** 2) / (2 * SIGMA**2))
    return (taps / taps.sum()).astype(np.float32)


def _reflected(i: int, n: int) -> int:
    """Index i of a row of n reflected at its edges as numpy's 'symmetric' padding (edge repeated)."""
    while not 0 <= i < n:
        i = -i - 1 if i < 0 else 2 * n - i - 1
    return i


def blur_matrix(n: int) -> np.ndarray:
    """The Gaussian window along an axis with its edges reflected, as a matrix.

    Args:
        n: pixels along the axis.

    Returns:
        (n, n), row i the weights of output pixel i over the input's pixels.
    """
    m, taps = np.zeros((n, n), np.float32), _window()
    for i in range(n):
        for t, weight in enumerate(taps):
            m[i, _reflected(i + t - WINDOW // 2, n)] += weight
    return m


def _blur(x: jax.Array) -> jax.Array:
    """The Gaussian-weighted local mean of x: (B, H, W, C), separably, edges reflected -> (B, H, W, C);
    two small matrix products (one per axis)."""
    rows, cols = blur_matrix(x.shape[1]), blur_matrix(x.shape[2])
    return jnp.einsum("ih,bhwc,jw->bijc", rows, x, cols)


def ssim_maps(x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """SSIM's luminance and contrast-structure maps.

    Args:
        x: images (B, H, W, C) in [0, 1].
        y: images (B, H, W, C) in [0, 1].

    Returns:
        (l, cs), each (B, H, W, C).
    """
    mu_x, mu_y = _blur(x), _blur(y)
    var_x = _blur(x * x) - mu_x**2
    var_y = _blur(y * y) - mu_y**2
    cov = _blur(x * y) - mu_x * mu_y
    luminance = (2 * mu_x * mu_y + C1) / (mu_x**2 + mu_y**2 + C1)
    return luminance, (2 * cov + C2) / (var_x + var_y + C2)


def scales(height: int, width: int) -> int:
    """How many scales MS-SSIM uses for images of this size.

    Args:
        height: the images' height.
        width: their width.

    Returns:
        1 to 5.
    """
    n, side = 1, min(height, width)
    while n < len(WEIGHTS) and side // 2 >= SMALLEST:
        n, side = n + 1, side // 2
    return n


def _halve(x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def ms_ssim(x: jax.Array, y: jax.Array) -> jax.Array:
    """MS-SSIM of each pair of images, 1 for equal images.

    Args:
        x: images (B, H, W, C) in [0, 1].
        y: images (B, H, W, C) in [0, 1].

    Returns:
        (B,).
    """
    n = scales(x.shape[1], x.shape[2])
    weights = np.asarray(WEIGHTS[:n]) / np.sum(WEIGHTS[:n])
    result = jnp.ones(x.shape[0])
    for level in range(n):
        luminance, contrast = ssim_maps(x, y)
        term = contrast if level < n - 1 else luminance * contrast
        # clipped below at FLOOR, not 0: the power's gradient at 0 is infinite
        result = result * jnp.maximum(jnp.mean(term, axis=(1, 2, 3)), FLOOR) ** weights[level]
        if level < n - 1:
            x, y = _halve(x), _halve(y)
    return result
