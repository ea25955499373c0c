"""Run by test_parallel.py in a subprocess (the device count is fixed at JAX start-up): 20
training steps of a small MLP VAE (or, given `hvae`, a small hierarchical VAE) on every device this
process sees, then 8 prior samples. Prints one JSON line: {"devices", "losses", "samples"}.

    python tests/multidevice.py [device|host] [mlp|hvae] [JSON of more Config fields]"""

import json
import sys

import jax
import numpy as np
import optax

from vae_jax import parallel
from vae_jax.config import Config
from vae_jax.families import build
from vae_jax.objectives.vae import ELBO
from vae_jax.training import Batches, init_state, make_train_steps

STEPS, BATCH = 20, 64


def main(feed: str, model: str, options: str = "{}") -> None:
    rng = np.random.RandomState(0)
    images = (rng.rand(STEPS * BATCH, 12, 12, 1) * 255).astype(np.uint8)
    config = Config(model=model, hidden=(64,), channels=(8, 16), latent_dim=4, **json.loads(options))
    vae = build(config, images.shape[1:])
    optimizer = optax.adam(3e-3)
    layout = parallel.layout()
    state = layout.replicate(init_state(vae, optimizer, ELBO(), jax.random.key(0)))
    steps = make_train_steps(vae, optimizer, ELBO(), True, BATCH, 0, layout)
    batches = Batches(steps, layout, jax.random.key(1), images, None, BATCH, feed, vae.convolutional)
    order, losses = batches.order(0), []
    for i in range(STEPS):
        state, stats = batches.take(state, order, i, 1)
        losses.append(float(stats["loss"][0]))
    params = layout.local(state.params)
    samples = vae.likelihood.mean(vae.generate(params, jax.random.key(2), 8))
    print(
        json.dumps({"devices": jax.device_count(), "losses": losses, "samples": np.asarray(samples).ravel().tolist()})
    )


if __name__ == "__main__":
    main(*(sys.argv[1:] + ["device", "mlp"][len(sys.argv) - 1 :]))
