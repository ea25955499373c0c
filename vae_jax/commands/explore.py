"""Explore a trained VAE in the browser: python explore.py --ckpt DIR, or --pretrained NAME.

Serves one page on 127.0.0.1 (a free port unless --port) until Ctrl-C: the map of the test set's
latents, sliders for the most active dimensions, interpolation, samples, and your own image; for a
model whose z is discrete, the codes each image uses instead of the map, sliders and interpolation."""

import logging
import os
import socket
import threading
import time

from vae_jax import cli, pretrained, smoke
from vae_jax.errors import UserError

log = logging.getLogger("vae_jax")
LOCAL = ("127.0.0.1", "localhost", "::1")


def make_parser() -> cli.Parser:
    """The explore.py flags (the docs list them from here)."""
    parser = cli.Parser(description=__doc__.split("\n\n")[0])
    cli.add_checkpoint_flags(parser)
    parser.add_argument("--port", type=int, default=0, help="the port to listen on (default: a free one)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default: 127.0.0.1, this machine only); any other lets everyone who can "
        "reach it use the explorer",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name the explorer answers requests for, besides 127.0.0.1, localhost and (with a --host "
        "beyond this machine) its IP addresses and this machine's name; repeat for several",
    )
    return parser


def run() -> None:
    started = time.perf_counter()
    parser = make_parser()
    args = parser.parse_args()
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be in 0..65535, got {args.port}")
    if pretrained.name_of(args.ckpt) is None and not os.path.exists(args.ckpt):
        first, *others = pretrained.names()
        parser.error(
            f"--ckpt {args.ckpt}: no such folder; train a model first (python train.py --dataset mnist), or open "
            f"one shipped with the package: --pretrained {first} (or {', '.join(others)})"
        )
    from vae_jax.explorer import facts, server
    from vae_jax.explorer.session import Session

    sock = server.bind(args.host, args.port)  # a port in use fails here, before the model loads
    host, port = sock.getsockname()[:2]
    names = [*LOCAL, *(n.lower() for n in args.allowed_host)]
    if args.host not in LOCAL:
        names.append(socket.gethostname().lower())
        log.warning(
            "explorer: listening on %s: anyone who can reach port %d there can use this explorer; it answers "
            "requests for %s and IP addresses (--allowed-host NAME adds a name)",
            host,
            port,
            ", ".join(dict.fromkeys(names)),
        )
    model = cli.load(args)
    session = Session(model)
    if session.codes is not None:  # a discrete z: the prior over its codes fitted beside the checkpoint, if any
        session.codes.read_prior(cli.outputs_of(args.ckpt))
    # the map of the test images is computed while the page is served: it says so until it is there
    closing = threading.Event()
    mapper = threading.Thread(target=_map_and_warm_up, args=(session, started, closing), daemon=True)
    mapper.start()
    app = server.make_app(session, lambda: facts.page_info(model, session, args.ckpt), names, args.host not in LOCAL)
    everywhere = host in ("0.0.0.0", "::")
    shown = "127.0.0.1" if everywhere else f"[{host}]" if ":" in host else host
    also = f", and every address of this machine (listening on {host})" if everywhere else ""
    address = f"explorer: http://{shown}:{port}/  (Ctrl-C stops it{also}; the page fills in once the map is ready)"
    try:
        server.serve(app, sock, lambda: print(address, flush=True), once=smoke.on())  # printed once it serves
    finally:  # a process that ends while JAX computes in another thread can abort as it exits
        closing.set()
        mapper.join()
    print("explorer: stopped", flush=True)


def _map_and_warm_up(session, started: float, closing: threading.Event) -> None:
    """Read the run's test images, map them, rank the sliders and compile what the page calls first;
    then the session is ready (a failure is said on the page and in one line here). Once `closing`
    is set, it stops after the step it is in."""
    from vae_jax import codebook, data
    from vae_jax.explorer.session import map_test_images

    try:
        try:
            dataset = data.of_run(session.model.config)
            test_images, test_labels = dataset.test_images, dataset.test_labels
        except UserError as e:
            log.warning("explorer: no map and no test images (%s); samples, sliders and your images still work", e)
            test_images = test_labels = None
        if closing.is_set():
            return
        map_test_images(session, test_images, test_labels)
        if closing.is_set():
            return
        _warm_up(session)
        if session.images is not None and session.codes is not None:
            log.info(
                "explorer: the codes of %d test images ready %.1f s after start: %s",
                len(session.images),
                time.perf_counter() - started,
                codebook.summary(session.codes.usage),
            )
        elif session.images is not None:
            log.info(
                "explorer: map of %d test images (%s) ready %.1f s after start; dimensions ranked in %.1f s",
                len(session.images),
                session.projection.kind,
                time.perf_counter() - started,
                session.seconds["ranking"],
            )
    except Exception as e:  # the page says it; the server goes on serving samples of nothing
        session.failure = f"the map could not be computed: {type(e).__name__}: {e}"
        log.error("explorer: %s", session.failure)
    finally:
        session.ready.set()


def _warm_up(session) -> None:
    """Compile what the sliders and the map call before the page asks: the first move is as fast as the rest."""
    label = 0 if session.model.vae.n_conditions else None
    if session.codes is not None:
        if session.images is not None:
            session.image_codes("test:0")
        return
    session.show([[0.0] * session.model.vae.groups[0]], label)
    if session.images is not None:
        session.at_map((0.0, 0.0), label)
        session.interpolation("test:0", "test:0", [0.5], False, label)


def main() -> None:
    cli.main(run)


if __name__ == "__main__":
    main()
