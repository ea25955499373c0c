"""Train a VAE: python train.py --dataset mnist  (python train.py --help lists every flag)."""

from vae_jax import cli, config, experiment


def run() -> None:
    parser = cli.Parser(description="Train a variational autoencoder; re-running the same command resumes.")
    config.add_flags(parser)
    parser.add_argument("--fresh", action="store_true", help="move an existing run in --workdir aside and start again")
    args = parser.parse_args()
    experiment.train(config.from_args(args), fresh=args.fresh)


if __name__ == "__main__":
    cli.main(run)
