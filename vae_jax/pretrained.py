"""Trained models shipped with the package, opened by name: `vae_jax.load("pretrained:fashion-conv")`,
`sample.py --ckpt pretrained:fashion-conv`, `explore.py --pretrained fashion-conv`.

Each is two files in vae_jax/weights/: NAME.npz, the parameters samplers use (float32, one array
per leaf, named by its path in the pytree), and NAME.json: the run's metadata (runmeta schema: the
Config, image shape, classes, what it trained on), the step, the npz file's sha256, the command
that trained it, and its test NLL as measured (the whole test split, and the first test images,
which tests measure again), sealed with the sha256 of all that. Both digests are checked on every
load. JAX is imported where it is used: `--help` of
the commands that name these does not wait for it."""

from __future__ import annotations

import hashlib
import io
import json
import os
from importlib import resources
from typing import TYPE_CHECKING, Any

from vae_jax import integrity, runmeta
from vae_jax.errors import UserError
from vae_jax.runmeta import RunMeta

if TYPE_CHECKING:
    from vae_jax.latent import Params

PREFIX = "pretrained:"
FORMAT = 2  # 2: the record is sealed with its digest (SEAL), as the parameters file is by params_sha256
SEAL = "sha256"


def _folder():
    return resources.files("vae_jax").joinpath("weights")


def names() -> list[str]:
    """The models shipped with the package.

    Returns:
        Their names, sorted (load one with vae_jax.load("pretrained:NAME")).
    """
    return sorted(f.name[: -len(".json")] for f in _folder().iterdir() if f.name.endswith(".json"))


def name_of(path: str) -> str | None:
    """The name in a path written 'pretrained:NAME'.

    Args:
        path: a path or 'pretrained:NAME'.

    Returns:
        NAME, or None for any other path.
    """
    return path[len(PREFIX) :] if str(path).startswith(PREFIX) else None


def record(name: str) -> dict[str, Any]:
    """What NAME.json says of a shipped model, once it matches its digest (UserError naming the others
    when there is none, and saying it is damaged when it does not match).

    Args:
        name: the shipped model's name (`names()`), e.g. 'fashion-mlp'.

    Returns:
        The record (the command that trained it, its measured test NLLs, its run metadata).
    """
    if name not in names():
        raise UserError(f"{PREFIX}{name}: there is no such shipped model; there are {', '.join(names())}")
    damaged = f"{PREFIX}{name}: its record {name}.json is damaged"
    try:
        saved = json.loads(_folder().joinpath(f"{name}.json").read_bytes())
    except (OSError, ValueError, RecursionError) as e:
        raise UserError(f"{damaged} ({type(e).__name__}); reinstall vae_jax") from None
    if not integrity.is_sealed(saved, SEAL):
        raise UserError(f"{damaged} (it does not match its sha256); reinstall vae_jax")
    if saved.get("format") != FORMAT:
        raise UserError(f"{PREFIX}{name}: written in format {saved.get('format')}; this version reads {FORMAT}")
    return saved


def load(name: str) -> tuple[int, RunMeta, Params]:
    """A shipped model, its file's digest checked.

    Args:
        name: the shipped model's name (`names()`), e.g. 'fashion-mlp'.

    Returns:
        (step, run metadata, parameters).
    """
    import jax
    import numpy as np

    from vae_jax.families import build

    saved = record(name)
    data = _folder().joinpath(f"{name}.npz").read_bytes()
    if hashlib.sha256(data).hexdigest() != saved.get("params_sha256"):
        raise UserError(f"{PREFIX}{name}: its parameters file is damaged (sha256 differs); reinstall vae_jax")
    try:
        meta = runmeta.from_json(saved.get("run"), PREFIX + name)
    except runmeta.Unreadable as e:
        raise UserError(f"{PREFIX}{name}: {e}; reinstall vae_jax") from None
    vae = build(meta.config, meta.image_shape, meta.num_classes)
    like = jax.eval_shape(lambda: vae.init(jax.random.key(0)))  # the key traced: nothing compiled
    with np.load(io.BytesIO(data)) as arrays:
        leaves = [arrays[jax.tree_util.keystr(path)] for path, _ in jax.tree_util.tree_leaves_with_path(like)]
    for leaf, want in zip(leaves, jax.tree.leaves(like)):
        if leaf.shape != want.shape:
            raise UserError(f"{PREFIX}{name}: a parameter of shape {leaf.shape} where the model has {want.shape}")
    return (
        int(saved["step"]),
        meta,
        # device_put, not jnp.asarray: no conversion program compiled for each shape before the model can be used
        jax.tree.unflatten(
            jax.tree.structure(like),
            [jax.device_put(np.asarray(v, w.dtype)) for v, w in zip(leaves, jax.tree.leaves(like))],
        ),
    )


def export(
    params: Params, meta: RunMeta, step: int, folder: str, name: str, command: str, numbers: dict[str, Any]
) -> list[str]:
    """Write a trained model as a shipped model, NAME.npz and NAME.json.

    Args:
        params: its parameters.
        meta: its run's metadata.
        step: the checkpoint step they are from.
        folder: where the two files are written.
        name: the shipped model's name.
        command: the command that trained it.
        numbers: its measured test NLLs, {'test': ..., 'check': ...}.

    Returns:
        The paths written.
    """
    import jax
    import numpy as np

    arrays = {
        jax.tree_util.keystr(path): np.asarray(leaf, np.float32)
        for path, leaf in jax.tree_util.tree_leaves_with_path(params)
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    data = buffer.getvalue()
    meta = meta.at(meta.epoch, {})  # the digests of the Orbax step do not apply
    saved = {
        "format": FORMAT,
        "name": name,
        "run": meta.to_json(),
        "step": step,
        "params_sha256": hashlib.sha256(data).hexdigest(),
        "command": command,
        "trained_on": runmeta.data_text(meta.data),
        **numbers,
    }
    saved = integrity.sealed(saved, SEAL)
    paths = [os.path.join(folder, f"{name}.npz"), os.path.join(folder, f"{name}.json")]
    with open(paths[0], "wb") as f:
        f.write(data)
    with open(paths[1], "w") as f:
        json.dump(saved, f, indent=1)
    return paths
