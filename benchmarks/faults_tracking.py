"""benchmarks/faults.py's probes of the tracking surfaces (item 43): --tracker with an unknown name, a
tracking server that does not answer, tracking.json damaged or a folder, and `python -m vae_jax.compare`
on a damaged run and onto a figure that exists."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from faults_setup import Probe, run

NO_SERVER = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}  # the discard port: nothing listens there
OFFLINE = {"WANDB_MODE": "offline"}


def probes(
    tmp: str, base: str, copy: Callable[[str], str], flags: list[str]
) -> list[tuple[str, str, Callable[[], Probe]]]:
    """(item, what, probe) of the tracking surfaces; `base` is a finished run of `flags`, `copy(name)` a
    fresh copy of it."""

    def more(w: str, tracker: str, env: dict[str, str]) -> Probe:
        """One more epoch of a copy of the base run, logged to `tracker`."""
        return run("train.py", *flags, "--epochs", "3", "--workdir", w, "--tracker", tracker, env=env)

    def unknown() -> Probe:
        w = os.path.join(tmp, "tracker-unknown")
        p = run("train.py", *flags, "--workdir", w, "--tracker", "mlflow,comet")
        return p.expect(2, contains="'comet' is not one of mlflow, wandb", check=not os.path.exists(w))

    def no_server() -> Probe:
        w = copy("tracker-no-server")
        p = more(w, "mlflow", NO_SERVER)
        said = [line for line in p.stderr.splitlines() if "failed" in line]
        trained = [json.loads(line).get("epoch") for line in open(os.path.join(w, "metrics.jsonl"))]
        return p.expect(0, contains="tracking: MLflow failed", last=False, check=len(said) == 1 and 3 in trained)

    def damaged_state(as_folder: bool) -> Callable[[], Probe]:
        def probe() -> Probe:
            w = copy(f"tracker-state-{'folder' if as_folder else 'garbage'}")
            state = os.path.join(w, "tracking.json")
            if as_folder:
                os.makedirs(state)
            else:
                open(state, "wb").write(b"\x00not json{")
            p = more(w, "wandb", OFFLINE)
            runs = os.listdir(os.path.join(w, "wandb")) if os.path.isdir(os.path.join(w, "wandb")) else []
            check = any(r.startswith("offline-run-") for r in runs) and os.path.isdir(state) == as_folder
            return p.expect(0, contains="tracking.json: unreadable", last=False, check=check)

        return probe

    def compare_damaged() -> Probe:
        w = copy("compare-damaged")
        with open(os.path.join(w, "metrics.jsonl"), "a") as f:
            f.write('{"epoch": 3, "step":\n')
        return run("-m", "vae_jax.compare", base, w).expect(2, contains="cannot read its run files", max_lines=1)

    def compare_onto_a_file() -> Probe:
        out = os.path.join(tmp, "compare-existing.png")
        open(out, "wb").write(b"mine")
        p = run("-m", "vae_jax.compare", base, base, "--out", out)
        return p.expect(2, contains="exists", max_lines=1, check=open(out, "rb").read() == b"mine")

    return [
        ("43", "--tracker mlflow,comet", unknown),
        ("43", "--tracker mlflow, no server at MLFLOW_TRACKING_URI", no_server),
        ("43", "tracking.json garbage, --tracker wandb", damaged_state(False)),
        ("43", "tracking.json a folder, --tracker wandb", damaged_state(True)),
        ("43", "compare: a half-written metrics.jsonl line", compare_damaged),
        ("43", "compare --out an existing file", compare_onto_a_file),
    ]
