"""Config from the command line: one flag per Config field, presets, and JSON config files."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import typing
from typing import Any

from vae_jax.config import Config, _flag
from vae_jax.errors import UserError


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


class _Repeatable(argparse.Action):
    """A flag that may be given several times, its values joined by commas (`--tracker mlflow
    --tracker wandb`); given once, it replaces what a preset or config file set."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option=None):
        given = getattr(namespace, "_repeated", set())
        before = getattr(namespace, self.dest) if self.dest in given else ""
        setattr(namespace, self.dest, ",".join(v for v in (before, values) if v))
        namespace._repeated = given | {self.dest}


REPEATABLE = ("tracker",)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """One --flag per Config field, with its help text, default and choices; and --config / --preset
    (read by `parse`)."""
    parser.add_argument(
        "--config", help="a JSON file of config fields (e.g. a run's config.json); later flags override it"
    )
    parser.add_argument("--preset", help=f"a shipped configuration: {', '.join(presets())}")
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        hint = hints[f.name]
        if hint is bool:
            parser.add_argument(f"--{_flag(f.name)}", dest=f.name, action="store_true", help=f.metadata["help"])
            continue
        kind = _int_tuple if hint == tuple[int, ...] else hint
        default = ",".join(map(str, f.default)) if hint == tuple[int, ...] else f.default
        parser.add_argument(
            f"--{_flag(f.name)}",
            dest=f.name,
            **({"action": _Repeatable} if f.name in REPEATABLE else {}),
            type=kind,
            default=f.default,
            choices=choices() if callable(choices := f.metadata["choices"]) else choices,
            help=f"{f.metadata['help']} (default: {default})",
        )


def from_args(args: argparse.Namespace) -> Config:
    return Config(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Config)})


PRESETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "presets")


def presets() -> list[str]:
    """The names of the shipped presets (the quality table's configurations and the papers' settings of the
    objectives; docs/evaluation.md)."""
    return sorted(f[: -len(".json")] for f in os.listdir(PRESETS) if f.endswith(".json"))


def read_file(path: str) -> dict[str, Any]:
    """A config file: a JSON object of Config fields (some or all; a run's config.json has all)."""
    try:
        with open(path) as f:
            values = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"--config {path}: cannot read as JSON ({getattr(e, 'strerror', None) or e})") from None
    except RecursionError:
        raise UserError(f"--config {path}: cannot read as JSON (nested too deeply)") from None
    if not isinstance(values, dict):
        raise UserError(f"--config {path}: expected a JSON object of config fields")
    return values


def parse(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> tuple[Config, argparse.Namespace]:
    """The Config of a command line: defaults, then `--preset NAME` (whose run goes to runs/NAME
    unless a --workdir is given), then `--config FILE`, then the flags given, each overriding the
    one before. Every value is checked as Config.from_dict checks a checkpoint's."""
    first = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    first.add_argument("--config")
    first.add_argument("--preset")
    files, _ = first.parse_known_args(argv)
    values: dict[str, Any] = {}
    if files.preset:
        if files.preset not in presets():
            raise UserError(f"--preset: {files.preset!r} is not one of {', '.join(presets())}")
        values["workdir"] = os.path.join("runs", files.preset)  # a named run: a folder of its own
        values.update(read_file(os.path.join(PRESETS, files.preset + ".json")))
    if files.config:
        values.update(read_file(files.config))
    if values:
        merged = Config.from_dict({**Config().to_dict(), **values})
        parser.set_defaults(**{name: getattr(merged, name) for name in values})
    args = parser.parse_args(argv)
    return from_args(args), args
