"""A run in MLflow: wherever MLFLOW_TRACKING_URI points (a tracking server, or MLflow's own local
store when it is unset), in the experiment MLFLOW_EXPERIMENT_NAME names (default 'vae_jax').

MLflow retries a request to a server for about four minutes by default; unless the environment
says otherwise (MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_TIMEOUT) a run gives a server
that has gone two retries and 20 s a request, so that a tracker lost mid-run costs seconds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

PATIENCE = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
EXPERIMENT = "vae_jax"
MAX_PARAMS = 100  # per request (MLflow's limit)


@contextlib.contextmanager
def _no_retry_chatter() -> Iterator[None]:
    """urllib3's line per retried request left out: a lost server is said once, by Tracking."""
    pool = logging.getLogger("urllib3.connectionpool")
    level = pool.level
    pool.setLevel(logging.ERROR)
    try:
        yield
    finally:
        pool.setLevel(level)


class MlflowRun:
    """One MLflow run through MlflowClient: parameters and tags at the start, metrics at their
    step, pictures as artifacts under pictures/."""

    def __init__(self) -> None:
        for name, value in PATIENCE.items():
            os.environ.setdefault(name, value)
        import mlflow
        from mlflow import MlflowClient

        self.client = MlflowClient()
        self.where = mlflow.get_tracking_uri()
        self.run_id = ""

    def start(self, saved: dict[str, Any], name: str, config: dict[str, Any], facts: dict[str, str]) -> str:
        """See tracking.Backend.start."""
        from mlflow.entities import Param, RunTag

        params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
        tags = dict(facts)
        with _no_retry_chatter():
            if saved.get("id"):
                run = self.client.get_run(saved["id"])
                self.run_id = run.info.run_id
                self.client.update_run(self.run_id, status="RUNNING")
                logged = run.data.params
                # what may change between invocations of a run (--epochs): tagged, as MLflow's params cannot change
                tags |= {f"resumed_with.{k}": v for k, v in params.items() if k in logged and logged[k] != v}
                params = {k: v for k, v in params.items() if k not in logged}
            else:
                experiment_name = os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
                experiment = self.client.get_experiment_by_name(experiment_name)
                experiment_id = (
                    experiment.experiment_id if experiment else self.client.create_experiment(experiment_name)
                )
                self.run_id = self.client.create_run(experiment_id, run_name=name).info.run_id
            items = list(params.items())
            for i in range(0, max(len(items), 1), MAX_PARAMS):
                chunk = [Param(k, v) for k, v in items[i : i + MAX_PARAMS]]
                self.client.log_batch(
                    self.run_id, params=chunk, tags=[RunTag(k, v) for k, v in tags.items()] if i == 0 else []
                )
        return self.run_id

    def log(self, metrics: dict[str, float], step: int, pictures: dict[str, str]) -> None:
        """See tracking.Backend.log: epoch pictures go to pictures/ (the latest) and pictures/history/."""
        self.summary(metrics, step)
        with _no_retry_chatter():
            for key, path in pictures.items():
                folder = "pictures/history" if key.startswith("history") else "pictures"
                self.client.log_artifact(self.run_id, path, folder)

    def summary(self, metrics: dict[str, float], step: int) -> None:
        """See tracking.Backend.summary."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        with _no_retry_chatter():
            self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])

    def finish(self, status: str, files: dict[str, str]) -> None:
        """See tracking.Backend.finish."""
        with _no_retry_chatter():
            for path in files.values():
                self.client.log_artifact(self.run_id, path, "pictures")
            self.client.set_terminated(self.run_id, status)
