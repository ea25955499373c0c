"""Evaluation numbers on a whole split: the ELBO and its parts, the importance-sampled
log-likelihood (Burda et al. 2016), bits/dim, active units and KL per dimension;
for a plain autoencoder, only reconstruction error (it defines no likelihood).

All log-likelihoods are in nats per example. Importance samples are drawn in chunks and
reduced with a running logsumexp, so memory does not grow with k. For a conditional VAE every
number is conditional on the label: log p(x|y). `evaluate` is the one entry point (evaluate.py, the
end of training, `Model.evaluate`, the explorer and the notebooks use it); `split_metrics` gives
the cheaper single-sample numbers of each epoch's record.
"""

from __future__ import annotations

import functools
import logging
import math

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax import compiling
from vae_jax.latent import LatentModel, Params
from vae_jax.objectives import terms
from vae_jax.precision import REPORTED, matmuls, reported

log = logging.getLogger("vae_jax")

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al.: Var_x(E_q[z_d]) above this makes dimension d active


PIXEL_SAMPLES_PER_CALL = 800_000  # ~1,000 decoded 28x28 images per call: fastest measured on CPU for conv and resnet
# a dense (mlp) decoder on CPU: ~2,000 per call, 10-35% more samples/s than 1,000 in two runs (4,000: 40% fewer)
DENSE_CPU_PIXEL_SAMPLES_PER_CALL = 1_600_000
ACCELERATOR_MEMORY_SHARE = 0.25  # of a GPU's or TPU's free memory, for one evaluation call's temporaries
MAX_PIXELS_PER_CALL = 2**30  # decoded pixels per call at most: every array's elements stay countable in int32


def pixels_per_call(vae: LatentModel, budget: float | None = None) -> int:
    """Decoded pixels per evaluation call for `vae` on this backend. On CPUs: the sizes measured
    fastest there. On a GPU or TPU, or given a `budget` in bytes: as many as fit one call's
    temporaries in the budget (by default ACCELERATOR_MEMORY_SHARE of the device's free memory), from
    the temporary bytes per decoded image XLA reports for a call compiled on this backend."""
    stats = None if budget is not None or jax.default_backend() == "cpu" else jax.local_devices()[0].memory_stats()
    if budget is None and stats and "bytes_limit" in stats:
        budget = ACCELERATOR_MEMORY_SHARE * (stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    per_image = None if budget is None else _bytes_per_decoded_image(vae)
    if not per_image:  # a CPU, or a backend that reports no memory
        dense = not vae.convolutional and jax.default_backend() == "cpu"
        return DENSE_CPU_PIXEL_SAMPLES_PER_CALL if dense else PIXEL_SAMPLES_PER_CALL
    images = max(1, int(budget // per_image))
    return min(images * math.prod(vae.image_shape), MAX_PIXELS_PER_CALL)


@functools.lru_cache(maxsize=16)
def _bytes_per_decoded_image(vae: LatentModel, examples: int = 64, samples: int = 100) -> float | None:
    """Temporary bytes per decoded image of an evaluation call (`examples` x `samples` samples, two
    chunks) compiled on this backend at the reported precision, or None where the backend reports no
    memory analysis. From 64 examples on they grow linearly with the images (XLA:CPU: within 0.1%
    up to 1,024; below 64 it lays the work out differently, an mlp's from 25% fewer bytes per
    image at 8 examples to 4% more at 1)."""
    params = jax.eval_shape(vae.init, jax.random.key(0))
    xs = jax.ShapeDtypeStruct((examples, *vae.image_shape), jnp.float32)
    labels = jax.ShapeDtypeStruct((examples,), jnp.int32) if vae.n_conditions else None
    with matmuls(REPORTED):
        lowered = evaluate_batch.lower(vae, params, xs, labels, jax.random.key(0), jnp.int32(0), 2 * samples, samples)
    analysis = lowered.compile().memory_analysis()
    return analysis.temp_size_in_bytes / (examples * samples) if analysis is not None else None


def default_chunking(
    pixels: int, k: int, chunk: int | None = None, per_call: int = PIXEL_SAMPLES_PER_CALL
) -> tuple[int, int]:
    """(samples per example, examples) of one call for images of `pixels` values and k samples:
    about `per_call` decoded pixels, chunks of up to 100 samples unless `chunk` is given."""
    chunk = chunk or max(1, min(100, per_call // pixels))
    return chunk, max(1, per_call // (pixels * min(chunk, k)))


@compiling.jit(static_argnames=("vae", "chunk"))
def importance_chunk(
    vae: LatentModel, params: Params, xs: jax.Array, cs, keys: jax.Array, j: jax.Array, chunk: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Chunk j of `chunk` importance samples for each example of a batch xs: (B, H, W, C), drawn
    with fold_in(keys[n], j) -> (logsumexp_i log w_i, sum_i log p(x|z_i)), each (B,), and the sum
    over the samples of the analytic KL per latent unit, (B, latent_dim)."""
    chunk_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, j)
    log_w, log_lik, kl = terms.per_example_keys(terms.log_importance_weights, vae, params, xs, chunk_keys, cs, chunk)
    return jax.nn.logsumexp(log_w, axis=-1), jnp.sum(log_lik, axis=-1), jnp.sum(kl, axis=1)


@compiling.jit(static_argnames=("vae", "k", "chunk"))
def evaluate_batch(
    vae: LatentModel, params: Params, xs: jax.Array, labels, key: jax.Array, start: jax.Array, k: int, chunk: int
) -> dict[str, jax.Array]:
    """k importance samples for each example of a batch xs: (B, H, W, C), example n's from
    fold_in(key, start + n), `chunk` at a time (the last chunk smaller) in a loop inside this one jitted
    program, combined with a running logsumexp (memory does not grow with k) -> log p(x), the mean
    log p(x|z) (each (B,)), the mean analytic KL per latent unit and the posterior means (of a
    hierarchy: less the prior's, along q's mean path; see HVAE.mean_shift), each (B, latent_dim).
    One program per batch was faster on CPUs for every model than a jitted call per chunk (mlp +9%,
    conv +40-50%, resnet +15%, hvae +25%), and an accelerator wants few, large calls."""
    cs = vae.condition(labels) if vae.n_conditions else None
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, start + jnp.arange(xs.shape[0]))

    def add_chunk(j, sums):
        lse, lik_sum, kl_sum = sums
        chunk_lse, chunk_lik, chunk_kl = importance_chunk(vae, params, xs, cs, keys, j, chunk)
        return jnp.logaddexp(lse, chunk_lse), lik_sum + chunk_lik, kl_sum + chunk_kl

    n = xs.shape[0]
    sums = jnp.full(n, -jnp.inf), jnp.zeros(n), jnp.zeros((n, terms.kl_columns(vae, params)))
    n_chunks, rest = divmod(k, chunk)
    lse, lik_sum, kl_sum = jax.lax.fori_loop(0, n_chunks, add_chunk, sums)
    if rest:  # the last samples of a k that is not a multiple of `chunk`: chunk n_chunks, smaller
        rest_lse, rest_lik, rest_kl = importance_chunk(vae, params, xs, cs, keys, n_chunks, rest)
        lse, lik_sum, kl_sum = jnp.logaddexp(lse, rest_lse), lik_sum + rest_lik, kl_sum + rest_kl
    post_mean = vae.mean_shift(params, xs, cs)
    return {"log_px": lse - math.log(k), "recon": lik_sum / k, "kl_dims": kl_sum / k, "post_mean": post_mean}


@compiling.jit(static_argnames=("vae",))
def _ae_batch(vae: LatentModel, params: Params, xs: jax.Array, labels) -> dict[str, jax.Array]:
    cs = vae.condition(labels) if vae.n_conditions else None
    recon = terms.per_example(terms.ae_recon, vae, params, xs, jax.random.key(0), cs)
    mean, _ = vae.encode(params, xs, cs)
    squared = jnp.mean((vae.decode_mean(params, mean, cs) - xs) ** 2, axis=(1, 2, 3))
    return {"recon": recon, "squared_error": squared, "post_mean": mean}


def _batched(fn, x: jax.Array, labels: jax.Array | None, batch_size: int) -> dict[str, np.ndarray]:
    """fn(xs, labels, start) over fixed-size batches of x starting at index `start` (the last one
    padded, so one compilation), concatenated. Batches are cut on the host: no op-by-op work."""
    x, labels = np.asarray(x), None if labels is None else np.asarray(labels)
    batch_size = min(batch_size, len(x))
    parts = []
    for start in range(0, len(x), batch_size):
        xs = x[start : start + batch_size]
        real = len(xs)
        pad = [(0, batch_size - real)]
        xs = np.pad(xs, pad + [(0, 0)] * (xs.ndim - 1))
        batch_labels = None if labels is None else np.pad(labels[start : start + batch_size], pad)
        parts.append(jax.tree.map(lambda a, real=real: np.asarray(a)[:real], fn(xs, batch_labels, start)))
    joined = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    # per-example numbers in float64; per-unit arrays (N, latent_dim) stay float32 (a hierarchy has thousands)
    return {name: a.astype(np.float64) if a.ndim == 1 else a for name, a in joined.items()}


@reported
def evaluate(
    vae: LatentModel,
    params: Params,
    x: jax.Array,
    key: jax.Array,
    k: int = 1000,
    batch_size: int | None = None,
    chunk: int | None = None,
    labels: jax.Array | None = None,
    likelihood: bool = True,
) -> dict:
    """Importance-sampled log p(x) (log p(x|y) given `labels` for a conditional VAE), the ELBO,
    active units and KL per dimension and per latent group over x: (N, H, W, C): the one entry
    point of evaluation (evaluate.py, the end of training, `Model.evaluate`, the explorer and the
    notebooks). For a model that defines no likelihood (`likelihood` False: its objective's
    `defines_likelihood`), the reconstruction numbers only (see `_autoencoder`).

    `k` importance samples per example (`chunk` at a time, the last chunk smaller; a hierarchy draws
    every group from q and weighs it by the product of the priors); the ELBO's reconstruction term
    averages log p(x|z) over the same samples, its KL is in closed form (below a hierarchy's top
    group: given the groups above, averaged over the same samples; where there is none, a mixture
    prior or a flow, the mean of log q(z|x) - log p(z) over them). Active units: Var_x of the
    posterior means above ACTIVE_UNIT_THRESHOLD (of a hierarchy: of the posterior mean less the
    prior's, in the prior's standard deviations, along q's mean path: HVAE.mean_shift; a group
    whose posterior is its prior counts none).
    Example n draws its samples from fold_in(key, n), so the result does not depend on
    `batch_size`. By default a call decodes about `pixels_per_call(vae)` pixels: chunks of up to
    100 samples, batches of as many examples as fit; a batch is one jitted program.

    Args:
        vae: the model's functions (a LatentModel).
        params: its parameters.
        x: the test images (N, H, W, C), as the model reads them (binary for a Bernoulli model).
        key: the PRNG key of the importance samples.
        k: importance samples per example.
        batch_size: examples per jitted program; None: as many as fit the backend's budget.
        chunk: samples decoded together inside a program; None: chosen with batch_size.
        labels: int labels (N,) of a conditional model; None otherwise.
        likelihood: False for a model that defines no likelihood: the reconstruction numbers only.

    Returns:
        The numbers by name, 'nll' and its standard error, 'bits_per_dim', 'elbo', 'recon', 'kl', 'active_units',
        the KL per unit and per latent group, 'n', 'k' (see docs/evaluation.md).
    """
    if not likelihood:
        return _autoencoder(vae, params, x, batch_size, labels)
    chunk, default_batch = default_chunking(math.prod(x.shape[1:]), k, chunk, pixels_per_call(vae))
    # the default: as many examples per batch as fit, spread evenly over the batches (less padding)
    batch_size = batch_size or -(-len(x) // -(-len(x) // default_batch))
    if k <= 0 or batch_size <= 0 or chunk <= 0:
        raise ValueError("k, batch_size and chunk must be positive")
    chunk = min(chunk, k)

    def batch(xs, batch_labels, start):
        return evaluate_batch(vae, params, xs, batch_labels, key, np.int32(start), k, chunk)

    out = _batched(batch, x, labels, batch_size)
    n, dims = len(x), int(np.prod(x.shape[1:]))
    nll = -out["log_px"]
    elbo_values, _, kl = terms.assemble(out["recon"], out["kl_dims"])
    variances = out["post_mean"].var(0, dtype=np.float64)
    per_unit = vae.kl_analytic and out["kl_dims"].shape[-1] == vae.latent_dim  # else one column: the whole KL
    per_dim = out["kl_dims"].mean(0, dtype=np.float64) if per_unit else None
    return {
        "n": n,
        "k": k,
        "conditional": labels is not None,
        "nll": float(nll.mean()),
        "nll_se": _se(nll),
        "bits_per_dim": float(nll.mean() / (dims * math.log(2))),
        "elbo": float(elbo_values.mean()),
        "elbo_se": _se(elbo_values),
        "recon": float(out["recon"].mean()),
        "kl": float(kl.mean()),
        "active_units": int(np.sum(variances > ACTIVE_UNIT_THRESHOLD)),
        "latent_dim": int(variances.shape[0]),
        "posterior_mean_variance": variances.tolist(),
        "kl_per_dim": None if per_dim is None else per_dim.tolist(),
        **per_group(vae.groups, per_dim, variances, float(kl.mean())),
        "latent": vae.description,
    }


def per_group(groups: tuple[int, ...], kl_per_dim: np.ndarray | None, variances: np.ndarray, kl: float) -> dict:
    """The latent groups' sizes, KL (nats) and active units, from the KL per unit (None where it has
    no closed form: one group, whose KL is `kl`) and the variance over x of each unit's posterior
    mean (see evaluate), each (latent_dim,)."""
    return {
        "groups": list(groups),
        "kl_per_group": [kl] if kl_per_dim is None else terms.group_sums(kl_per_dim, groups).tolist(),
        "active_units_per_group": terms.group_sums(variances > ACTIVE_UNIT_THRESHOLD, groups).tolist(),
    }


def _autoencoder(
    vae: LatentModel, params: Params, x: jax.Array, batch_size: int | None = None, labels: jax.Array | None = None
) -> dict:
    """Reconstruction log p(x|z = encoder mean) and squared error per pixel over x: (N, H, W, C).
    An autoencoder defines no p(x): there is no NLL, ELBO or bits/dim to report."""
    out = _batched(
        lambda xs, batch_labels, start: _ae_batch(vae, params, xs, batch_labels), x, labels, batch_size or 100
    )
    variances = out["post_mean"].var(0, dtype=np.float64)
    return {
        "n": len(x),
        "autoencoder": True,
        "recon": float(out["recon"].mean()),
        "recon_se": _se(out["recon"]),
        "mse_per_pixel": float(out["squared_error"].mean()),
        "active_units": int(np.sum(variances > ACTIVE_UNIT_THRESHOLD)),
        "latent_dim": int(variances.shape[0]),
        "note": "an autoencoder defines no likelihood p(x): no NLL, ELBO or bits/dim",
    }


def _se(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")


@compiling.jit(static_argnames=("vae", "autoencoder"))
def _split_batch(vae: LatentModel, params: Params, xs: jax.Array, labels, key: jax.Array, start, autoencoder: bool):
    cs = vae.condition(labels) if vae.n_conditions else None
    key = jax.random.fold_in(key, start)
    if autoencoder:
        return {"recon": terms.per_example(terms.ae_recon, vae, params, xs, key, cs)}
    recon, kl_dims = terms.per_example(terms.elbo_parts, vae, params, xs, key, cs)
    out = terms.assemble(recon, kl_dims)._asdict()
    if len(vae.groups) > 1:  # a hierarchy: its groups' KL and posterior means (for their active units)
        out |= {"kl_groups": terms.group_sums(kl_dims, vae.groups), "post_mean": vae.mean_shift(params, xs, cs)}
    return out


@reported
def split_metrics(
    vae: LatentModel,
    params: Params,
    x: jax.Array,
    key: jax.Array,
    labels: jax.Array | None = None,
    autoencoder: bool = False,
    batch_size: int = 500,
) -> dict[str, float]:
    """Means over x: (N, H, W, C) of the single-sample ELBO, reconstruction and KL, in nats
    (for an autoencoder: the reconstruction log p(x|z = mean) only); for a hierarchy also each
    group's KL (kl_group1, ... top first) and active units (active_group1, ...)."""

    def batch(xs, batch_labels, start):
        return _split_batch(vae, params, xs, batch_labels, key, np.int32(start), autoencoder)

    out = _batched(batch, x, labels, batch_size)
    kl_groups, post_mean = out.pop("kl_groups", None), out.pop("post_mean", None)
    means = {name: float(v.mean()) for name, v in out.items()}
    if kl_groups is not None:
        active = terms.group_sums(post_mean.var(0, dtype=np.float64) > ACTIVE_UNIT_THRESHOLD, vae.groups)
        means |= {f"kl_group{g + 1}": float(v) for g, v in enumerate(kl_groups.mean(0, dtype=np.float64))}
        means |= {f"active_group{g + 1}": int(v) for g, v in enumerate(active)}
    return means
