"""Every entry of the API reference has a docstring: one without is a warning, so -W fails the build."""

from __future__ import annotations

from sphinx.util import logging

log = logging.getLogger(__name__)


def _check(app, what: str, name: str, obj, options, lines: list[str]) -> None:
    if what in ("attribute", "property", "data") or name.rsplit(".", 1)[-1].startswith("_"):
        return  # fields are described by their class's docstring; private names are not documented
    if not any(line.strip() for line in lines):
        log.warning(f"{what} {name} has no docstring", type="vae_jax", subtype="docstring")


def setup(app) -> dict:
    app.connect("autodoc-process-docstring", _check)
    return {"parallel_read_safe": True}
