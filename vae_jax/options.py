"""Options that belong to one choice among several (an objective's, a prior's, a flow's): a Config
field that only some choices read is refused where the chosen one does not read it, rather than
ignored. Knows Configs only as frozen dataclasses."""

from __future__ import annotations

from typing import Any

from vae_jax.errors import UserError


def changed(config: Any, name: str) -> bool:
    """Whether `config` sets field `name` to something other than its default."""
    return getattr(config, name) != type(config).__dataclass_fields__[name].default


def refuse_unread(config: Any, flag: str, chosen: str, readers: dict[str, tuple[str, ...]]) -> None:
    """Refuse a field that some choice of `flag` reads (readers: choice -> the fields it reads), that
    the choice `chosen` does not read, and that `config` changes from its default."""
    read = set(readers.get(chosen, ()))
    for name in sorted({o for fields in readers.values() for o in fields} - read):
        if changed(config, name):
            owners = " or ".join(n for n, fields in readers.items() if name in fields)
            raise UserError(f"--{name.replace('_', '-')} applies to {flag} {owners} only, not {flag} {chosen}")
