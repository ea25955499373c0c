"""A trained model loaded from a checkpoint folder, for notebooks and the command-line tools."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp

from vae_jax import compiling, logs, objectives, pretrained
from vae_jax.config import Config
from vae_jax.errors import UserError
from vae_jax.evaluation import evaluate
from vae_jax.families import build
from vae_jax.latent import LatentModel, Params, continuous_only, temperatures
from vae_jax.objectives.terms import batch_elbo
from vae_jax.optim import ema_params, make_optimizer
from vae_jax.precision import reported
from vae_jax.runmeta import RunMeta
from vae_jax.state import init_state

log = logging.getLogger("vae_jax")


@dataclass(frozen=True, eq=False)
class Model:
    """Config + params + the pure functions, bound together. Arrays are (B, H, W, C) in [0, 1].

    A conditional model (config.conditional) needs `labels`, (B,) ints, wherever it takes x or z.
    """

    config: Config  # the run's hyper-parameters
    params: Params  # the parameter pytree the functions below use
    vae: LatentModel  # the pure functions of the model the config describes
    step: int  # optimisation steps taken when the checkpoint was written
    epoch: int  # epochs completed then
    meta: RunMeta  # what the checkpoint says of its run

    @cached_property
    def objective(self) -> objectives.Objective:
        """What the model was trained to maximise (its options from the config)."""
        return objectives.of(self.config)

    @cached_property
    def _encode(self):
        return reported(compiling.jit(self.vae.encode))

    @cached_property
    def _decode(self):
        return reported(compiling.jit(self.vae.decode_mean))

    @cached_property
    def _elbo(self):
        return reported(compiling.jit(lambda p, x, k, c: batch_elbo(self.vae, p, x, k, c).elbo))

    def _c(self, labels, n: int) -> jax.Array | None:
        if not self.vae.n_conditions:
            return None
        if labels is None:
            raise UserError("this is a conditional model: give labels (e.g. sample.py --label 3)")
        labels = jnp.broadcast_to(jnp.asarray(labels, jnp.int32), (n,))
        if int(labels.min()) < 0 or int(labels.max()) >= self.vae.n_conditions:
            raise UserError(f"labels must be in 0..{self.vae.n_conditions - 1}")
        return self.vae.condition(labels)

    def encode(self, x: jax.Array, labels=None) -> tuple[jax.Array, jax.Array]:
        """q(z|x) of each image (of a hierarchy: every group, top first, along the posterior's mean path).

        Args:
            x: images (B, H, W, C) in [0, 1].
            labels: int class labels (B,) or one label for all, for a conditional model; None otherwise.

        Returns:
            (mean, log_var), each (B, latent_dim).
        """
        continuous_only(self.vae, "encode (the posterior's mean and log-variance)")
        return self._encode(self.params, jnp.asarray(x, jnp.float32), self._c(labels, len(x)))

    def decode(self, z: jax.Array, labels=None) -> jax.Array:
        """The mean of p(x|z).

        Args:
            z: latents (B, latent_dim).
            labels: int class labels (B,) or one label for all, for a conditional model; None otherwise.

        Returns:
            Images (B, H, W, C).
        """
        return self._decode(self.params, jnp.asarray(z, jnp.float32), self._c(labels, len(z)))

    @cached_property
    def _generate(self):
        def means(params, key, n, c, temperature):
            return self.vae.likelihood.mean(self.vae.generate(params, key, n, c, temperature))

        return reported(compiling.jit(means, static_argnames=("n", "temperature")))

    @cached_property
    def _decode_top(self):
        return reported(compiling.jit(self.vae.decode_top))

    def sample(self, key: jax.Array, n: int, temperature: float | Sequence[float] = 1.0, labels=None) -> jax.Array:
        """The means of p(x|z) for n draws z from the prior.

        Args:
            key: the PRNG key of the draws.
            n: how many images.
            temperature: the prior's standard deviation is multiplied by it (of a hierarchy: one for all
                groups or one per group, top first).
            labels: int class labels (B,) or one label for all, for a conditional model; None otherwise.

        Returns:
            Images (n, H, W, C), floats clipped to [0, 1].
        """
        temperature = temperatures(temperature, len(self.vae.groups))
        if any(t != 1.0 for t in temperature):
            continuous_only(self.vae, "a temperature other than 1")
        c = self._c(labels, n)
        return jnp.clip(self._generate(self.params, key, n, c, temperature), 0.0, 1.0)

    def decode_top(self, z_top: jax.Array, labels=None) -> jax.Array:
        """The mean of p(x|z) from the top latent group, the groups below at their prior means given the
        ones above (a one-latent model: `decode`).

        Args:
            z_top: top-group latents (B, vae.groups[0]).
            labels: int class labels (B,) or one label for all, for a conditional model; None otherwise.

        Returns:
            Images (B, H, W, C).
        """
        return self._decode_top(self.params, jnp.asarray(z_top, jnp.float32), self._c(labels, len(z_top)))

    def to_standard(self, z_top: jax.Array, labels=None) -> jax.Array:
        """Top-group latents in the prior's standard deviations from its mean (with a class prior: of each
        label's Gaussian; with N(0, I): z itself).

        Args:
            z_top: top-group latents (B, groups[0]).
            labels: int class labels (B,) or one label for all, for a conditional model; None otherwise.

        Returns:
            (B, groups[0]) standard coordinates.
        """
        z_top = jnp.asarray(z_top, jnp.float32)
        return self.vae.to_standard(self.params, z_top, self._c(labels, len(z_top)))

    def from_standard(self, u: jax.Array, labels=None) -> jax.Array:
        """The inverse of `to_standard`.

        Args:
            u: standard coordinates (B, groups[0]).
            labels: int class labels (B,) or one label for all, for a conditional model; None otherwise.

        Returns:
            The top-group latents (B, groups[0]) at u prior standard deviations.
        """
        u = jnp.asarray(u, jnp.float32)
        return self.vae.from_standard(self.params, u, self._c(labels, len(u)))

    def reconstruct(self, x: jax.Array, labels=None) -> jax.Array:
        """The mean of p(x|z) at z = the posterior mean of each image.

        Args:
            x: images (B, H, W, C) in [0, 1].
            labels: int class labels (B,) or one label for all, for a conditional model; None otherwise.

        Returns:
            Reconstructions (B, H, W, C).
        """
        mean, _ = self._encode(self.params, jnp.asarray(x, jnp.float32), self._c(labels, len(x)))  # a point
        # mass's (a discrete z) too
        return self.decode(mean, labels)

    def elbo(self, key: jax.Array, x: jax.Array, labels=None) -> jax.Array:
        """The single-sample ELBO of each example, in nats.

        Args:
            key: the PRNG key of the draws z ~ q(z|x).
            x: images (B, H, W, C); binary ({0, 1}) for a Bernoulli model, else the ELBO is not that of
                a log-probability.
            labels: int class labels (B,) or one label for all, for a conditional model; None otherwise.

        Returns:
            (B,) ELBOs.
        """
        return self._elbo(self.params, jnp.asarray(x, jnp.float32), key, self._c(labels, len(x)))

    def evaluate(self, x: jax.Array, k: int = 1000, seed: int = 0, batch_size: int | None = None, labels=None) -> dict:
        """Importance-sampled NLL (nats, with standard error), bits/dim, ELBO parts, active units and KL per
        dimension over a test set (see `vae_jax.evaluate`). For an autoencoder: reconstruction error only.

        Args:
            x: the test images (N, H, W, C), as the model reads them (binary for a Bernoulli model).
            k: importance samples per image.
            seed: the seed of the draws.
            batch_size: images per compiled chunk; None picks one for the backend.
            labels: int labels (N,) of a conditional model; None otherwise.

        Returns:
            The metrics by name, as `vae_jax.evaluate` gives them.
        """
        x = jnp.asarray(x, jnp.float32)
        if self.vae.n_conditions and labels is None:
            raise UserError("this is a conditional model: give labels")
        labels = jnp.asarray(labels) if self.vae.n_conditions else None
        key, likelihood = jax.random.key(seed), self.objective.defines_likelihood
        return evaluate(self.vae, self.params, x, key, k, batch_size, labels=labels, likelihood=likelihood)


def load(path: str = "checkpoints", best: bool = False, ema: bool = True) -> Model:
    """Load the latest (or the best) checkpoint of a run, or a model shipped with the package.

    Args:
        path: a run's checkpoint folder, or 'pretrained:NAME' for a shipped model
            (vae_jax.pretrained.names()), whose parameters are those its samplers use, so `best` and `ema`
            do not apply.
        best: the checkpoint with the best test score (the ELBO, or the reconstruction for an objective
            without a likelihood) instead of the latest.
        ema: for a run trained with --ema, the moving average of its parameters (said in the log);
            False for the raw ones.

    Returns:
        The `Model`.

    Raises:
        UserError: the folder holds no checkpoint that can be read.
    """
    name = pretrained.name_of(path)
    if name is not None:
        step, meta, params = pretrained.load(name)
        return Model(meta.config, params, model_of(meta), step, meta.epoch, meta)
    from vae_jax import checkpoint  # here: a shipped model opens without importing Orbax (~0.5 s)
    from vae_jax.saving import PARAMS_ITEM

    def read(mngr, step: int, meta: RunMeta) -> Params:
        """The step's parameters: from format 1 on, those samplers use are saved on their own (read
        into a jax.eval_shape template); else (or for the raw ones of an --ema run) from the state."""
        vae = model_of(meta)
        if meta.format >= 1 and (ema or not meta.config.ema):
            like = jax.eval_shape(lambda: vae.init(jax.random.key(0)))  # the key traced: nothing compiled
            params = checkpoint.restore_state(mngr, step, like, PARAMS_ITEM)
            return checkpoint.checked(mngr, step, meta, params, PARAMS_ITEM)
        objective = objectives.of(meta.config)
        like = jax.eval_shape(lambda: init_state(vae, make_optimizer(meta.config), objective, jax.random.key(0)))
        state = checkpoint.restore_train_state(mngr, step, meta, like)
        averaged = ema_params(state.opt_state)
        return averaged if ema and averaged is not None else state.params

    with logs.orbax_quiet():
        step, meta, params = checkpoint.load_intact(path, read, best)
    if ema and meta.config.ema:
        log.info(
            "%s: using the moving average of the parameters (--ema %g); --no-ema for the raw ones",
            path,
            meta.config.ema,
        )
    return Model(meta.config, params, model_of(meta), step, meta.epoch, meta)


def model_of(meta: RunMeta) -> LatentModel:
    """The model a checkpoint's metadata describes (its parameters apart)."""
    return build(meta.config, meta.image_shape, meta.num_classes)
