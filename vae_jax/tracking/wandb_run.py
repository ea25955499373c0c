"""A run in Weights & Biases: online (after `wandb login`) or, with WANDB_MODE=offline, as files
that `wandb sync` uploads later (no login asked for). Its files go into the run's folder (wandb/)
unless WANDB_DIR says where; the project is WANDB_PROJECT's (default 'vae_jax')."""

from __future__ import annotations

import os
from typing import Any

PROJECT = "vae_jax"


class WandbRun:
    """One W&B run: the config (and under 'run' what it ran on) at the start, metrics and pictures
    at their step, the final evaluation in the run's summary."""

    def __init__(self, workdir: str) -> None:
        import wandb

        self.wandb = wandb
        self.dir = os.environ.get("WANDB_DIR") or workdir
        self.project = os.environ.get("WANDB_PROJECT", PROJECT)
        mode = os.environ.get("WANDB_MODE", "online")
        self.offline = mode in ("offline", "dryrun")
        self.where = f"project {self.project}, {mode}" + (f", files in {self.dir}" if self.offline else "")
        self.run: Any = None

    def start(self, saved: dict[str, Any], name: str, config: dict[str, Any], facts: dict[str, str]) -> str:
        """See tracking.Backend.start: online, the run `saved` names is resumed; offline, the resumed
        run is written under the same id into a second folder of wandb/, which `wandb sync` adds to
        the same run."""
        os.makedirs(self.dir, exist_ok=True)
        resume = "allow" if saved.get("id") and not self.offline else None  # offline, W&B ignores it with a warning
        self.run = self.wandb.init(
            project=self.project,
            dir=self.dir,
            id=saved.get("id"),
            resume=resume,
            name=name,
            config={**config, "run": facts},
            reinit="create_new",
            settings=self.wandb.Settings(console="off", quiet=True, x_disable_stats=True),
        )
        return self.run.id

    def log(self, metrics: dict[str, float], step: int, pictures: dict[str, str]) -> None:
        """See tracking.Backend.log."""
        images = {key: self.wandb.Image(path) for key, path in pictures.items()}
        self.run.log({**metrics, **images}, step=step)

    def summary(self, metrics: dict[str, float], step: int) -> None:
        """See tracking.Backend.summary."""
        self.run.summary.update(metrics)

    def finish(self, status: str, files: dict[str, str]) -> None:
        """See tracking.Backend.finish: a run stopped by a signal is marked preempting (it resumes)."""
        for key, path in files.items():
            self.run.summary[key] = self.wandb.Image(path)
        if status == "KILLED":
            self.run.mark_preempting()
        self.run.finish(exit_code=0 if status == "FINISHED" else 1)
