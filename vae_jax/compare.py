"""Runs side by side, from their folders alone: python -m vae_jax.compare RUN RUN... [--out FILE].

A table of what differs in their configs, their last epoch's metrics, the final evaluation that
ended training and the numbers evaluate.py wrote (eval.json), and one figure of their test curves.
Reads config.json, metrics.jsonl and eval.json; loads no model.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

from vae_jax import cli, newfiles
from vae_jax.errors import UserError
from vae_jax.visualize import save_figure

LAST_EPOCH = ("train_loss", "test_elbo", "test_recon", "test_kl", "test_loss", "seconds")
EVALUATION = ("nll", "nll_se", "bits_per_dim", "elbo", "recon", "kl", "active_units", "k", "mse_per_pixel")
CURVES = {"test_elbo": "test ELBO", "test_recon": "test reconstruction log p(x|z)"}  # the first all runs have is drawn


def read_run(folder: str) -> dict[str, Any]:
    """What a run's folder says of it.

    Args:
        folder: a run's folder (train.py's --workdir).

    Returns:
        {'config': config.json's fields, 'epochs': metrics.jsonl's epoch records, 'evaluation': the
        final evaluation's numbers (or {}), 'eval.json': evaluate.py's result (or {})}.

    Raises:
        UserError: `folder` is no run's folder, or its files cannot be read.
    """
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: no such folder")
    paths = {name: os.path.join(folder, name) for name in ("config.json", "metrics.jsonl", "eval.json")}
    if not os.path.exists(paths["metrics.jsonl"]):
        raise UserError(f"{folder}: holds no run (no metrics.jsonl); give the --workdir of a run")
    try:
        config = _json(paths["config.json"]) if os.path.exists(paths["config.json"]) else {}
        with open(paths["metrics.jsonl"]) as f:
            records = [json.loads(line) for line in f if line.strip()]
        evaluated = _json(paths["eval.json"]) if os.path.exists(paths["eval.json"]) else {}
    except (OSError, ValueError) as e:
        raise UserError(f"{folder}: cannot read its run files ({getattr(e, 'strerror', None) or e})") from None
    epochs = {r["epoch"]: r for r in records if "evaluation" not in r and "epoch" in r}  # a repeated epoch: its last
    final = [r["evaluation"] for r in records if "evaluation" in r]
    return {
        "config": config,
        "epochs": [epochs[e] for e in sorted(epochs)],
        "evaluation": final[-1] if final else {},
        "eval.json": evaluated,
    }


def _json(path: str) -> dict[str, Any]:
    with open(path) as f:
        value = json.load(f)
    if not isinstance(value, dict):
        raise ValueError(f"{os.path.basename(path)} is not a JSON object")
    return value


def labels(folders: list[str]) -> list[str]:
    """Short names of the runs: each folder's name, or its path where two names agree."""
    names = [os.path.basename(os.path.normpath(f)) for f in folders]
    return names if len(set(names)) == len(names) else [os.path.normpath(f) for f in folders]


def table(runs: list[dict[str, Any]], names: list[str]) -> str:
    """The text table of `runs` (read_run's) headed by `names`: the config fields that differ, the
    last epoch's metrics, the final evaluation and eval.json's numbers (rows no run has left out)."""
    rows: list[tuple[str, list[str]]] = []
    configs = [r["config"] for r in runs]
    keys = sorted({k for c in configs for k in c})
    differ = [k for k in keys if k != "workdir" and len({json.dumps(c.get(k)) for c in configs}) > 1]
    rows.append(("config (what differs)", [""] * len(runs)) if differ else ("config: the same", [""] * len(runs)))
    rows += [(f"  {k}", [_text(c.get(k, "-")) for c in configs]) for k in differ]
    sections = (
        ("last epoch (metrics.jsonl)", [r["epochs"][-1] if r["epochs"] else {} for r in runs], ("epoch",) + LAST_EPOCH),
        ("final evaluation (metrics.jsonl)", [r["evaluation"] for r in runs], EVALUATION),
        ("evaluate.py (eval.json)", [r["eval.json"] for r in runs], EVALUATION),
    )
    for title, values, names_of in sections:
        present = [k for k in names_of if any(isinstance(v.get(k), (int, float)) for v in values)]
        if present:
            rows.append((title, [""] * len(runs)))
            rows += [(f"  {k}", [_text(v.get(k, "-")) for v in values]) for k in present]
    first = max(len(label) for label, _ in rows)
    widths = [max(len(n), *(len(cells[i]) for _, cells in rows)) for i, n in enumerate(names)]
    lines = [" ".join([" " * first, *(n.rjust(w) for n, w in zip(names, widths))])]
    for label, cells in rows:
        lines.append(" ".join([label.ljust(first), *(c.rjust(w) for c, w in zip(cells, widths))]).rstrip())
    return "\n".join(lines)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 100 else f"{value:.4f}"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def curves(runs: list[dict[str, Any]], names: list[str]):
    """A matplotlib Figure of the runs' test ELBO per epoch (their test reconstruction term where a
    run has no ELBO: models that define no likelihood), one line each."""
    import matplotlib.ticker
    from matplotlib.figure import Figure

    key = next((k for k in CURVES if all(r["epochs"] and k in r["epochs"][0] for r in runs)), None)
    if key is None:
        raise UserError("the runs have no test metric in common to draw (test_elbo or test_recon)")
    fig = Figure(figsize=(7, 4.2), dpi=100)
    ax = fig.subplots()
    for run, name in zip(runs, names):
        points = [(r["epoch"], r[key]) for r in run["epochs"] if math.isfinite(r.get(key, math.nan))]
        ax.plot(*zip(*points), marker=".", label=name)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel(f"{CURVES[key]} (nats)")
    ax.set_title(f"{CURVES[key]} per epoch (higher is better)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def make_parser() -> cli.Parser:
    """The compare command's flags."""
    parser = cli.Parser(prog="python -m vae_jax.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders (train.py's --workdir), two or more")
    parser.add_argument(
        "--out", help="the figure of test curves to write, never overwritten (default: compare.png here, numbered)"
    )
    return parser


def run(argv: list[str] | None = None) -> None:
    """Print the table of the runs `argv` names and write the figure of their test curves."""
    args = make_parser().parse_args(argv)
    if len(args.runs) < 2:
        raise UserError("give two run folders or more")
    runs = [read_run(folder) for folder in args.runs]
    names = labels(args.runs)
    path, numbered = newfiles.choose(args.out, "compare.png", ".png")
    figure = curves(runs, names)
    print(table(runs, names))
    path = newfiles.write_new(path, lambda tmp: save_figure(tmp, figure), numbered)
    print(f"test curves: {path}", file=sys.stderr)


def main() -> None:
    """`python -m vae_jax.compare`: errors are one line and exit status 2."""
    cli.main(run)


if __name__ == "__main__":
    main()
