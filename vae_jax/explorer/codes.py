"""What the explorer shows of a model whose z is discrete (a grid of codes: --model vqvae): the codes
an image uses and its reconstruction from them, how the test images use the codebook, samples from
the uniform prior it trained with or from a prior over codes fitted beside its checkpoint
(`sample.py --sampler pixelcnn`), and why the panels of a continuous z are not shown."""

from __future__ import annotations

import logging
import os

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax import codebook, compiling, fitted, samplers
from vae_jax.api import Model
from vae_jax.errors import UserError
from vae_jax.visualize import grid, to_u8

log = logging.getLogger("vae_jax")

NOT_SHOWN = {
    "map": "no map: a discrete z has no posterior mean to place on one; each image is a grid of codes "
    "(see 'The codes')",
    "sliders": "no sliders: a code is one of the codebook's vectors, not a point on a scale to slide along",
    "interpolation": "no interpolation: a point between two grids of codes is no grid of codes, and the decoder "
    "was only ever shown grids of codes",
}


class Codes:
    """A discrete model's jitted quantiser and decoder of codes, the test images' use of its codebook,
    and the prior over codes fitted beside its checkpoint (None when there is none)."""

    def __init__(self, model: Model):
        vae = model.vae
        self.model = model
        self._decode = compiling.jit(lambda p, codes: jnp.clip(vae.decode_top(p, vae.embed(p, codes)), 0, 1))
        self.grid: tuple[int, int] = tuple(vae.group_shapes[0][:-1])
        self.usage: dict | None = None  # codebook.usage of the test images
        self.fitted: fitted.Fitted | None = None

    def of(self, x: jax.Array) -> tuple[np.ndarray, np.ndarray]:
        """An image's codes and the decoder's mean at them.

        Args:
            x: one image (1, H, W, C), as the model reads it.

        Returns:
            codes (h, w) int, and the reconstruction, uint8 (H, W, C).
        """
        codes = codebook.codes_of(self.model.vae, self.model.params, x)
        decoded = self._decode(self.model.params, jnp.asarray(codes).reshape(1, -1))
        return codes[0], to_u8(decoded)[0]

    def measure(self, inputs: np.ndarray) -> None:
        """How the test images (N, H, W, C), as the model reads them, use the codebook (`usage`)."""
        codes = codebook.codes_of(self.model.vae, self.model.params, inputs)
        self.usage = codebook.usage(codes, self.model.vae.codebook_size)

    def read_prior(self, folder: str) -> None:
        """The PixelCNN over codes that `sample.py --sampler pixelcnn` stored in `folder` for this step,
        as it was fitted; none there (or one that is not this model's, said in one line): none."""
        path = fitted.path_of(folder, self.model, "pixelcnn")
        if not os.path.exists(path):
            return
        try:
            self.fitted = fitted.read(path, self.model, "pixelcnn", as_stored=True)
        except fitted.Unusable as e:
            log.warning("explorer: %s %s: samples from the uniform prior only", path, e)

    def samplers(self) -> list[dict[str, str]]:
        """The priors the samples panel offers: [{'name', 'label', 'text'}], the uniform one first."""
        uniform = [
            {
                "name": "prior",
                "label": "uniform",
                "text": "from the uniform prior over the codes (what the model trained with)",
            }
        ]
        if self.fitted is None:
            return uniform
        spec = samplers.chosen("pixelcnn")
        described, stored = spec.describe(self.fitted.options), os.path.basename(self.fitted.path)
        text = f"from {described}, fitted to the training codes ({stored})"
        return uniform + [{"name": "pixelcnn", "label": "PixelCNN", "text": text}]

    def samples(self, sampler: str, seed: int, n: int = 16) -> np.ndarray:
        """A grid of n samples: uniform codes ('prior') or the fitted prior's ('pixelcnn'), decoded: uint8."""
        key = jax.random.key(seed)
        if sampler == "prior":
            images = self.model.sample(key, n)
        elif sampler == "pixelcnn" and self.fitted is not None:
            images = self.fitted.sample(self.model, key, n)
        else:
            offered = ", ".join(s["name"] for s in self.samplers())
            raise UserError(f"no sampler {sampler!r} for this model: {offered}")
        return grid(np.asarray(images), int(np.ceil(np.sqrt(n))))
