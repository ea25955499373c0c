"""Every entry of the API reference has a docstring and describes each of its parameters: an entry
without a docstring, or a parameter without a description, is a warning, so -W fails the build.

A parameter is described by its `Args:` entry (Google style, turned into `:param name:` by napoleon,
which runs first). The fields of a dataclass or NamedTuple may instead be described where they are
declared, by their `help` metadata (Config's flags) or by a comment on the field's line; those
descriptions are added to the entry as parameters, so the page shows them too.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import re
import tokenize

from sphinx.util import logging

log = logging.getLogger(__name__)
FOREIGN = {"builtins", "typing", "abc", "flax"}  # bases whose fields' comments are not ours to show
FRAMEWORK = {"parent", "name"}  # what flax.linen adds to every Module's fields: Flax's to document, not ours


def field_comments(cls: type) -> dict[str, str]:
    """{field: the comment on its line} of a class body's annotated fields (`name: type = value  # text`)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    comments, depth, field, first = {}, 0, None, None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.INDENT:
            depth += 1
        elif tok.type == tokenize.DEDENT:
            depth -= 1
        elif tok.type == tokenize.NEWLINE:
            field, first = None, None
        elif depth == 1 and first is None and tok.type == tokenize.NAME:
            first = tok.string
        elif depth == 1 and first is not None and field is None and tok.type == tokenize.OP:
            field = first if tok.string == ":" else ""
        elif tok.type == tokenize.COMMENT and field:
            comments.setdefault(field, tok.string.lstrip("#").strip())
    return comments


def _literal(text: str, roles: bool = False) -> str:
    """Plain text as reStructuredText shows it: | and * are markup there, and ` too unless `roles`
    (a field's comment may link a name, :class:`optax.GradientTransformation`; a flag's help may not)."""
    return re.sub(r"([|*\\])" if roles else r"([|*`\\])", r"\\\1", text)


def _fields(obj: type) -> dict[str, str]:
    """What a dataclass's or NamedTuple's fields say of themselves: help metadata, else the line's comment."""
    said = {}
    for cls in reversed(inspect.getmro(obj)):  # a subclass's comment over its base's
        if cls.__module__.split(".")[0] not in FOREIGN:
            said |= {name: _literal(text, roles=True) for name, text in field_comments(cls).items()}
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            if f.metadata.get("help"):
                said[f.name] = _literal(f.metadata["help"])
    return said


def _parameters(what: str, obj) -> list[str]:
    """The names an entry's caller passes: a function's or method's parameters, a class's constructor's."""
    if what in ("class", "exception"):
        if getattr(obj, "_is_protocol", False):
            return []  # a Protocol is not constructed: its fields are described by its docstring
        if not (dataclasses.is_dataclass(obj) or hasattr(obj, "_fields") or "__init__" in vars(obj)):
            return []  # constructed as its base class is (an exception with its message)
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    names = [p.name for p in signature.parameters.values() if p.name not in ("self", "cls")]
    if what == "class" and any(c.__module__.startswith("flax.") for c in inspect.getmro(obj)):
        names = [n for n in names if n not in FRAMEWORK]
    return names


def _returns_something(obj) -> bool:
    """Whether a function's annotation says it returns a value (any return annotation but None)."""
    try:
        annotation = inspect.signature(obj).return_annotation
    except (TypeError, ValueError):
        return False
    return annotation not in (inspect.Signature.empty, None, "None")


def _check(app, what: str, name: str, obj, options, lines: list[str]) -> None:
    if what in ("attribute", "property", "data") or name.rsplit(".", 1)[-1].startswith("_"):
        return  # fields are described by their class's docstring; private names are not documented
    said = app.env.__dict__.setdefault("vae_jax_undescribed", {})
    if not any(line.strip() for line in lines):
        said[name] = [f"{what} {name} has no docstring"]
        return
    text = "\n".join(lines)
    described = set(re.findall(r"^:param (?:[^:]+ )?\\?\*{0,2}\\?\*{0,1}(\w+):", text, re.MULTILINE))
    if what == "class":
        added = {k: v for k, v in _fields(obj).items() if k not in described}
        if added:
            lines.append("")
            lines.extend(f":param {k}: {v}" for k, v in added.items())
            described |= set(added)
    missing = [p for p in _parameters(what, obj) if p not in described]
    said[name] = [f"{what} {name}: parameter {p!r} is not described" for p in missing]
    if what in ("function", "method") and _returns_something(obj) and not re.search(r"^:returns?:", text, re.M):
        said[name].append(f"{what} {name}: what it returns is not described (a Returns: section)")


def _merge(app, env, docnames, other) -> None:
    env.__dict__.setdefault("vae_jax_undescribed", {}).update(getattr(other, "vae_jax_undescribed", {}))


def _report(app, env) -> None:
    """Warn of the entries the pages show (autodoc also reads the members a module imports, then drops them)."""
    shown = env.get_domain("py").objects
    for name, messages in sorted(getattr(env, "vae_jax_undescribed", {}).items()):
        if name in shown:
            for message in messages:
                log.warning(message, type="vae_jax", subtype="docstring")


def setup(app) -> dict:
    app.connect("autodoc-process-docstring", _check)
    app.connect("env-merge-info", _merge)
    app.connect("env-check-consistency", _report)
    return {"parallel_read_safe": True}
