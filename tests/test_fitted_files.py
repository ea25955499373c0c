"""A stored fitted sampler is used only when it is what its name says: a damaged file (bytes flipped,
truncated, empty, a changed record or array) or one fitted to another model is moved aside with one
warning and the sampler is fitted again, to the same mixture."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil

import jax
import numpy as np
import pytest

import vae_jax
from vae_jax import fitted
from vae_jax.errors import UserError


@pytest.fixture(scope="module")
def stored(tiny_run, tmp_path_factory):
    """(model, ckpt folder, the bytes of its stored 2-component sampler, the mixture fitted)."""
    ckpt = str(tmp_path_factory.mktemp("fitted") / "run")
    shutil.copytree(tiny_run.workdir, ckpt)
    model = vae_jax.load(ckpt)
    first = fitted.load_or_fit(model, ckpt, components=2)
    with open(first.path, "rb") as f:
        return model, ckpt, f.read(), first


def _refit(stored, damage, caplog) -> tuple[fitted.Fitted, list[str]]:
    """Store the file damaged by `damage(bytes) -> bytes`, load it again: (what was used, the set-aside files)."""
    model, ckpt, original, _ = stored
    path = fitted.path_of(ckpt, model, components=2)
    for name in os.listdir(ckpt):
        if name.startswith("set-aside-"):
            os.remove(os.path.join(ckpt, name))
    with open(path, "wb") as f:
        f.write(damage(original))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vae_jax"):
        used = fitted.load_or_fit(model, ckpt, components=2)
    return used, sorted(name for name in os.listdir(ckpt) if name.startswith("set-aside-"))


def _same_mixture(a: fitted.Fitted, b: fitted.Fitted) -> bool:
    same = a.state.keys() == b.state.keys() and all(np.array_equal(x, b.state[k]) for k, x in a.state.items())
    return same and a.report["components"] == b.report["components"]


def _flip(offset_fraction: float):
    def damage(data: bytes) -> bytes:
        i = int(offset_fraction * (len(data) - 1))
        return data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1 :]

    return damage


@pytest.mark.parametrize("fraction", np.linspace(0.0, 1.0, 10).round(3).tolist())
def test_a_flipped_byte_anywhere_sets_the_file_aside_and_fits_again(stored, caplog, fraction):
    used, aside = _refit(stored, _flip(fraction), caplog)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert _same_mixture(used, stored[3]) and np.isfinite(used.state["means"]).all()
    if not aside:  # a flip in the zip's framing that changes none of what it holds (its comment's length)
        assert not warnings and used.report == stored[3].report and "read" in caplog.text
        return
    assert len(aside) == 1 and len(warnings) == 1 and "moved to" in warnings[0] and "\n" not in warnings[0]
    assert _same_mixture(fitted.read(used.path, stored[0], components=2), used)  # fitted again and stored whole


@pytest.mark.parametrize("damage", [lambda d: d[: len(d) // 2], lambda d: b"", lambda d: d[:-1]])
def test_a_truncated_or_empty_file_sets_it_aside(stored, caplog, damage):
    used, aside = _refit(stored, damage, caplog)
    assert len(aside) == 1 and _same_mixture(used, stored[3])
    assert "cannot be read" in caplog.text or "does not match the digest" in caplog.text


def _rewritten(change):
    """The stored file with its arrays and record changed by `change(arrays, record)`, saved as npz."""

    def damage(data: bytes) -> bytes:
        import io

        with np.load(io.BytesIO(data)) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
        record = json.loads(str(arrays["record"]))
        change(arrays, record)
        arrays["record"] = np.array(json.dumps(record))
        out = io.BytesIO()
        np.savez(out, **arrays)
        return out.getvalue()

    return damage


def _nan_means(arrays, record):
    arrays["means"] = np.full_like(arrays["means"], np.nan)


def _key_missing(arrays, record):
    del record["report"]["test_images"]


def test_nan_means_or_a_record_missing_a_key_are_damage(stored, caplog):
    for change in (_nan_means, _key_missing):
        used, aside = _refit(stored, _rewritten(change), caplog)
        assert len(aside) == 1 and "does not match the digest" in caplog.text and _same_mixture(used, stored[3])


def test_the_file_of_another_model_is_not_used(stored, caplog, tmp_path):
    model, ckpt, _, first = stored
    other = dataclasses.replace(model, params=jax.tree.map(lambda a: a * 1.01, model.params))
    theirs = fitted.load_or_fit(other, str(tmp_path), components=2)  # the same step and latent size
    with open(theirs.path, "rb") as f:
        foreign = f.read()
    used, aside = _refit(stored, lambda _: foreign, caplog)
    assert len(aside) == 1 and "was fitted to another model" in caplog.text and _same_mixture(used, first)


def test_a_folder_in_the_files_place_is_one_clear_error(stored, tmp_path):
    model, ckpt, _, _ = stored
    os.makedirs(fitted.path_of(str(tmp_path), model, components=2))
    with pytest.raises(UserError, match="cannot be moved aside"):
        fitted.load_or_fit(model, str(tmp_path), components=2)


def test_a_mixture_stored_before_samplers_had_names_is_read_as_the_mixture(stored, caplog, tmp_path):
    """A file whose record names no sampler (as every mixture was stored before there were others)."""
    from vae_jax import integrity

    model, ckpt, original, first = stored

    def unnamed(arrays, record):
        report = record["report"]
        report["em_log_likelihood"] = report.pop("fit_log_likelihood")
        del report["sampler"], report["fitted"]
        sealed = integrity.sealed({k: v for k, v in record.items() if k != fitted.SEAL}, fitted.SEAL)
        record.clear()
        record.update(sealed)

    used, aside = _refit(stored, _rewritten(unnamed), caplog)
    assert not aside and "read" in caplog.text and _same_mixture(used, first)
    assert used.report["sampler"] == "gmm" and "2-component Gaussian mixture" in fitted.summary(used.report)
    with pytest.raises(fitted.Unusable, match="holds --sampler gmm"):
        fitted.read(used.path, model, "maf")
