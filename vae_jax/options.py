"""Options that belong to one choice among several (an objective's, a prior's, a flow's): a Config
field that only some choices read is refused where the chosen one does not read it, rather than
ignored. Knows Configs only as frozen dataclasses."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
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


MAX_K = 10**6  # importance samples per image: 10^6 on 10,000 test images is 10^10 decoder passes (hours on a GPU)


def samples_at_most(value: int) -> str | None:
    """What is wrong with `value` importance samples per image (None: nothing)."""
    return f"at most {MAX_K:,} importance samples per image (each is a decoder pass)" if value > MAX_K else None


@dataclass(frozen=True)
class Option:
    """A Config field (one flag) declared by the registry of what reads it (a family, an objective, a
    prior, a flow), with the rules its values follow: the Config is assembled from these and its own
    fields (config.py), so adding one does not touch config.py."""

    name: str
    default: Any  # its type is the field's: int, float, bool, str, or a tuple of ints
    help: str
    positive: bool = False  # > 0 (a tuple: one or more sizes, each > 0)
    minimum: float | None = None  # the smallest value allowed
    check: Callable[[Any], str | None] | None = None  # another rule: what is wrong with a value, or None
    after: str | None = None  # the Config field its flag follows (None: the one that chooses its owner)

    @property
    def kind(self) -> Any:
        return tuple[int, ...] if isinstance(self.default, tuple) else type(self.default)

    def field(self) -> tuple[str, Any, Any]:
        """(name, type, dataclasses.field) for dataclasses.make_dataclass."""
        metadata = {"help": self.help, "choices": None}
        return self.name, self.kind, dataclasses.field(default=self.default, metadata=metadata)

    def validate(self, value: Any) -> None:
        """Refuse a value its rules do not allow (UserError, one line)."""
        flag = f"--{self.name.replace('_', '-')}"
        if isinstance(value, tuple):
            if self.positive and (not value or any(s <= 0 for s in value)):
                raise UserError(f"{flag} needs one or more positive sizes, got {value}")
        elif self.positive and not value > 0:
            raise UserError(f"{flag} must be positive, got {value}")
        elif self.minimum is not None and value < self.minimum:
            raise UserError(f"{flag} must be >= {self.minimum:g}, got {value}")
        wrong = self.check(value) if self.check else None
        if wrong:
            raise UserError(f"{flag} {value}: {wrong}")


def imported(build: Callable | str) -> Callable:
    """A registry entry's builder: the function itself, or the "module:function" it names, imported
    now (so that reading flags does not import what building needs)."""
    if isinstance(build, str):
        module, function = build.split(":")
        return getattr(importlib.import_module(module), function)
    return build
