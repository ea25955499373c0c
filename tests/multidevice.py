"""Run by test_parallel.py in a subprocess (the device count is fixed at JAX start-up): 20
training steps of a small MLP VAE on every device this process sees, then 8 prior samples.
Prints one JSON line: {"devices", "losses", "samples"}."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from vae_jax import parallel  # noqa: E402
from vae_jax.config import Config  # noqa: E402
from vae_jax.objectives import Objective  # noqa: E402
from vae_jax.training import epoch_runner, init_state, make_train_steps  # noqa: E402
from vae_jax.vae import build  # noqa: E402

STEPS, BATCH = 20, 64


def main(feed: str) -> None:
    rng = np.random.RandomState(0)
    images = (rng.rand(STEPS * BATCH, 12, 12, 1) * 255).astype(np.uint8)
    vae = build(Config(hidden=(64,), latent_dim=4), images.shape[1:])
    optimizer = optax.adam(3e-3)
    layout = parallel.layout()
    state = layout.replicate(init_state(vae, optimizer, jax.random.key(0)))
    steps = make_train_steps(vae, optimizer, Objective(), True, BATCH, 0, layout)
    take = epoch_runner(steps, layout, jax.random.key(1), images, None, BATCH, feed)(0)
    losses = []
    for i in range(STEPS):
        state, stats = take(state, i, 1)
        losses.append(float(stats["loss"][0]))
    samples = vae.decode_mean(layout.local(state.params), jax.random.normal(jax.random.key(2), (8, 4)))
    print(json.dumps({"devices": jax.device_count(), "losses": losses, "samples": np.asarray(samples).ravel().tolist()}))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "device")
