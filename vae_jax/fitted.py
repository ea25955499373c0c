"""A fitted sampler for a loaded model: a density (vae_jax.samplers: gmm, maf, iaf, twostage) fitted to the
training set's posterior means (pixelcnn: a discrete model's codes), stored beside the checkpoint as
sampler_<name>_step<step>.npz (gmm: sampler_gmm<K>_step<step>.npz), measured on the test set, drawn
from. The stored file carries a record of what it was fitted to (the step, the latent size, the
parameters' digest) and the digests of its arrays and of that record: it is used only when all hold.

    fitted = vae_jax.fitted.load_or_fit(model, "checkpoints", "gmm", components=10)
    images = fitted.sample(model, jax.random.key(0), 64)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax import families, integrity, newfiles, pictures, samplers, smoke
from vae_jax.api import Model
from vae_jax.codebook import codes_of
from vae_jax.errors import UserError, first_line
from vae_jax.samplers import progress

log = logging.getLogger("vae_jax")


@dataclass(frozen=True)
class Fitted:
    """A density fitted to a model's top-group posterior means, and what it measured."""

    spec: samplers.Spec  # the sampler: its functions and how it is described
    options: dict[str, int]  # its options, every one given
    state: dict[str, np.ndarray]  # its fitted arrays
    report: dict[str, Any]  # the sampler, its options, sizes, the test latents' log-density under it and p(z)
    path: str  # where it is stored beside the checkpoint

    def sample(self, model: Model, key: jax.Array, n: int, temperature: float = 1.0) -> jax.Array:
        """The means of p(x|z) for n draws of the top group from the fitted density.

        Args:
            model: the model it was fitted to.
            key: the PRNG key of the draws.
            n: how many images.
            temperature: the density's spread is multiplied by it (as the sampler defines it).

        Returns:
            Images (n, H, W, C) in [0, 1].
        """
        z = self.spec.functions.sample(self.state, key, n, temperature, **self.options)
        if self.spec.codes:  # codes (n, h, w): their code vectors
            z = model.vae.embed(model.params, jnp.asarray(z).reshape(n, -1))
        return jnp.clip(model.decode_top(z), 0.0, 1.0)


def path_of(ckpt: str, model: Model, sampler: str = "gmm", **options: int | None) -> str:
    """Where a sampler fitted to a model at its step is stored beside the checkpoint.

    Args:
        ckpt: the run's checkpoint folder.
        model: the trained model (vae_jax.load).
        sampler: the sampler's name (`sample.py --sampler`; vae_jax.samplers.names()).
        **options: the sampler's options by name (e.g. components=10); its defaults where None or not given.

    Returns:
        The path of its .npz file.
    """
    spec = samplers.chosen(sampler)
    return _path(ckpt, model, spec, samplers.options_of(spec, options))


def _path(ckpt: str, model: Model, spec: samplers.Spec, options: dict[str, int]) -> str:
    return os.path.join(ckpt, f"sampler_{spec.tag(options)}_step{model.step}.npz")


def top_means(model: Model, x: np.ndarray) -> np.ndarray:
    """The top-group posterior means (along q's mean path): what a fitted sampler is fitted to.

    Args:
        model: the trained model (vae_jax.load).
        x: images (N, H, W, C), as the model reads them.

    Returns:
        (N, groups[0]).
    """
    return pictures.encode_all(model, x)[:, : model.vae.groups[0]]


def fit(
    model: Model, train_x: np.ndarray, test_x: np.ndarray, spec: samplers.Spec, options: dict[str, int], seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Fit a density to the posterior means of the training images and measure it on the test images'.

    Args:
        model: the trained model (vae_jax.load).
        train_x: training images (N, H, W, C), as the model reads them.
        test_x: test images (M, H, W, C).
        spec: the sampler (vae_jax.samplers.chosen(name)).
        options: its options, every one given (vae_jax.samplers.options_of).
        seed: the seed of the fit.

    Returns:
        (its fitted arrays, the report of sizes, fit log-likelihoods, the test latents' mean log-density under it
        and under the prior, seconds).

    Raises:
        UserError: a conditional model, or one whose z lies on a manifold or is discrete.
    """
    if model.vae.n_conditions:
        raise UserError("a fitted sampler is for unconditional models: a conditional one draws from p(z|y)")
    _check_reads(model, spec)
    started = time.perf_counter()
    if spec.codes:
        z_train, z_test = codes_of(model.vae, model.params, train_x), codes_of(model.vae, model.params, test_x)
        state, history = spec.functions.fit(
            jnp.asarray(z_train), jax.random.key(seed), k=model.vae.codebook_size, **options
        )
        grid = "x".join(map(str, z_train.shape[1:]))
        what = f"codes of {len(z_train):,} training images ({grid} of {model.vae.codebook_size} codes)"
    else:
        z_train, z_test = top_means(model, train_x), top_means(model, test_x)
        state, history = spec.functions.fit(jnp.asarray(z_train), jax.random.key(seed), **options)
        what = f"posterior means of {len(z_train):,} training images ({z_train.shape[1]} top-group units)"
    state = {name: np.asarray(a) for name, a in state.items()}
    fitted_density = np.asarray(spec.functions.log_prob(state, jnp.asarray(z_test), **options))
    placed = model.vae.embed(model.params, jnp.asarray(z_test).reshape(len(z_test), -1)) if spec.codes else z_test
    prior = np.asarray(model.vae.log_prior(model.params, jnp.asarray(placed)))
    report = {
        "sampler": spec.name,
        **options,
        "fitted": spec.describe(options),
        "fitted_on": what,
        "fit_log_likelihood": [float(history[0]), float(history[-1])],
        "test_images": len(z_test),
        "test_log_density_fitted": float(np.mean(np.asarray(fitted_density))),
        "density": spec.density,
        "test_log_density_prior": float(np.mean(prior)),
        "prior": model.vae.description["prior"],
        "seconds": round(time.perf_counter() - started, 2),
    }
    if spec.codes:
        report |= bound(model, test_x, fitted_density)
    return state, report


def _check_reads(model: Model, spec: samplers.Spec) -> None:
    """Refuse a sampler of z for a model whose z is not in R^latent_dim, and a sampler of codes for one
    whose z is not discrete."""
    if spec.codes and not model.vae.discrete:
        raise UserError(f"--sampler {spec.name} models a discrete model's codes; this model's z is continuous")
    if not spec.codes and not families.euclidean(model.config):
        where = (
            "is discrete (codes)"
            if model.vae.discrete
            else f"lies on a manifold (--latent-space {model.config.latent_space})"
        )
        raise UserError(f"a fitted sampler draws z in R^latent_dim; this model's z {where}: sample without --sampler")


def bound(model: Model, test_x: np.ndarray, log_p_codes: np.ndarray) -> dict[str, float]:
    """The bound on -log p(x) with a fitted prior over the codes: -log p(x | z_q) - log p(c), the
    decoder's term at each test image's codes and the fitted density's (the VQ-VAE paper's §4.1).

    Args:
        model: the trained discrete model.
        test_x: the test images (M, H, W, C), as the model reads them.
        log_p_codes: log p(c) of their codes under the fitted density (M,).

    Returns:
        'test_nll_bound' (nats per image) and 'test_bits_per_dim_bound'.
    """
    recon = model.evaluate(test_x, k=1)["recon"]  # q is a point mass: log p(x | z_q), its test mean
    nats = float(-recon - np.mean(log_p_codes))
    return {"test_nll_bound": nats, "test_bits_per_dim_bound": nats / (np.prod(test_x.shape[1:]) * np.log(2))}


class Unusable(Exception):
    """A stored sampler file that is not what its name says: damaged, or fitted to another model."""


SEAL = "sha256"  # the field of the stored record that holds its digest


def fitted_to(model: Model) -> dict[str, Any]:
    """What a sampler is fitted to, as its stored record says.

    Args:
        model: the trained model (vae_jax.load).

    Returns:
        The checkpoint 'step', the top group's size ('latent') and the parameters' digest ('params_sha256').
    """
    return {
        "step": model.step,
        "latent": model.vae.groups[0],
        "params_sha256": integrity.digests(model.params, "params")["params"],
    }


def load_or_fit(
    model: Model, ckpt: str, sampler: str = "gmm", seed: int = 0, dataset=None, **options: int | None
) -> Fitted:
    """A sampler fitted for this checkpoint step: read from beside the checkpoint, or fitted and stored there.

    A stored file that is damaged or was fitted to other parameters is moved aside
    (set-aside-<date>-<name>) with one warning, and the sampler fitted again. A fit by gradient keeps
    its progress beside it after each epoch (sampler_<name>_step<step>.partial.npz, samplers.progress):
    stopped, it goes on from there when asked again, to the same result.

    Args:
        model: the trained model (vae_jax.load).
        ckpt: the run's checkpoint folder.
        sampler: the sampler's name (`sample.py --sampler`; vae_jax.samplers.names()).
        seed: the seed of a fit.
        dataset: the data to fit to (a vae_jax.data.Dataset); None: the run's own (vae_jax.data.of_run).
        **options: the sampler's options by name (e.g. components=10); its defaults where None or not given.

    Returns:
        The `Fitted` sampler.
    """
    spec = samplers.chosen(sampler)
    options = smoke.fit_options(samplers.options_of(spec, options))
    path = _path(ckpt, model, spec, options)
    if os.path.lexists(path):
        try:
            fitted = _read(path, model, spec, options)
            log.info("fitted sampler: read %s", path)
            return fitted
        except Unusable as e:
            aside = newfiles.set_aside(path, "set-aside")
            log.warning("fitted sampler: %s %s; moved to %s, fitting it again", path, e, aside)
    if dataset is None:
        from vae_jax import data

        dataset = data.of_run(model.config)
    from vae_jax.data.pixels import eval_images

    binary = model.vae.likelihood.binary
    train_x, test_x = (
        np.asarray(eval_images(images, binary)) for images in (dataset.train_images, dataset.test_images)
    )
    what = {"fitted_to": fitted_to(model), "sampler": spec.name, "options": options, "seed": seed}
    what["train_images"] = hashlib.sha256(memoryview(np.ascontiguousarray(train_x))).hexdigest()
    partial = path.removesuffix(".npz") + ".partial.npz"
    with progress.kept(partial, what):  # a fit by gradient goes on from there
        try:
            state, report = fit(model, train_x, test_x, spec, options, seed)
        except KeyboardInterrupt:
            if os.path.lexists(partial):
                log.warning("fitted sampler: stopped; its epochs so far are kept in %s: ask again to go on", partial)
            raise
        if not all(np.isfinite(a).all() for a in state.values()):
            raise UserError(f"fitting {spec.describe(options)} did not converge (non-finite): {spec.hint}")
        record = {"report": report, "fitted_to": fitted_to(model), "arrays": _digest(state)}
        arrays = state | {"record": np.array(json.dumps(integrity.sealed(record, SEAL)))}
        newfiles.write_new(path, newfiles.npz(arrays))
        progress.done()
    log.info("fitted sampler: stored %s", path)
    return Fitted(spec, options, state, report, path)


def read(path: str, model: Model, sampler: str = "gmm", as_stored: bool = False, **options: int | None) -> Fitted:
    """A stored sampler, once its record matches its digest, its arrays the record, and the record says it
    was fitted to `model` as `sampler` with `options`.

    Args:
        path: its .npz file.
        model: the trained model (vae_jax.load).
        sampler: the sampler's name (`sample.py --sampler`; vae_jax.samplers.names()).
        as_stored: with the options the file holds (then `options` are not read).
        **options: the sampler's options by name (e.g. components=10); its defaults where None or not given.

    Returns:
        The `Fitted` sampler.

    Raises:
        Unusable: the file is damaged or not what its name says.
    """
    spec = samplers.chosen(sampler)
    return _read(path, model, spec, None if as_stored else samplers.options_of(spec, options))


def _read(path: str, model: Model, spec: samplers.Spec, options: dict[str, int] | None) -> Fitted:
    """`read`; options None: those the file holds."""
    try:
        with np.load(path) as stored:
            arrays = {name: np.asarray(stored[name]) for name in stored.files}
        record = json.loads(str(arrays.pop("record")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise Unusable(f"cannot be read ({first_line(e)})") from None
    if not integrity.is_sealed(record, SEAL) or record.get("arrays") != _digest(arrays):
        raise Unusable("does not match the digest recorded when it was stored (damaged)")
    now, was, report = fitted_to(model), record.get("fitted_to"), record.get("report")
    if not isinstance(was, dict) or not isinstance(report, dict):
        raise Unusable("is not a fitted sampler's file (its record says nothing of what it was fitted to)")
    if was != now:
        raise Unusable(
            f"was fitted to another model (step {was.get('step')}, {was.get('latent')} latent units, parameters "
            f"{str(was.get('params_sha256'))[:8]}; this one: step {now['step']}, {now['latent']}, "
            f"{now['params_sha256'][:8]})"
        )
    held = {name: report.get(name) for name in spec.options}
    options = held if options is None else options
    report = {"sampler": "gmm", "fitted": spec.describe(options)} | report  # files stored when gmm was the one
    if report["sampler"] != spec.name or held != options or None in held.values():
        raise Unusable(f"holds --sampler {report['sampler']} with {held}, not {spec.name} with {options}")
    return Fitted(spec, options, arrays, report, path)


def _digest(arrays: dict[str, np.ndarray]) -> str:
    return integrity.digests(arrays, "arrays")["arrays"]


def summary(report: dict[str, Any]) -> str:
    """One line: what the fitted sampler buys over the prior.

    Args:
        report: a `Fitted`'s report.

    Returns:
        The line, its numbers in nats.
    """
    gain = report["test_log_density_fitted"] - report["test_log_density_prior"]
    codes = "test_nll_bound" in report
    line = (
        f"fitted sampler: {report['fitted']} on the {report['fitted_on']}; "
        f"the {report['test_images']:,} test images' {'codes' if codes else 'posterior means'} have mean "
        f"{report.get('density', 'log-density')} {report['test_log_density_fitted']:.2f} under it, "
        f"{report['test_log_density_prior']:.2f} under the prior ({report['prior']}): {gain:+.2f} nats"
    )
    if codes:
        line += (
            f"; with it, the test images' mean -log p(x) is at most {report['test_nll_bound']:.2f} nats "
            f"({report['test_bits_per_dim_bound']:.4f} bits/dim), a bound"
        )
    return line
