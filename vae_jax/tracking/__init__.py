"""A run logged to experiment trackers as well (`--tracker mlflow,wandb`): its config as parameters,
every epoch's metrics at its step with its pictures, the final evaluation, and what it ran on.

The run's own files (metrics.jsonl, the pictures, checkpoints) stay its record: a tracker that
cannot be reached, or fails mid-run, is one warning and the run goes on without it. The trackers'
run ids and the last step each received are kept in the run's folder (`tracking.json`), so that
a resumed run continues the same tracker runs and each epoch reaches a tracker once: what a
tracker missed (an earlier invocation without it, one killed before it logged) is sent from
metrics.jsonl when the run resumes.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import math
import os
from typing import Any, Protocol

from vae_jax import newfiles
from vae_jax.errors import UserError

log = logging.getLogger("vae_jax")

TRACKERS = {"mlflow": "MLflow", "wandb": "Weights & Biases"}  # --tracker names, the extras that install them
STATE_FILE = "tracking.json"


class Backend(Protocol):
    """One tracker's run, as `Tracking` uses it (mlflow_run.MlflowRun, wandb_run.WandbRun)."""

    where: str  # where its runs go, in words (a tracking URI, a W&B project and mode)

    def start(self, saved: dict[str, Any], name: str, config: dict[str, Any], facts: dict[str, str]) -> str:
        """Start a run, or continue the one `saved` (this tracker's entry of tracking.json) names.

        Args:
            saved: {'id', 'where', ...} of the run an earlier invocation started (empty: none).
            name: the run's name (its folder's).
            config: the run's Config as a dict.
            facts: what the run ran on, as tags (facts()).

        Returns:
            The tracker's id of the run.
        """

    def log(self, metrics: dict[str, float], step: int, pictures: dict[str, str]) -> None:
        """Log `metrics` at global `step`, and the picture files `pictures` ({name: path})."""

    def summary(self, metrics: dict[str, float], step: int) -> None:
        """Log the final evaluation's numbers at global `step`."""

    def finish(self, status: str, files: dict[str, str]) -> None:
        """End the run with `status` ('FINISHED', 'KILLED', 'FAILED'), adding the files `files`."""


def check(names: str) -> None:
    """Refuse (UserError) a --tracker value that names an unknown tracker or one not installed.

    Args:
        names: the comma-separated tracker names ('' for none).
    """
    for name in parse(names):
        if name not in TRACKERS:
            raise UserError(f"--tracker: {name!r} is not one of {', '.join(TRACKERS)}")
        if importlib.util.find_spec(name) is None:
            raise UserError(f"--tracker {name}: the {name} package is not installed: pip install 'vae_jax[{name}]'")


def parse(names: str) -> list[str]:
    """The tracker names of a --tracker value, in order, each once."""
    return list(dict.fromkeys(n.strip() for n in names.split(",") if n.strip()))


def facts(workdir: str, data: dict[str, Any], params: Any) -> dict[str, str]:
    """What a run ran on, as tracker tags: its checkpoint folder, its data's source and digests,
    its parameter count and the machine (backend, devices, processes).

    Args:
        workdir: the run's folder.
        data: the run's data fields (runmeta.DATA_FIELDS: data_source, train_size, digests).
        params: the model's parameters (a pytree of arrays or shapes).

    Returns:
        {tag: text}.
    """
    import jax  # here: the flags check tracker names (config.py) before JAX is imported

    from vae_jax.memory import parameter_count

    devices = jax.devices()
    return {
        "checkpoints": os.path.abspath(workdir),
        **{k: str(v) for k, v in data.items()},
        "parameters": str(parameter_count(params)),
        "backend": jax.default_backend(),
        "devices": f"{len(devices)} x {devices[0].device_kind}",
        "processes": str(jax.process_count()),
        "vae_jax": _version(),
    }


def numbers(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers of a metrics.jsonl record or an evaluation (not flags, counts of images or
    words), keys prefixed."""
    return {
        prefix + k: float(v)
        for k, v in record.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step" and math.isfinite(v)
    }


class Tracking:
    """The trackers of one run (none when `names` is empty or not `enabled`: the other processes of
    a multi-process run). Every call to a tracker that raises is one warning, after which that
    tracker is left out for the rest of the run."""

    def __init__(self, names: str, workdir: str, enabled: bool = True):
        self.names = parse(names) if enabled else []
        self.path = os.path.join(workdir, STATE_FILE)
        self.name = os.path.basename(os.path.normpath(os.path.abspath(workdir)))
        self.workdir = workdir
        self.backends: dict[str, Backend] = {}
        self.state: dict[str, dict[str, Any]] = {}
        self.unsaved = False  # a write of tracking.json failed (said once)

    def start(
        self, config: dict[str, Any], facts: dict[str, str], records: list[tuple[dict[str, Any], dict[str, str]]]
    ) -> None:
        """Start (or continue) each tracker's run, then send it the `records` of metrics.jsonl it has
        not received yet.

        Args:
            config: the run's Config as a dict.
            facts: what the run ran on (facts()).
            records: metrics.jsonl's records so far, each with its picture files ({name: path}).
        """
        if not self.names:
            return
        self.state = _read(self.path)
        for name in self.names:
            backend = self._call(name, _backend, name, self.workdir)
            if backend is None:
                continue
            saved = self.state.get(name, {})
            if saved.get("where") != backend.where:
                saved = {}  # another tracking URI or project: a new run there, sent every record
            run_id = self._call(name, backend.start, saved, self.name, config, facts)
            if run_id is None:
                continue
            self.backends[name] = backend
            progress = {k: saved[k] for k in ("step", "evaluated") if k in saved}
            self.state[name] = {"id": run_id, "where": backend.where, **progress}
            went_on = "continuing" if saved.get("id") == run_id else "started"
            log.info("tracking: %s %s run %s (%s)", went_on, TRACKERS[name], run_id, backend.where)
        self._save()
        for record, pictures in records:
            self.record(record, pictures)

    def record(self, record: dict[str, Any], pictures: dict[str, str]) -> None:
        """Send a metrics.jsonl record (an epoch's, or the final evaluation's) to each tracker that
        has not received it, with the picture files `pictures` ({name: path}) of an epoch."""
        step = record.get("step")
        if not isinstance(step, int):
            return  # not a record of this version's runs: nothing to place it at
        for name, backend in list(self.backends.items()):
            done = self.state[name]
            if "evaluation" in record:
                if done.get("evaluated") != step and self._call(
                    name, backend.summary, numbers(record["evaluation"], "eval_"), step
                ):
                    self._done(name, evaluated=step)
            elif step > done.get("step", -1):
                if self._call(name, backend.log, numbers(record), step, pictures):
                    self._done(name, step=step)

    def finish(self, status: str, files: dict[str, str]) -> None:
        """End each tracker's run with `status` ('FINISHED', 'KILLED', 'FAILED'), adding `files`."""
        for name, backend in list(self.backends.items()):
            self._call(name, backend.finish, status, files)
        self.backends = {}

    def _done(self, name: str, **progress: int) -> None:
        self.state[name].update(progress)
        self._save()

    def _save(self) -> None:
        """Write tracking.json; a failure (a full disk) is one warning, not the run's end."""
        try:
            newfiles.replace(self.path, lambda tmp: _write(tmp, self.state))
        except UserError as e:
            if not self.unsaved:
                log.warning("tracking: cannot write %s (%s); a resumed run may send epochs again", self.path, e)
            self.unsaved = True

    def _call(self, name: str, fn: Any, *args: Any) -> Any:
        """fn(*args) (True where it returns None), or None after one warning, `name` left out, if it raises."""
        try:
            result = fn(*args)
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            log.warning(
                "tracking: %s failed (%s: %s); the run goes on without it, its own files (metrics.jsonl, the "
                "pictures, checkpoints) stay the record and the same command sends what it missed",
                TRACKERS[name],
                type(e).__name__,
                first,
            )
            self.backends.pop(name, None)
            return None
        return True if result is None else result


def _version() -> str:
    try:
        return importlib.metadata.version("vae_jax")
    except importlib.metadata.PackageNotFoundError:  # the source folder, not installed
        return "not installed"


def _backend(name: str, workdir: str) -> Backend:
    """A tracker's run object (its package imported here, when a run asks for it)."""
    if name == "mlflow":
        from vae_jax.tracking.mlflow_run import MlflowRun

        return MlflowRun()
    from vae_jax.tracking.wandb_run import WandbRun

    return WandbRun(workdir)


def _read(path: str) -> dict[str, Any]:
    try:
        with open(path) as f:
            state = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("%s: unreadable (%s); the trackers start new runs", path, e)
        return {}
    return state if isinstance(state, dict) else {}


def _write(path: str, state: dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump(state, f, indent=1)
        f.write("\n")
