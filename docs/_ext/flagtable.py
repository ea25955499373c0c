"""The ``flags`` directive: a command's flags as a table, read from its own argument parser.

    ```{flags} vae_jax.commands.train
    ```

renders flag, default and meaning of every option of ``make_parser()`` in that module (train.py's
are generated from the `Config` dataclass), so the docs cannot drift from ``--help``.
"""

from __future__ import annotations

import argparse
import importlib
import re

from docutils import nodes
from docutils.parsers.rst import Directive


def rows(parser: argparse.ArgumentParser) -> list[tuple[str, str, str]]:
    """(flags, default, meaning) of every option of a parser but --help, in its order."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        meaning = re.sub(r"\s*\(default: [^()]*(\([^()]*\)[^()]*)*\)$", "", action.help or "")
        if action.choices and not any(str(c) in meaning for c in action.choices):
            meaning += " (" + ", ".join(map(str, action.choices)) + ")"
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            default = "off"
        elif action.default in (None, "", argparse.SUPPRESS):
            default = ""
        elif isinstance(action.default, tuple):
            default = ",".join(map(str, action.default))
        else:
            default = str(action.default)
        out.append((", ".join(action.option_strings), default, meaning))
    return out


def _row(cells: list[nodes.Node]) -> nodes.row:
    """A table row of one paragraph per cell."""
    row = nodes.row()
    for cell in cells:
        entry = nodes.entry()
        entry += nodes.paragraph("", "", cell)
        row += entry
    return row


class Flags(Directive):
    """Renders the flags of ``<module>.make_parser()`` as a three-column table."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        parser = importlib.import_module(self.arguments[0]).make_parser()
        table = nodes.table(classes=["flags"])
        group = nodes.tgroup(cols=3)
        table += group
        for width in (22, 12, 66):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        head += _row([nodes.Text("flag"), nodes.Text("default"), nodes.Text("meaning")])
        group += head
        body = nodes.tbody()
        for flag, default, meaning in rows(parser):
            body += _row(
                [
                    nodes.literal(text=flag),
                    nodes.literal(text=default) if default else nodes.Text(""),
                    nodes.Text(meaning),
                ]
            )
        group += body
        return [table]


def setup(app) -> dict:
    app.add_directive("flags", Flags)
    return {"parallel_read_safe": True}
