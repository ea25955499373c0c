"""Train a VAE: python train.py --dataset mnist  (python train.py --help lists every flag)."""

from vae_jax import cli, flags


def make_parser() -> cli.Parser:
    """The train.py flags (the docs list them from here)."""
    parser = cli.Parser(description="Train a variational autoencoder; re-running the same command resumes.")
    flags.add_flags(parser)
    parser.add_argument("--fresh", action="store_true", help="move an existing run in --workdir aside and start again")
    hosts = parser.add_argument_group("several processes (see docs/scaling.md)")
    hosts.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-process run with jax.distributed.initialize() (automatic on TPU pods)",
    )
    hosts.add_argument("--coordinator", help="host:port of process 0 (implies --distributed)")
    hosts.add_argument("--num-processes", type=int, help="number of processes (implies --distributed)")
    hosts.add_argument(
        "--process-id", type=int, help="this process's index, 0 .. num-processes - 1 (implies --distributed)"
    )
    return parser


def run() -> None:
    parser = make_parser()
    cfg, args = flags.parse(parser)
    if args.num_processes is not None and args.num_processes < 1:
        parser.error(f"--num-processes must be positive, got {args.num_processes}")
    if args.process_id is not None and not 0 <= args.process_id < (args.num_processes or args.process_id + 1):
        parser.error(f"--process-id must be in 0 .. num-processes - 1, got {args.process_id}")
    from vae_jax import experiment, parallel  # here: --help and a mistyped flag do not wait for JAX

    parallel.initialize(args.distributed, args.coordinator, args.num_processes, args.process_id)
    cli.quiet_unless_main_process()
    experiment.train(cfg, fresh=args.fresh)


def main() -> None:
    cli.main(run)


if __name__ == "__main__":
    main()
