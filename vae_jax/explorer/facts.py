"""What the explorer's page says of the model: its title, the facts table (dataset, family,
likelihood, latent, training, test NLL where one was measured), the classes, and the sliders; for a
discrete z, its codebook and what is shown instead of the sliders."""

from __future__ import annotations

import json
import os
from typing import Any

from vae_jax import codebook, pretrained, runmeta
from vae_jax.api import Model
from vae_jax.data import datasets
from vae_jax.explorer.codes import NOT_SHOWN
from vae_jax.explorer.inputs import MAX_UPLOAD_BYTES
from vae_jax.explorer.session import Session


def measured_nll(ckpt: str, model: Model) -> str:
    """The test NLL recorded for this model: a shipped model's, or the eval.json evaluate.py wrote
    beside the checkpoint for this step; else how to measure it."""
    name = pretrained.name_of(ckpt)
    if name is not None:
        t = pretrained.record(name)["test"]
        return f"{t['nll']:.2f} +- {t['nll_se']:.2f} nats (importance sampled, k={t['k']}, {t['images']:,} test images)"
    try:
        with open(os.path.join(ckpt, "eval.json")) as f:
            r = json.load(f)
        if r.get("checkpoint_step") == model.step and "nll" in r:
            where = f"{r['n']:,} images of the {r['data']['split']} split"
            return f"{r['nll']:.2f} +- {r['nll_se']:.2f} nats (importance sampled, k={r['k']}, {where})"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return f"not measured for this step: python evaluate.py --ckpt {ckpt}"


def page_info(model: Model, session: Session, ckpt: str) -> dict[str, Any]:
    """The JSON the page starts from (/api/info)."""
    c, vae = model.config, model.vae
    name = pretrained.name_of(ckpt)
    family = f"{model.objective.label}, {c.model}" + (", conditional" if c.conditional else "")
    latent = " + ".join(str(g) for g in vae.groups) + (" (top group explored)" if len(vae.groups) > 1 else "")
    latent = f"{latent} dimensions"
    nll = "none: an autoencoder defines no likelihood" if session.autoencoder else measured_nll(ckpt, model)
    if session.codes is not None:
        latent = "a {}x{} grid of codes ({} dimensions)".format(*session.codes.grid, vae.latent_dim)
        nll = nll if nll.startswith("not measured") else "a bound under the uniform prior over the codes: " + nll
    facts = [
        ["checkpoint", f"{ckpt} (step {model.step})"],
        ["dataset", f"{c.dataset}: {runmeta.data_text(model.meta.data)}"],
        ["family", family],
        ["likelihood", c.likelihood],
        ["latent", latent],
        ["prior", vae.description["prior"]],
        ["posterior", vae.description["posterior"]],
        ["trained", f"{model.epoch} epochs" + (f": {pretrained.record(name)['command']}" if name else "")],
        ["test NLL", nll],
    ]
    if session.codes is not None:
        facts += _codebook_facts(model, session)
    labels = 0 if session.labels is None else int(session.labels.max()) + 1
    return {
        "title": f"{ckpt}: {family} on {c.dataset}",
        "facts": facts,
        "classes": datasets.class_names(c.dataset, vae.n_conditions) if vae.n_conditions else [],
        "label_names": datasets.class_names(c.dataset, max(labels, model.meta.num_classes)) if labels else [],
        "sliders": [{"dim": d, "activity": a} for d, a in zip(session.dims, session.activity)]
        or [{"dim": d, "activity": None} for d in session.dims],
        "activity": session.activity_how,
        "top": vae.groups[0],
        "test_images": 0 if session.images is None else len(session.images),
        "interpolate": session.default_pair(),
        "max_upload_bytes": MAX_UPLOAD_BYTES,
        "discrete": None if session.codes is None else _discrete(session),
    }


def _codebook_facts(model: Model, session: Session) -> list[list[str]]:
    """The facts rows of a discrete z: its codebook, the test images' use of it, a fitted prior's bound."""
    k, d = model.vae.codebook(model.params).shape
    h, w = session.codes.grid
    rows = [["codebook", f"{k} codes of {d} units, one at each of {h}x{w} positions"]]
    if session.codes.usage is not None:
        rows.append(["codes used", "test images: " + codebook.summary(session.codes.usage)])
    if session.codes.fitted is not None:
        r = session.codes.fitted.report
        rows.append(
            [
                "with the PixelCNN",
                f"a bound of {r['test_nll_bound']:.2f} nats ({r['test_bits_per_dim_bound']:.4f} "
                "bits/dim) on the test images' -log p(x)",
            ]
        )
    return rows


def _discrete(session: Session) -> dict[str, Any]:
    """What the page needs of a discrete z: its grid, the test images' use of the codebook, the
    samplers offered and why the map, sliders and interpolation are not shown."""
    return {
        "grid": list(session.codes.grid),
        "usage": session.codes.usage,
        "samplers": session.codes.samplers(),
        "not_shown": NOT_SHOWN,
    }
