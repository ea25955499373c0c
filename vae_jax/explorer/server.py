"""The explorer's web server: Starlette routes over a Session, served by uvicorn on one socket.

It serves its own page (page.html, page.js, page.css) and the JSON/PNG answers the page asks for,
and nothing else: there is no route to a file, so no path reaches the checkpoint or the disk.
Requests must name this server as their Host (guard.Guard: a web page elsewhere cannot reach it
through DNS rebinding), and POSTs must carry JSON or image bytes (a form on another site cannot post
to it).
An upload is read into memory up to inputs.MAX_UPLOAD_BYTES and decoded there (images.decode refuses a
header that declares more than MAX_UPLOAD_PIXELS); nothing is written to disk."""

from __future__ import annotations

import base64
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from importlib import resources

import numpy as np
import uvicorn  # here, in the thread that imports this module, before the explorer's map thread reads data
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vae_jax.data.images import TooLarge
from vae_jax.errors import UserError
from vae_jax.explorer import inputs
from vae_jax.explorer.guard import Guard
from vae_jax.explorer.session import Session
from vae_jax.visualize import grid, png_bytes

log = logging.getLogger("vae_jax")

ASSETS = {
    "/": ("page.html", "text/html"),
    "/page.js": ("page.js", "text/javascript"),
    "/page.css": ("page.css", "text/css"),
}


def data_url(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


def _png_response(image: np.ndarray) -> Response:
    return Response(png_bytes(image), media_type="image/png")


def make_app(session: Session, info: Callable[[], dict], hosts: list[str], addresses: bool = False) -> Starlette:
    """The explorer's app: `info()` is what the page shows of the model once the session is ready
    (read once); `hosts` the Host names it answers, and with `addresses` any IP address too
    (guard.Guard). Until the session's map is ready, /api/info says so and the other requests of the
    page are answered 503."""
    described: list[dict] = []

    def handled(endpoint, before_ready: bool = False):
        async def answer(request: Request) -> Response:
            try:
                if not (before_ready or session.ready.is_set()):
                    raise inputs.Refused(503, "the explorer is still computing its map: ask again in a moment")
                return await endpoint(request)
            except inputs.Refused as e:
                return JSONResponse({"error": str(e)}, e.status)
            except TooLarge as e:
                return JSONResponse({"error": f"image refused: {e}"}, 413)
            except UserError as e:
                return JSONResponse({"error": str(e)}, 400)
            except Exception as e:  # the server keeps serving; the terminal gets one line
                log.error("explorer: %s %s failed: %s: %s", request.method, request.url.path, type(e).__name__, e)
                return JSONResponse({"error": f"the server failed: {type(e).__name__}: {e}"}, 500)

        return answer

    async def asset(request: Request) -> Response:
        name, kind = ASSETS[request.url.path]
        text = resources.files("vae_jax.explorer").joinpath(name).read_text()
        return Response(text, media_type=kind)

    async def get_info(request: Request) -> Response:
        if not session.ready.is_set():
            return JSONResponse({"state": "computing"})
        if session.failure:
            return JSONResponse({"error": session.failure}, 500)
        if not described:
            described.append({"state": "ready", **await run_in_threadpool(info)})
        return JSONResponse(described[0])

    async def get_map(request: Request) -> Response:
        p, tsne = session.projection, dict(session.tsne)
        if tsne["state"] == "running":
            tsne["elapsed"] = time.time() - tsne.pop("since")
        if p is None:
            return JSONResponse({"kind": "none", "tsne": tsne})
        x, y = np.round(p.points, 4).T.tolist()
        return JSONResponse({"kind": p.kind, "x": x, "y": y, "labels": session.labels.tolist(), "tsne": tsne})

    async def post_tsne(request: Request) -> Response:
        await inputs.json_body(request)
        session.start_tsne()
        return JSONResponse({"state": session.tsne["state"]})

    async def test_image(request: Request) -> Response:
        i = request.path_params["i"]
        if session.images is None or i >= len(session.images):
            raise inputs.Refused(404, f"no test image {i}")
        return _png_response(session.images[i])

    async def standard(request: Request) -> Response:
        body = await inputs.json_body(request)
        u = await run_in_threadpool(session.standard, str(body.get("src")), inputs.label(body.get("label")))
        return JSONResponse({"u": u.tolist()})

    async def show(request: Request) -> Response:
        body = await inputs.json_body(request)
        u, top = inputs.numbers(body, "u"), session.model.vae.groups[0]
        if u is None or len(u) != top:
            raise inputs.Refused(400, f"u must be a list of {top} numbers")
        image = await run_in_threadpool(session.show, np.asarray(u, np.float32)[None], inputs.label(body.get("label")))
        return _png_response(image[0])

    async def map_point(request: Request) -> Response:
        body = await inputs.json_body(request)
        xy = (inputs.number(body, "x"), inputs.number(body, "y"))
        return _png_response(await run_in_threadpool(session.at_map, xy, inputs.label(body.get("label"))))

    async def interpolate(request: Request) -> Response:
        body = await inputs.json_body(request)
        t = inputs.numbers(body, "t")
        if t is None or not 1 <= len(t) <= 16:
            raise inputs.Refused(400, "t must be a list of 1 to 16 positions in [0, 1]")
        args = (str(body.get("a")), str(body.get("b")), t, bool(body.get("slerp")), inputs.label(body.get("label")))
        images = await run_in_threadpool(session.interpolation, *args)
        return _png_response(images[0] if len(images) == 1 else _strip(images))

    async def samples(request: Request) -> Response:
        body = await inputs.json_body(request)
        seed = int(inputs.number(body, "seed", 0)) % 2**31
        label, sampler = inputs.label(body.get("label")), str(body.get("sampler", "prior"))
        args = (inputs.number(body, "temperature", 1.0), label, seed, sampler)
        return _png_response(await run_in_threadpool(session.samples, *args))

    async def codes(request: Request) -> Response:
        body = await inputs.json_body(request)
        grid, recon = await run_in_threadpool(session.image_codes, str(body.get("src")))
        return JSONResponse({"codes": grid.tolist(), "recon": data_url(recon)})

    async def upload(request: Request) -> Response:
        inputs.require(request, "application/octet-stream", "the image's bytes")
        data = await inputs.upload_bytes(request)
        result = await run_in_threadpool(session.upload, data, inputs.label(request.query_params.get("label")))
        result["seen"], result["recon"] = data_url(result["seen"]), data_url(result["recon"])
        return JSONResponse(result)

    routes = [Route(path, handled(asset, before_ready=True)) for path in ASSETS] + [
        Route("/api/info", handled(get_info, before_ready=True)),
        Route("/api/map", handled(get_map)),
        Route("/api/tsne", handled(post_tsne), methods=["POST"]),
        Route("/api/test/{i:int}", handled(test_image)),
        Route("/api/standard", handled(standard), methods=["POST"]),
        Route("/api/show", handled(show), methods=["POST"]),
        Route("/api/map_point", handled(map_point), methods=["POST"]),
        Route("/api/interpolate", handled(interpolate), methods=["POST"]),
        Route("/api/samples", handled(samples), methods=["POST"]),
        Route("/api/upload", handled(upload), methods=["POST"]),
        Route("/api/codes", handled(codes), methods=["POST"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(Guard, names=hosts, addresses=addresses)])


def _strip(images: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, C) -> one row of them, 2 white pixels apart."""
    return grid(images.astype(np.float32) / 255.0, len(images))


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one). Raises UserError when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        taken = "is in use" if e.errno in (98, 48) else f"cannot be opened ({e.strerror})"
        raise UserError(
            f"port {port} on {host} {taken}: choose another with --port, or leave --port out for a free one"
        ) from None
    sock.listen(64)
    return sock


def serve(app: Starlette, sock: socket.socket, ready: Callable[[], None], once: bool = False) -> None:
    """Serve `app` on `sock` until Ctrl-C (or SIGTERM): the requests in flight finish, then it returns.
    `ready()` is called once it answers requests and handles those signals (so a signal that follows
    it always stops it the same way). With `once`, it stops by itself after answering its own request
    for /api/info (a smoke run). Call it from the main thread (it handles the process's signals)."""

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:
                ready()

    # log_config=None: uvicorn's own logging setup would close every handler the process has
    server = Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", log_config=None))
    if once:
        threading.Thread(target=_ask_once, args=(server, sock.getsockname()[:2]), daemon=True).start()
    # uvicorn raises the signal it stopped on again once it has stopped: SIGINT then is a
    # KeyboardInterrupt, and SIGTERM would kill the process before it could say it stopped
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _ask_once(server, address: tuple[str, int]) -> None:
    """Wait until `server` serves, ask it for /api/info as the page does until its map is ready (or
    failed), then make it stop."""
    import http.client
    import json

    while not server.started:
        time.sleep(0.05)
    host = "127.0.0.1" if address[0] in ("0.0.0.0", "::") else address[0]
    try:
        while True:
            conn = http.client.HTTPConnection(host, address[1], timeout=60)
            conn.request("GET", "/api/info", headers={"Host": f"127.0.0.1:{address[1]}"})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200 or json.loads(body).get("state") != "computing":
                break
            time.sleep(0.1)
        log.warning("smoke run ($VAE_JAX_SMOKE): /api/info answered %d; the explorer stops", response.status)
    finally:
        server.should_exit = True
