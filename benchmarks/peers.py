"""Our training step against PyTorch (eager and torch.compile) on the same model, data and batch.

    python benchmarks/peers.py                    # mlp, conv and resnet, batch 128 (needs: pip install ".[torch]")
    python benchmarks/peers.py --models mlp --batches 128,1024

The models are built the same way in both: the 784-500-20 MLP VAE, the conv VAE (two stride-2
3x3 convolutions 32, 64; decoder: a dense layer to 7x7x64, then 2x sub-pixel up-sampling by a 2x2
convolution to 4x the channels, padded like XLA's SAME: one row and column after) and the resnet
VAE (--model resnet, depth 1: per stage a stride-2 3x3 convolution and a pre-activation residual
block of two 3x3 convolutions; decoder: a dense layer to 7x7x64, then per stage a residual block,
nearest-neighbour 2x up-sampling and a 3x3 convolution; a last 3x3 convolution to the logits), Bernoulli
likelihood with dynamic binarization, the one-sample ELBO, Adam at 1e-3, on the MNIST sample tiled
to --examples images, uint8 on the device. Ours runs as train.py runs it (training.Batches: the
same jitted calls per epoch). Each row is the fastest of --epochs timed epochs after one warm-up
epoch (which also compiles), all in one run.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np

from vae_jax import data, loop, parallel
from vae_jax.config import Config
from vae_jax.families import build
from vae_jax.training import prepare, run_keys


def ours(model: str, batch_size: int, images: np.ndarray, epochs: int) -> float:
    """Training examples/s of vae_jax's own loop."""
    config = Config(model=model, batch_size=batch_size)
    vae = build(config, images.shape[1:])
    state, batches = prepare(config, vae, images, np.zeros(len(images), np.int32), parallel.layout(), run_keys(0))
    state = jax.block_until_ready(loop.run_epoch(batches, state, 0)[0])  # compiles
    times = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        state = jax.block_until_ready(loop.run_epoch(batches, state, epoch)[0])
        times.append(time.perf_counter() - t0)
    return batches.steps_per_epoch * batch_size / min(times)


def torch_model(model: str):
    import torch
    from torch import nn

    class Residual(nn.Module):  # ResBlock: h + conv(relu(conv(relu(h))))
        def __init__(self, width: int):
            super().__init__()
            self.a, self.b = nn.Conv2d(width, width, 3, padding=1), nn.Conv2d(width, width, 3, padding=1)

        def forward(self, h):
            return h + self.b(torch.relu(self.a(torch.relu(h))))

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            if model == "mlp":
                self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 500), nn.ReLU(), nn.Linear(500, 40))
                self.decoder = nn.Sequential(nn.Linear(20, 500), nn.ReLU(), nn.Linear(500, 784))
            elif model == "resnet":
                self.encoder = nn.Sequential(
                    nn.Conv2d(1, 32, 3, stride=2, padding=1),
                    Residual(32),
                    nn.Conv2d(32, 64, 3, stride=2, padding=1),
                    Residual(64),
                    nn.ReLU(),
                    nn.Flatten(),
                    nn.Linear(7 * 7 * 64, 40),
                )
                self.decoder = nn.Sequential(
                    nn.Linear(20, 7 * 7 * 64),
                    nn.Unflatten(1, (64, 7, 7)),
                    Residual(64),
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.ReLU(),
                    nn.Conv2d(64, 32, 3, padding=1),
                    Residual(32),
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.ReLU(),
                    nn.Conv2d(32, 32, 3, padding=1),
                    nn.ReLU(),
                    nn.Conv2d(32, 1, 3, padding=1),
                    nn.Flatten(),
                )
            else:
                self.encoder = nn.Sequential(
                    nn.Conv2d(1, 32, 3, stride=2, padding=1),
                    nn.ReLU(),
                    nn.Conv2d(32, 64, 3, stride=2, padding=1),
                    nn.ReLU(),
                    nn.Flatten(),
                    nn.Linear(7 * 7 * 64, 40),
                )
                self.decoder = nn.Sequential(
                    nn.Linear(20, 7 * 7 * 64),
                    nn.ReLU(),
                    nn.Unflatten(1, (64, 7, 7)),
                    nn.ZeroPad2d((0, 1, 0, 1)),
                    nn.Conv2d(64, 4 * 32, 2),
                    nn.PixelShuffle(2),
                    nn.ReLU(),
                    nn.ZeroPad2d((0, 1, 0, 1)),
                    nn.Conv2d(32, 4, 2),
                    nn.PixelShuffle(2),
                    nn.Flatten(),
                )

        def forward(self, x):
            mean, log_var = self.encoder(x).chunk(2, dim=-1)
            z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
            logits = self.decoder(z)
            target = x.flatten(1)
            recon = -nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1)
            kl = 0.5 * (torch.exp(log_var) + mean**2 - 1 - log_var).sum(-1)
            return -(recon - kl).mean()

    return VAE()


def theirs(model: str, batch_size: int, images: np.ndarray, epochs: int, compiled: bool) -> float:
    """Training examples/s of the same model in PyTorch, eager or torch.compile'd."""
    import torch

    torch.manual_seed(0)
    net = torch_model(model)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    u8 = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # (N, 1, 28, 28) uint8

    def step(batch):
        x = torch.bernoulli(batch.float() / 255.0)  # dynamic binarization
        optimizer.zero_grad(set_to_none=True)
        loss = net(x)
        loss.backward()
        optimizer.step()
        return loss

    step = torch.compile(step) if compiled else step
    n_steps = len(images) // batch_size

    def epoch():
        order = torch.randperm(len(images))
        for i in range(n_steps):
            loss = step(u8[order[i * batch_size : (i + 1) * batch_size]])
        return float(loss.detach())

    epoch()  # warm-up (and compilation)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    return n_steps * batch_size / min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,conv,resnet")
    parser.add_argument("--batches", default="128")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per row; the fastest counts")
    parser.add_argument("--examples", type=int, default=16384, help="training images per epoch (MNIST sample, tiled)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (it needs a C++ compiler)")
    args = parser.parse_args()
    import torch

    train = data.load("mnist").train_images
    images = np.concatenate([train] * -(-args.examples // len(train)))[: args.examples]
    print(
        f"{jax.devices()[0].device_kind}, {os.cpu_count()} cores; jax {jax.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)\n"
    )
    print(
        "| model | batch | vae_jax examples/s | PyTorch eager | torch.compile | vae_jax / eager | vae_jax / compile |"
    )
    print("|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        for batch_size in map(int, args.batches.split(",")):
            a = ours(model, batch_size, images, args.epochs)
            eager = theirs(model, batch_size, images, args.epochs, compiled=False)
            comp = float("nan") if args.no_compile else theirs(model, batch_size, images, args.epochs, compiled=True)
            print(
                f"| {model} | {batch_size} | {a:.0f} | {eager:.0f} | {comp:.0f} | {a / eager:.2f}x | {a / comp:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
