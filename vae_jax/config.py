"""One frozen dataclass holds every hyper-parameter; the CLI flags are generated from it."""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vae_jax import families, flows, objectives, priors, tracking
from vae_jax.data import datasets
from vae_jax.data.datasets import NAMES as DATASETS
from vae_jax.data.datasets import names_a_folder
from vae_jax.errors import UserError
from vae_jax.options import samples_at_most

LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-learned", "discretized-logistic", "logistic-mixture")
DISCRETE_8BIT = ("discretized-logistic", "logistic-mixture")
BINARIZE = ("dynamic", "static")
DTYPES = ("float32", "bfloat16")
MATMUL_PRECISIONS = ("default", "high", "highest")
LR_SCHEDULES = ("constant", "cosine")

# Fields that say where or for how long a run goes, or how it is measured, not what it
# computes: changing them between invocations continues the same run instead of being refused.
RUN_LOCATION_FIELDS = (
    *("epochs", "workdir", "data_dir", "eval_k", "max_bad_steps", "checkpoint_every_steps"),
    "stream",  # the same batches either way
    "tracker",  # where the run is logged as well: a tracker added later gets the earlier epochs
)


def _f(default: Any, help: str, choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None) -> Any:
    """A field with its help and its choices: a tuple, or a registry's `names` (what is registered
    when the flags are made: checked by the registry, not here)."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class _Own:
    """The Config's fields that no family, objective, prior or flow owns (theirs: their registries' OPTIONS)."""

    dataset: str = _f(
        "mnist",
        f"dataset: {', '.join(DATASETS)}, a path to an .npz with 'images' (and 'labels'), or a folder of PNG/JPEG "
        "images (class subfolders become labels; train/ and test/ are used as given)",
    )
    image_size: int = _f(
        0,
        "image folders: centre-crop each image to a square and resize it to N x N (0: keep the "
        "images' own size when they all agree)",
    )
    data_dir: str = _f("", "folder holding IDX files (train-images-idx3-ubyte[.gz], ...) or an .npz file")
    stream: bool = _f(
        False,
        "image folders: leave the training images on disk and read each batch's files as it is needed (Grain), "
        "so that memory does not grow with the dataset; automatic when the decoded training set would exceed "
        "the device budget. The batches are the same as in memory",
    )
    model: str = _f("mlp", f"model family: {', '.join(families.BUILTIN)} (or one registered with vae_jax.register)")
    likelihood: str = _f(
        "auto",
        "decoder distribution p(x|z); auto: bernoulli (binarized pixels, the literature's convention) for "
        f"{', '.join(d.name for d in datasets.TABLE.values() if d.nearly_binary)}, discretized-logistic "
        "(the 256 values of 8-bit pixels) for any other images",
        ("auto", *LIKELIHOODS),
    )
    sigma: float = _f(0.1, "standard deviation of the fixed-sigma gaussian likelihood")
    latent_dim: int = _f(20, "size of the latent z (hvae: channels of each latent group's feature map)")
    mixtures: int = _f(5, "logistic-mixture: components per sub-pixel")
    conditional: bool = _f(False, "conditional VAE: encoder and decoder also see the one-hot label")
    prior: str = _f("auto", priors.help_text(), priors.names)
    flow: str = _f("none", flows.help_text(), flows.names)
    objective: str = _f("vae", objectives.help_text(), objectives.names)
    epochs: int = _f(30, "number of passes over the training set")
    batch_size: int = _f(128, "global batch: examples per optimisation step, split evenly over the devices")
    lr: float = _f(1e-3, "Adam learning rate (the peak, with a schedule)")
    lr_schedule: str = _f(
        "constant", "learning rate after the warm-up: constant, or cosine decay to 0 at the last step", LR_SCHEDULES
    )
    warmup_steps: int = _f(0, "steps of linear learning-rate warm-up from 0")
    weight_decay: float = _f(0.0, "decoupled weight decay (AdamW) when > 0")
    clip_norm: float = _f(0.0, "clip each gradient to this global norm when > 0")
    skip_threshold: float = _f(
        0.0,
        "skip an update whose gradient norm is above this many times its running average when > 0 (VDVAE's "
        "skip threshold, relative); skipped updates are counted in metrics.jsonl",
    )
    ema: float = _f(
        0.0,
        "keep an exponential moving average of the params with this decay (e.g. 0.999) when > 0; "
        "sample.py, evaluate.py and vae_jax.load use it (--no-ema for the raw params)",
    )
    binarize: str = _f("dynamic", "bernoulli only: fresh binarization each epoch, or one fixed draw", BINARIZE)
    seed: int = _f(0, "root of every random key of the run")
    workdir: str = _f("checkpoints", "where checkpoints, metrics and images go")
    keep: int = _f(3, "number of most recent checkpoints kept (the best one is always kept too)")
    eval_k: int = _f(100, "importance samples per test image in the log-likelihood estimate that ends training")
    max_bad_steps: int = _f(
        10, "stop after this many consecutive steps with a non-finite loss or gradient (each is skipped)"
    )
    checkpoint_every_steps: int = _f(0, "also checkpoint every this many steps inside an epoch (0: at epoch ends only)")
    tracker: str = _f(
        "",
        "also log the run to these experiment trackers (repeat the flag, or separate by commas): mlflow "
        "(MLFLOW_TRACKING_URI: a server, or MLflow's local store), wandb (WANDB_MODE=offline needs no login); "
        "a tracker that fails is one warning: the run's own files stay its record (docs/tracking.md)",
    )
    dtype: str = _f(
        "float32",
        "what the networks compute in; params, optimizer state, KL and log-likelihood sums stay float32",
        DTYPES,
    )
    matmul_precision: str = _f(
        "default",
        "matmul precision of the training steps: the backend's fast default (TF32 on NVIDIA GPUs, bfloat16 passes "
        "on TPUs), high, or highest (float32); reported numbers always use float32",
        MATMUL_PRECISIONS,
    )


class _Behaviour:
    """Every hyper-parameter of a run, one flag each: the fields of _Own and the options their owners
    declare (families, objectives, priors and flows: each registry's OPTIONS), after the field that
    chooses among them. Written as JSON into each checkpoint."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            choices = f.metadata["choices"]
            if isinstance(choices, tuple) and value not in choices:
                raise UserError(f"--{_flag(f.name)}: {value!r} is not one of {', '.join(choices)}")
            _check_range(f.name, hints[f.name], value)
        if self.dataset not in DATASETS and not self.dataset.endswith(".npz") and not names_a_folder(self.dataset):
            if os.path.isfile(self.dataset):
                raise UserError(f"--dataset {self.dataset}: is a file, not an .npz (nor a folder of images)")
            raise UserError(
                f"--dataset: {self.dataset!r} is not one of {', '.join(DATASETS)}, an .npz file nor a folder"
            )
        known = datasets.known(self.dataset)
        if known and known.binary and self.likelihood not in ("auto", "bernoulli"):
            raise UserError(f"--dataset {self.dataset} is binary: it takes --likelihood bernoulli only")
        for name in "latent_dim epochs batch_size lr sigma keep eval_k mixtures max_bad_steps".split():
            if not getattr(self, name) > 0:
                raise UserError(f"--{_flag(name)} must be positive, got {getattr(self, name)}")
        for owner, _ in OWNERS:
            for option in owner.OPTIONS:
                option.validate(getattr(self, option.name))
        for name in ("warmup_steps", "weight_decay", "clip_norm"):
            if getattr(self, name) < 0:
                raise UserError(f"--{_flag(name)} must be >= 0, got {getattr(self, name)}")
        if 0 < self.skip_threshold <= 1:
            raise UserError(f"--skip-threshold is a factor above 1 (or 0: off), got {self.skip_threshold}")
        if self.skip_threshold < 0:
            raise UserError(f"--skip-threshold must be >= 0, got {self.skip_threshold}")
        if self.stream and not names_a_folder(self.dataset):
            raise UserError(f"--stream reads image folders from disk; --dataset {self.dataset} is read into memory")
        families.check(self)
        if not 0 <= self.ema < 1:
            raise UserError(f"--ema is a decay in [0, 1), got {self.ema}")
        if self.image_size < 0:
            raise UserError(f"--image-size must be >= 0, got {self.image_size}")
        if self.checkpoint_every_steps < 0:
            raise UserError(f"--checkpoint-every-steps must be >= 0, got {self.checkpoint_every_steps}")
        objectives.check(self)
        tracking.check(self.tracker)

    def resolved(self) -> Config:
        """This Config with `--likelihood auto` made concrete from the dataset (what a run trains and saves)."""
        if self.likelihood != "auto":
            return self
        return dataclasses.replace(self, likelihood=datasets.default_likelihood(self.dataset))

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """Rebuild a Config from JSON data, rejecting unknown or ill-typed fields."""
        if not isinstance(d, dict):
            raise UserError("config is not a JSON object")
        hints = typing.get_type_hints(cls)
        unknown = sorted(set(d) - set(hints))
        if unknown:
            raise UserError(f"config has unknown fields: {', '.join(unknown)}")
        values = {}
        for name, value in d.items():
            values[name] = _coerce(name, hints[name], value)
        return cls(**values)

    def differences(self, other: Config) -> list[str]:
        """Fields (other than where/how long to run) that differ, as 'name: old -> new'."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if k not in RUN_LOCATION_FIELDS and a[k] != b[k]]


# whose options join the Config, each after the field that chooses among them
OWNERS = ((families, "latent_dim"), (priors, "prior"), (flows, "flow"), (objectives, "objective"))


def _fields() -> list[tuple[str, Any, Any]]:
    """The Config's fields in flag order: each of _Own's, followed by the options of what it chooses."""
    hints = typing.get_type_hints(_Own)
    out = []
    for f in dataclasses.fields(_Own):
        out.append((f.name, hints[f.name], field(default=f.default, metadata=f.metadata)))
        options = [option for owner, after in OWNERS for option in owner.OPTIONS if (option.after or after) == f.name]
        out += [option.field() for option in options]
    return out


Config = dataclasses.make_dataclass(
    "Config",
    _fields(),
    bases=(_Behaviour,),
    frozen=True,
    namespace={"__doc__": _Behaviour.__doc__, "__module__": __name__},
)


MAX_INT = 2**31 - 1  # sizes and counts: steps are counted in int32
MAX_SEED = 2**63 - 1  # jax.random.key takes a signed 64-bit seed
PATH_FIELDS = ("dataset", "data_dir", "workdir")


def _check_range(name: str, hint: Any, value: Any) -> None:
    """Numbers that every field of its type must satisfy (finite floats, ints in range) and paths
    that can be stored (UTF-8: Orbax and the JSON metadata cannot hold other bytes)."""
    if hint is float and not math.isfinite(value):
        raise UserError(f"--{_flag(name)} must be a finite number, got {value}")
    largest = MAX_SEED if name == "seed" else MAX_INT
    for v in value if hint == tuple[int, ...] else (value,) if hint is int else ():
        if not -largest <= v <= largest:
            raise UserError(f"--{_flag(name)} must be at most {largest}, got {v}")
    if name == "eval_k" and samples_at_most(value):
        raise UserError(f"--eval-k {value}: {samples_at_most(value)}")
    if name == "seed" and value < 0:
        raise UserError(f"--seed must be >= 0, got {value}")
    if name in PATH_FIELDS:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UserError(
                f"--{_flag(name)} {value.encode('utf-8', 'surrogateescape')!r}: the path is not valid UTF-8, "
                "which checkpoints cannot record; rename it"
            ) from None


def _coerce(name: str, hint: Any, value: Any) -> Any:
    if hint == tuple[int, ...]:
        if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif isinstance(value, hint):
        return value
    raise UserError(f"config field {name!r} has the wrong type: {value!r}")


def _flag(name: str) -> str:
    return name.replace("_", "-")
