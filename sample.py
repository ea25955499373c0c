"""Pictures from a trained VAE: python sample.py --ckpt checkpoints/ [--mode reconstructions]."""

import os

import jax
import numpy as np

import vae_jax
from vae_jax import cli, data
from vae_jax.training import eval_images
from vae_jax.visualize import grid, pairs_grid, save_png

MODES = ("samples", "reconstructions")


def run() -> None:
    parser = cli.Parser(description="Write a PNG grid of prior samples or test reconstructions from a checkpoint.")
    parser.add_argument("--ckpt", default="checkpoints", help="checkpoint folder written by train.py (default: checkpoints)")
    parser.add_argument("--mode", default="samples", choices=MODES, help="what to draw (default: samples)")
    parser.add_argument("--n", type=int, default=64, help="number of images (default: 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latent noise (default: 0)")
    parser.add_argument("--temperature", type=float, default=1.0, help="scale of the prior noise (default: 1.0)")
    parser.add_argument("--best", action="store_true", help="use the checkpoint with the best test ELBO, not the latest")
    parser.add_argument("--out", default=None, help="PNG path (default: <ckpt>/<mode>_seed<seed>.png)")
    args = parser.parse_args()
    if args.n <= 0:
        parser.error(f"--n must be positive, got {args.n}")
    if args.temperature < 0:
        parser.error(f"--temperature must be >= 0, got {args.temperature}")
    model = vae_jax.load(args.ckpt, best=args.best)
    ncols = int(np.ceil(np.sqrt(args.n)))
    if args.mode == "samples":
        image = grid(np.asarray(model.sample(jax.random.key(args.seed), args.n, args.temperature)), ncols)
    else:
        config = model.config
        test = data.load(config.dataset, config.data_dir).test_images
        x = eval_images(test, config.likelihood)
        chosen = jax.random.choice(jax.random.key(args.seed), len(x), (min(args.n, len(x)),), replace=False)
        x = np.asarray(x[np.sort(chosen)])
        image = pairs_grid(x, np.clip(np.asarray(model.reconstruct(x)), 0, 1), ncols)
    out = args.out or os.path.join(args.ckpt, f"{args.mode}_seed{args.seed}.png")
    print(save_png(out, image))


if __name__ == "__main__":
    cli.main(run)
