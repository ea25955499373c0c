"""A fitted sampler for a loaded model: fit (samplers.fit) to the training set's posterior means,
stored beside the checkpoint as sampler_gmm<K>_step<step>.npz, measured on the test set, drawn from.

    fitted = vae_jax.fitted.load_or_fit(model, "checkpoints", components=10)
    images = fitted.sample(model, jax.random.key(0), 64)
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax import newfiles, pictures, samplers
from vae_jax.api import Model
from vae_jax.errors import UserError

log = logging.getLogger("vae_jax")


@dataclass(frozen=True)
class Fitted:
    """A mixture fitted to a model's top-group posterior means, and what it measured."""

    gmm: samplers.GMM
    report: dict[str, Any]  # components, sizes, the test latents' mean log-density under it and the prior
    path: str

    def sample(self, model: Model, key: jax.Array, n: int, temperature: float = 1.0) -> jax.Array:
        """Means of p(x|z) for n draws of the top group from the mixture: (n, H, W, C) in [0, 1]."""
        z = samplers.sample(self.gmm, key, n, temperature)
        return jnp.clip(model.decode_top(z), 0.0, 1.0)


def path_of(ckpt: str, model: Model, components: int) -> str:
    """Where the mixture of `components` fitted to `model` (at its step) is stored beside the checkpoint."""
    return os.path.join(ckpt, f"sampler_gmm{components}_step{model.step}.npz")


def top_means(model: Model, x: np.ndarray) -> np.ndarray:
    """Top-group posterior means (along q's mean path) of x (N, H, W, C): (N, groups[0])."""
    return pictures.encode_all(model, x)[:, : model.vae.groups[0]]


def fit(model: Model, train_x: np.ndarray, test_x: np.ndarray, components: int = 10, seed: int = 0) -> tuple:
    """(mixture, report): fitted to the posterior means of train_x, measured on those of test_x."""
    if model.vae.n_conditions:
        raise UserError("a fitted sampler is for unconditional models: a conditional one draws from p(z|y)")
    if components > len(train_x):
        raise UserError(f"--components {components}: more than the {len(train_x)} training images")
    started = time.perf_counter()
    z_train, z_test = top_means(model, train_x), top_means(model, test_x)
    gmm, log_lik = samplers.fit(jnp.asarray(z_train), jax.random.key(seed), components)
    prior = np.asarray(model.vae.log_prior(model.params, jnp.asarray(z_test)))
    report = {
        "components": components,
        "fitted_on": f"posterior means of {len(z_train):,} training images ({z_train.shape[1]} top-group units)",
        "em_log_likelihood": [float(log_lik[0]), float(log_lik[-1])],
        "test_images": len(z_test),
        "test_log_density_fitted": float(np.mean(samplers.log_prob(gmm, jnp.asarray(z_test)))),
        "test_log_density_prior": float(np.mean(prior)),
        "prior": model.vae.description["prior"],
        "seconds": round(time.perf_counter() - started, 2),
    }
    return gmm, report


def load_or_fit(model: Model, ckpt: str, components: int = 10, seed: int = 0, dataset=None) -> Fitted:
    """The sampler fitted for this checkpoint step and `components`: read from beside the checkpoint,
    or fitted to the run's data (`dataset`, else data.of_run) and stored there."""
    path = path_of(ckpt, model, components)
    if os.path.exists(path):
        try:
            with np.load(path) as stored:
                fitted = Fitted(samplers.GMM.of(stored), json.loads(str(stored["report"])), path)
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"{path}: not a readable fitted sampler ({e}); move it away to fit again") from None
        log.info("fitted sampler: read %s", path)
        return fitted
    if dataset is None:
        from vae_jax import data

        dataset = data.of_run(model.config)
    from vae_jax.data.pixels import eval_images

    binary = model.vae.likelihood.binary
    train_x, test_x = (
        np.asarray(eval_images(images, binary)) for images in (dataset.train_images, dataset.test_images)
    )
    gmm, report = fit(model, train_x, test_x, components, seed)
    arrays = gmm.arrays() | {"report": np.array(json.dumps(report))}
    newfiles.write_new(path, lambda tmp: _save_npz(tmp, arrays))
    log.info("fitted sampler: stored %s", path)
    return Fitted(gmm, report, path)


def _save_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def summary(report: dict[str, Any]) -> str:
    """One line: what the fitted sampler buys over the prior."""
    gain = report["test_log_density_fitted"] - report["test_log_density_prior"]
    return (
        f"fitted sampler: a {report['components']}-component Gaussian mixture on the {report['fitted_on']}; "
        f"the {report['test_images']:,} test images' posterior means have mean log-density "
        f"{report['test_log_density_fitted']:.2f} under it, {report['test_log_density_prior']:.2f} under the prior "
        f"({report['prior']}): {gain:+.2f} nats"
    )
