"""What the command-line tools share: argument parsing that fails in one line, and error exits.

JAX, numpy and the package's modules are imported where they are used, so that a command's
`--help` (and a parsing error) does not wait for them."""

from __future__ import annotations

import argparse  # noqa: F401  (sample.py uses cli.argparse)
import logging
import os
import shlex
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from vae_jax.errors import DiskFull, NonFiniteLoss, Preempted, UserError, first_line

if TYPE_CHECKING:
    import numpy as np


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit code 2, and which takes no
    abbreviation of a flag (`--epoch 1` is a typo, not `--epochs 1`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def error(self, message: str):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)

    def parse_args(self, args=None, namespace=None) -> argparse.Namespace:
        """The flags; a --pretrained NAME (add_checkpoint_flags) becomes --ckpt pretrained:NAME."""
        parsed = super().parse_args(args, namespace)
        if getattr(parsed, "pretrained", None) is not None:
            from vae_jax import pretrained

            if parsed.ckpt != self.get_default("ckpt"):
                self.error("give --ckpt or --pretrained, not both")
            if parsed.pretrained not in pretrained.names():
                self.error(f"--pretrained {parsed.pretrained!r} is not one of {', '.join(pretrained.names())}")
            parsed.ckpt = pretrained.PREFIX + parsed.pretrained
        return parsed


def add_checkpoint_flags(parser: argparse.ArgumentParser, latest: bool = False) -> None:
    """--ckpt (or --pretrained NAME), --best (and, with `latest`, its opposite --latest) and --no-ema:
    the flags of every command that loads a checkpoint (sample, evaluate, encode, explore); `load`
    reads them."""
    parser.add_argument(
        "--ckpt",
        default="checkpoints",
        help="checkpoint folder written by train.py, or pretrained:NAME for a model shipped with the package "
        "(default: checkpoints)",
    )
    from vae_jax import pretrained

    parser.add_argument(
        "--pretrained",
        default=None,
        metavar="NAME",
        help=f"a model shipped with the package instead of --ckpt ({', '.join(pretrained.names())}); the same as "
        "--ckpt pretrained:NAME",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--best", action="store_true", help="the checkpoint with the best test ELBO, not the latest")
    if latest:
        which.add_argument("--latest", action="store_true", help="the newest checkpoint (the default)")
    parser.add_argument(
        "--no-ema", action="store_true", help="a run trained with --ema: use the raw params, not their average"
    )


def outputs_of(ckpt: str) -> str:
    """The folder a command writes into by default: the checkpoint folder, or for a model shipped
    with the package ('pretrained:NAME', whose files are not the user's) runs/pretrained-NAME in the
    current folder, beside the presets' runs."""
    from vae_jax import pretrained

    name = pretrained.name_of(ckpt)
    return ckpt if name is None else os.path.join("runs", f"pretrained-{name}")


def load(args: argparse.Namespace):
    """The model the checkpoint flags (add_checkpoint_flags) name: a vae_jax.Model."""
    import vae_jax  # here, after the flags: --help and a mistyped flag do not wait for JAX

    return vae_jax.load(args.ckpt, best=args.best, ema=not args.no_ema)


def add_label_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """--label: a class of a conditional model, by its number or (where its dataset names them) its name."""
    parser.add_argument("--label", default=None, help=f"conditional models: {what} (its number, or its name)")


def add_invert_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--invert",
        action="store_true",
        help="--images: turn your images over (255 - pixel) first, e.g. dark drawings on white for a model trained "
        "on light digits on black",
    )


def label_of(model, text: str | None) -> int | None:
    """A --label for a loaded Model: its class number, from the number or the name (any case) of one
    of its classes; None where none was given. UserError naming the classes otherwise."""
    if text is None:
        return None
    from vae_jax.data import datasets

    classes = model.vae.n_conditions
    if not classes:
        raise UserError("--label needs a conditional model (train.py --conditional)")
    names = datasets.class_names(model.config.dataset, classes)
    given, lowered = text.strip(), [n.lower() for n in names]
    if given.lower() in lowered:
        return lowered.index(given.lower())
    if given.isascii() and given.isdigit() and int(given) < classes:
        return int(given)
    shown = ", ".join(name if name == str(i) else f"{i} {name}" for i, name in enumerate(names))
    raise UserError(f"--label {text!r}: this model's classes are {shown}")


def user_images(model, path: str, label: int | None, invert: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`--images PATH` for a loaded Model: uint8 (N, H, W, C) brought to its shape (turned over with
    `invert`), int labels (N,) (all `label` for a conditional model, zeros otherwise), and the file
    names. Images whose background is the opposite of the model's own are named in one warning."""
    import numpy as np

    from vae_jax import pictures
    from vae_jax.data import model_inputs

    pixels, names = model_inputs.for_model(path, model.vae.image_shape)
    if model.vae.n_conditions and label is None:
        raise UserError("this is a conditional model: give the class of the images with --label")
    if invert:
        pixels = 255 - pixels
    said = model_inputs.polarity(pixels, pictures.own_background(model))
    if said:
        fix = "drop --invert" if invert else "--invert turns them over"
        logging.getLogger("vae_jax").warning("data: %s; %s", said, fix)
    return pixels, np.full(len(pixels), label or 0, np.int32), names


def enable_compilation_cache(path: str | None = None) -> str:
    """Keep compiled XLA programs on disk so a second run skips compilation; returns the folder.

    Default: $VAE_JAX_CACHE, else ~/.cache/vae_jax/xla.
    """
    import jax

    path = path or _cache_dir()
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # small programs too: ~1 s a run
    return path


def _cache_dir() -> str:
    return os.environ.get("VAE_JAX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "vae_jax", "xla")


def quiet_unless_main_process() -> None:
    """Only process 0 of a multi-process run logs progress; the others report warnings and errors."""
    import jax

    if jax.process_index() != 0:
        logging.getLogger().setLevel(logging.WARNING)


PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: stopped on purpose, run the same command again to resume
DISK_FULL_EXIT_CODE = 74  # EX_IOERR: a checkpoint could not be written; the earlier steps are intact


def main(body: Callable[[], None]) -> None:
    """Run a CLI body: UserError or running out of memory -> one line + exit 2; non-finite loss -> one line + exit 3;
    disk full while checkpointing -> one line + exit 74; pre-empted (SIGTERM/SIGINT during
    training, checkpoint saved) -> the resume command + exit 75."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr, force=True)
    for noisy in ("absl", "jax._src.xla_bridge"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if "jax" in sys.modules:
        enable_compilation_cache()
    else:  # JAX reads these when it is imported: --help and parsing errors do not import it
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _cache_dir())
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    error = f"{os.path.basename(sys.argv[0]) or 'vae_jax'}: error:"  # as argparse's own errors begin
    try:
        body()
    except UserError as e:
        print(f"{error} {e}", file=sys.stderr)
        sys.exit(2)
    except NonFiniteLoss as e:
        print(f"{error} {e}", file=sys.stderr)
        sys.exit(3)
    except DiskFull as e:
        print(f"{error} {e}: {_same_command()}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(
            DISK_FULL_EXIT_CODE
        )  # skip interpreter shutdown: Orbax's writer threads would report the failure again
    except Preempted as e:
        print(f"stopped by {e}; resume with: {_same_command()}", file=sys.stderr)
        sys.exit(PREEMPTED_EXIT_CODE)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except (MemoryError, RuntimeError) as e:  # jax's XlaRuntimeError is a RuntimeError
        from vae_jax import memory

        if not memory.is_out_of_memory(e):
            raise
        print(
            f"{error} out of memory ({first_line(e)}); ask for less at once: a smaller --batch-size, --n, --k, "
            "image size or model",
            file=sys.stderr,
        )
        sys.exit(2)


def _same_command() -> str:
    """This command line again, without --fresh (which would set the run aside)."""
    program = [sys.executable, sys.argv[0]] if sys.argv[0].endswith(".py") else [sys.argv[0]]
    return " ".join(shlex.quote(a) for a in [*program, *[a for a in sys.argv[1:] if a != "--fresh"]])
