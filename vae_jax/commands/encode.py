"""Your images through a trained encoder: python encode.py --ckpt checkpoints/ --images DIR --out latents.npz."""

import os

from vae_jax import cli, newfiles


def make_parser() -> cli.Parser:
    """The encode.py flags (the docs list them from here)."""
    parser = cli.Parser(description="Posterior means and log-variances of q(z|x) for your own images, as an .npz.")
    cli.add_checkpoint_flags(parser)
    parser.add_argument("--images", required=True, help="a PNG/JPEG file or a folder of them (read recursively)")
    parser.add_argument(
        "--out",
        default=None,
        help="the .npz to write, never overwritten (default: <ckpt>/latents.npz, numbered -2, -3, ... where taken)",
    )
    cli.add_label_flag(parser, "the class of the images")
    cli.add_invert_flag(parser)
    parser.add_argument("--batch-size", type=int, default=500, help="images encoded at once (default: 500)")
    return parser


def run() -> None:
    parser = make_parser()
    args = parser.parse_args()
    if args.batch_size <= 0:
        parser.error(f"--batch-size must be positive, got {args.batch_size}")
    out, numbered = newfiles.choose(args.out, os.path.join(cli.outputs_of(args.ckpt), "latents.npz"), ".npz")
    import numpy as np  # here, after the flags: --help and a mistyped flag do not wait for JAX

    from vae_jax.data.pixels import eval_images

    model = cli.load(args)
    pixels, labels, names = cli.user_images(model, args.images, cli.label_of(model, args.label), args.invert)
    x = eval_images(pixels, model.vae.likelihood.binary)
    step = args.batch_size
    parts = [model.encode(x[i : i + step], labels[i : i + step]) for i in range(0, len(x), step)]
    mean, log_var = (np.concatenate([np.asarray(p[j]) for p in parts]) for j in (0, 1))

    arrays = {"mean": mean, "log_var": log_var, "files": np.array(names)}
    out = newfiles.write_new(out, newfiles.npz(arrays), numbered)
    print(f"wrote {out}: mean and log_var ({len(names)}, {mean.shape[1]}) and the {len(names)} file names")


def main() -> None:
    cli.main(run)


if __name__ == "__main__":
    main()
