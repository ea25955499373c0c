"""Pictures from a trained VAE: python sample.py --ckpt checkpoints/ --mode MODE (all PNG, reproducible with --seed)."""

import os
import re

from vae_jax import cli, config, newfiles, pretrained, samplers

MODES = ("samples", "reconstructions", "interpolate", "traverse", "latents", "manifold", "history")
DEFAULT_N = {"samples": 64, "reconstructions": 32, "interpolate": 8}


def dims_arg(text: str) -> tuple[int, int]:
    try:
        i, j = (int(v) for v in text.split(","))
    except ValueError:
        raise cli.argparse.ArgumentTypeError(f"expected two comma-separated integers like 0,1, got {text!r}") from None
    return i, j


def temperature_arg(text: str) -> float | tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise cli.argparse.ArgumentTypeError(f"expected a number or comma-separated numbers, got {text!r}") from None
    if any(v < 0 for v in values):
        raise cli.argparse.ArgumentTypeError(f"temperatures must be >= 0, got {text!r}")
    return values[0] if len(values) == 1 else values


def make_parser() -> cli.Parser:
    """The sample.py flags (the docs list them from here)."""
    parser = cli.Parser(description="Write a PNG picture from a checkpoint: " + ", ".join(MODES) + ".")
    cli.add_checkpoint_flags(parser)
    parser.add_argument("--mode", default="samples", choices=MODES, help="what to draw (default: samples)")
    parser.add_argument(
        "--n",
        type=int,
        default=None,
        help="samples: images (64); reconstructions: test images (32); interpolate: rows (8)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the noise and of the chosen test images (default: 0)"
    )
    parser.add_argument(
        "--temperature",
        type=temperature_arg,
        default=1.0,
        help="samples: scale of the prior's standard deviation; for an hvae one number or one per latent group, "
        "top first, comma separated (default: 1.0)",
    )
    parser.add_argument(
        "--sampler",
        default="prior",
        choices=samplers.names(),
        help=f"samples: {samplers.help_text()}; a fitted one is stored beside the checkpoint, and its samples are "
        "shown beside the prior's",
    )
    parser.add_argument(
        "--components", type=int, default=None, help="--sampler gmm: components of the mixture (default: 10)"
    )
    parser.add_argument("--slerp", action="store_true", help="interpolate: spherical instead of linear")
    parser.add_argument(
        "--steps", type=int, default=10, help="interpolate: images per row, endpoints included (default: 10)"
    )
    parser.add_argument(
        "--dims",
        type=dims_arg,
        default=None,
        help="traverse: the two latent dimensions i,j (default: the two most active)",
    )
    parser.add_argument(
        "--projection",
        default="pca",
        choices=("pca", "tsne"),
        help="latents: how to show more than 2 dims (default: pca)",
    )
    cli.add_label_flag(parser, "draw this class (default: one row per class)")
    parser.add_argument(
        "--images",
        default=None,
        help="reconstructions: your own images (a PNG/JPEG file or a folder) instead of test images",
    )
    cli.add_invert_flag(parser)
    parser.add_argument(
        "--out",
        default=None,
        help="PNG path, never overwritten (default: <ckpt>/<mode>[_label<label>]_seed<seed>.png, numbered -2, -3, ... "
        "where taken)",
    )
    return parser


def run() -> None:
    parser = make_parser()
    args = parser.parse_args()
    if args.n is not None and args.n <= 0:
        parser.error(f"--n must be positive, got {args.n}")
    if not 0 <= args.seed <= config.MAX_SEED:
        parser.error(f"--seed must be in 0 .. {config.MAX_SEED}, got {args.seed}")
    n = args.n or DEFAULT_N.get(args.mode, 0)
    if args.steps < 2:
        parser.error("--steps must be at least 2 (the two endpoints)")
    if args.images and args.mode != "reconstructions":
        parser.error("--images goes with --mode reconstructions")
    if args.sampler != "prior" and (args.mode != "samples" or args.label is not None):
        parser.error(f"--sampler {args.sampler} goes with --mode samples of an unconditional model (no --label)")
    if args.components is not None and args.components <= 0:
        parser.error(f"--components must be positive, got {args.components}")
    if args.components is not None and args.sampler != "gmm":
        parser.error(f"--components applies to --sampler gmm only, not --sampler {args.sampler}")
    if args.sampler != "prior" and isinstance(args.temperature, tuple):
        parser.error(f"--sampler {args.sampler} takes one --temperature")
    if args.invert and not args.images:
        parser.error("--invert goes with --images")
    out, numbered = newfiles.choose(args.out, default_out(args.ckpt, args.mode, args.label, args.seed), ".png")
    # here, after the flags: --help and a mistyped flag do not wait for JAX
    from vae_jax import data, pictures
    from vae_jax.commands.modes import DRAW, READS_TEST_IMAGES
    from vae_jax.data.pixels import eval_images
    from vae_jax.visualize import save_figure, save_png

    if args.mode == "history":  # the run's records, not a model
        if pretrained.name_of(args.ckpt):
            parser.error(f"--mode history: {args.ckpt} is shipped without its training records")
        picture = pictures.history(args.ckpt)
    else:
        model = cli.load(args)
        args.label = cli.label_of(model, args.label)  # a number from here on
        if args.images:
            pixels, labels, _ = cli.user_images(model, args.images, args.label, args.invert)
            x = eval_images(pixels, model.vae.likelihood.binary)
        elif args.mode in READS_TEST_IMAGES:
            dataset = data.of_run(model.config)
            x, labels = eval_images(dataset.test_images, model.vae.likelihood.binary), dataset.test_labels
        else:
            x, labels = None, None
        picture = DRAW[args.mode](model, x, labels, n, args)
    save = save_figure if args.mode == "latents" else save_png
    print(newfiles.write_new(out, lambda path: save(path, picture), numbered))


def default_out(ckpt: str, mode: str, label: str | None, seed: int) -> str:
    """The picture's path when --out is not given: <outputs>/<mode>[_label<label>]_seed<seed>.png, the
    label as typed (a class name made safe for a file name)."""
    tag = "" if label is None else "_label" + re.sub(r"[^\w.-]+", "-", label)
    return os.path.join(cli.outputs_of(ckpt), f"{mode}{tag}_seed{seed}.png")


def main() -> None:
    cli.main(run)


if __name__ == "__main__":
    main()
