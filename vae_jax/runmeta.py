"""The run metadata saved as JSON with every checkpoint step: one schema, written and read here
only, with a format number. What a reader needs to rebuild the model (the Config, the image shape,
the classes), what the run trained on (checked on resume), the epoch, and the digests of the saved
arrays (checked on restore).

Formats:
  0  no `format` field (written before there was one): the same fields, plus a `key` that nothing
     read; some runs lack `prior` in their config, `num_classes`, or some data fields.
  1  adds `format`; the step also holds the parameters that samplers use (`sampling_params`: the
     moving average with --ema, else the raw ones), readable without the optimizer state.
  2  adds `sha256`, the digest of the record's other fields (a flipped bit in the metadata is damage,
     as one in the arrays is), and `metrics`: what was saved as the step's metrics file (the
     best-checkpoint score, or null), so that a changed metrics file is found too.
  3  the train state adds the objective's state (`aux`: its own, and its parameter groups with
     their optimizer states); an older step has none (its objectives had none). An option that
     only another objective reads (--k of an iwae run, kept by a vae run) is read as its default.

An older format is migrated on read, and the reader says so once per folder; a newer one is refused.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field, replace
from typing import Any

from vae_jax import integrity, objectives
from vae_jax.config import Config
from vae_jax.errors import UserError, first_line

log = logging.getLogger("vae_jax")

FORMAT = 3
AUX_FORMAT = 3  # the first format whose train state holds the objective's state
SEAL = "sha256"  # the field that holds the digest of the others (format 2 on)
DATA_FIELDS = ("data_source", "train_size", "train_digest", "test_digest")  # what a run trained on
_told: set[str] = set()  # folders whose older format was announced


class Unreadable(Exception):
    """Metadata that is not a run's (no config): the step's files are damaged."""


@dataclass(frozen=True)
class RunMeta:
    config: Config  # the run's hyper-parameters
    image_shape: tuple[int, int, int]  # (H, W, C)
    num_classes: int  # the classes of its labels (what a conditional model is conditioned on)
    data: dict[str, Any]  # DATA_FIELDS (a format-0 run may lack some): compared with the data on resume
    epoch: int = 0  # epochs completed when the step was saved
    digests: dict[str, str] = field(default_factory=dict)  # integrity: sha256 per saved part
    format: int = FORMAT  # of the JSON this was read from
    metrics: dict[str, float] | None = None  # the step's metrics file as saved (format 2 on; None: none)

    def at(self, epoch: int, digests: dict[str, str], metrics: dict[str, float] | None = None) -> RunMeta:
        """This run's metadata for a step saved after `epoch` epochs, with its arrays' digests and its metrics."""
        return replace(self, epoch=epoch, digests=digests, format=FORMAT, metrics=metrics)

    def to_json(self) -> dict[str, Any]:
        """The record as saved, sealed with its digest."""
        record = {
            "format": FORMAT,
            "config": self.config.to_dict(),
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            **self.data,
            "epoch": self.epoch,
            "digests": self.digests,
            "metrics": self.metrics,
        }
        return integrity.sealed(record, SEAL)

    def other_data(self, data_now: dict[str, Any]) -> bool:
        """Whether the data recorded here differ from `data_now` (fields not recorded are not compared)."""
        return any(self.data[k] != data_now[k] for k in self.data)


def from_json(saved: Any, folder: str, step: int | None = None) -> RunMeta:
    """The RunMeta of the JSON of `step` in `folder` (any format up to FORMAT). Raises Unreadable when
    it does not match its digest (format 2 on) or holds no config, UserError when its config is
    invalid or its format is newer than this reads."""
    where = folder if step is None else f"{folder}: checkpoint step {step}"
    if not isinstance(saved, dict):
        raise Unreadable("its metadata is not a JSON object")
    version = saved.get("format", 0)
    if (SEAL in saved or version not in (0, 1)) and not integrity.is_sealed(saved, SEAL):
        raise Unreadable("its metadata does not match the digest recorded when it was saved (flipped bytes)")
    if not isinstance(saved.get("config"), dict):
        raise Unreadable("its metadata has no config")
    if not isinstance(version, int) or version > FORMAT:
        raise UserError(f"{where}: written in checkpoint format {version}; this version reads formats 0 to {FORMAT}")
    if version == 0:
        saved = _from_format_0(saved, folder)
    if version < AUX_FORMAT:
        saved = saved | {"config": _unread_to_defaults(saved["config"])}
    try:
        config = Config.from_dict(saved["config"])
        return RunMeta(
            config,
            tuple(int(s) for s in saved["image_shape"]),
            int(saved["num_classes"]),
            {k: saved[k] for k in DATA_FIELDS if k in saved},
            int(saved.get("epoch", 0)),
            dict(saved.get("digests") or {}),
            version,
            saved.get("metrics"),
        )
    except UserError as e:
        raise UserError(f"{where}: {e}") from None
    except KeyError as e:
        raise Unreadable(f"its metadata has no {e.args[0]}") from None
    except (TypeError, ValueError) as e:
        raise Unreadable(f"its metadata holds a value of the wrong kind ({first_line(e)})") from None


def _from_format_0(saved: dict[str, Any], folder: str) -> dict[str, Any]:
    """Format-0 JSON in format 1's fields: a config saved before --prior had every prior N(0, I)
    ('auto' is that for an unconditional run); a run that did not record its classes had 10 (every
    labelled dataset then had 10)."""
    config = dict(saved["config"])
    changes = []
    if "prior" not in config:
        config["prior"] = "normal" if config.get("conditional") else "auto"
        changes.append(f"--prior {config['prior']} (every prior was N(0, I))")
    migrated = {k: v for k, v in saved.items() if k != "key"} | {"config": config}
    if "num_classes" not in saved:
        migrated["num_classes"] = 10
        if config.get("conditional"):
            changes.append("10 classes (not recorded)")
    if folder not in _told:
        _told.add(folder)
        read_as = f", read with {', '.join(changes)}" if changes else ""
        log.info("%s: written in checkpoint format 0 (before the format was numbered)%s", folder, read_as)
    return migrated


def _unread_to_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A config saved before format 3, with the options of other objectives that its objective did
    not read (and now refuses) at their defaults."""
    fields = {f.name: f.default for f in dataclasses.fields(Config)}
    try:
        unread = objectives.unread_by(config.get("objective", "vae"))
    except UserError:
        return config  # an unknown objective: Config.from_dict says so
    return config | {name: fields[name] for name in unread if name in config and name in fields}


def data_text(d: dict[str, Any]) -> str:
    """What a run trained on, for a message: '60000 training images from X (digest 1234abcd, ...)'."""
    size = f"{d['train_size']} training images" if "train_size" in d else "training images"
    named = (("train_digest", "digest"), ("test_digest", "test images digest"))
    digests = ", ".join(f"{name} {d[key][:8]}" for key, name in named if key in d)
    return f"{size} from {d.get('data_source', 'an unrecorded source')}" + (f" ({digests})" if digests else "")
