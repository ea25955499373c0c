"""A PyTorch copy of vae_jax's VQ-VAE networks (vae_jax.families.vqvae), for pythae's VQVAE in
benchmarks/pythae_side_by_side.py: the same layers, strides, paddings and widths, so that the two
libraries train the same networks. NCHW, as pythae wants: the encoder's `embedding` is
(B, D, h, w), the decoder reads (B, D, h, w) and gives the pixels' means (B, C, H, W)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from torch import nn


class ResBlock(nn.Module):
    """h + conv3x3(relu(conv3x3(relu(h)))), vae_jax.families.networks.ResBlock."""

    def __init__(self, width: int):
        super().__init__()
        self.first, self.second = nn.Conv2d(width, width, 3, padding=1), nn.Conv2d(width, width, 3, padding=1)

    def forward(self, h):
        return h + self.second(F.relu(self.first(F.relu(h))))


class SubpixelUpsample(nn.Module):
    """A 2x2 convolution (padded after, as XLA's SAME pads it) to 4 * width channels, each group of 4 a
    2x2 block of output pixels: (B, C, H, W) -> (B, width, 2H, 2W)."""

    def __init__(self, width_in: int, width: int):
        super().__init__()
        self.width, self.conv = width, nn.Conv2d(width_in, 4 * width, 2)

    def forward(self, h):
        b, _, height, w = h.shape
        out = self.conv(F.pad(h, (0, 1, 0, 1)))
        out = out.view(b, 2, 2, self.width, height, w).permute(0, 3, 4, 1, 5, 2)
        return out.reshape(b, self.width, 2 * height, 2 * w)


class Encoder(BaseEncoder):
    def __init__(self, channels: tuple[int, ...], depth: int, code_dim: int, in_channels: int = 1):
        super().__init__()
        widths = (in_channels, *channels)
        self.stages = nn.ModuleList(nn.Conv2d(a, b, 4, stride=2, padding=1) for a, b in zip(widths, widths[1:]))
        self.blocks = nn.Sequential(*(ResBlock(channels[-1]) for _ in range(depth)))
        self.out = nn.Conv2d(channels[-1], code_dim, 1)

    def forward(self, x):
        h = x
        for i, stage in enumerate(self.stages):
            h = stage(h)
            h = F.relu(h) if i + 1 < len(self.stages) else h
        return ModelOutput(embedding=self.out(F.relu(self.blocks(h))))


class Decoder(BaseDecoder):
    def __init__(self, channels: tuple[int, ...], depth: int, code_dim: int, out_channels: int = 1):
        super().__init__()
        self.first = nn.Conv2d(code_dim, channels[-1], 3, padding=1)
        self.blocks = nn.Sequential(*(ResBlock(channels[-1]) for _ in range(depth)))
        widths = (*reversed(channels), out_channels)
        self.ups = nn.ModuleList(SubpixelUpsample(a, b) for a, b in zip(widths, widths[1:]))

    def forward(self, z):
        h = self.blocks(self.first(z))
        for up in self.ups:
            h = up(F.relu(h))
        return ModelOutput(reconstruction=h)


def uniform_codes(model, n: int, grid: tuple[int, int]) -> torch.Tensor:
    """The means of n images decoded from codes drawn uniformly: the prior pythae's VQVAE trains with."""
    codes = torch.randint(model.quantizer.num_embeddings, (n, *grid))
    vectors = model.quantizer.embeddings.weight[codes]  # (n, h, w, D)
    return model.decoder(vectors.permute(0, 3, 1, 2)).reconstruction
