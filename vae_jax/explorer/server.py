"""The explorer's web server: Starlette routes over a Session, served by uvicorn on one socket.

It serves its own page (page.html, page.js, page.css) and the JSON/PNG answers the page asks for,
and nothing else: there is no route to a file, so no path reaches the checkpoint or the disk.
Requests must name this server as their Host (a web page elsewhere cannot reach it through DNS
rebinding), and POSTs must carry JSON or image bytes (a form on another site cannot post to it).
An upload is read into memory up to MAX_UPLOAD_BYTES and decoded there (images.decode refuses a
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
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vae_jax.data.images import TooLarge
from vae_jax.errors import UserError
from vae_jax.explorer.session import Session
from vae_jax.visualize import grid, png_bytes

log = logging.getLogger("vae_jax")

MAX_UPLOAD_BYTES = 10 * 2**20
ASSETS = {
    "/": ("page.html", "text/html"),
    "/page.js": ("page.js", "text/javascript"),
    "/page.css": ("page.css", "text/css"),
}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class Refused(Exception):
    """A request the server answers with an error status and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def data_url(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


def _png_response(image: np.ndarray) -> Response:
    return Response(png_bytes(image), media_type="image/png", headers=HEADERS)


def _require(request: Request, content_type: str, what: str) -> None:
    """Refuse (415) a request whose body is not of `content_type` (a form on another site cannot send JSON or bytes)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != content_type:
        raise Refused(415, f"send {what} (Content-Type: {content_type})")


async def _json_body(request: Request) -> dict:
    _require(request, "application/json", "JSON")
    try:
        body = await request.json()
    except ValueError:
        raise Refused(400, "the request is not valid JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "the request must be a JSON object")
    return body


async def _upload_bytes(request: Request) -> bytes:
    """The request's body, at most MAX_UPLOAD_BYTES: a larger one is refused before it is read whole."""
    limit = f"at most {MAX_UPLOAD_BYTES // 2**20} MB are read"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise Refused(413, f"the file is {int(declared) / 2**20:.0f} MB: {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPLOAD_BYTES:
            raise Refused(413, f"the file is larger than {MAX_UPLOAD_BYTES // 2**20} MB: {limit}")
    if not body:
        raise Refused(400, "the upload is empty")
    return bytes(body)


def _label(value) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Refused(400, f"a class must be a whole number, got {value!r}") from None


def _number(body: dict, name: str, default=None) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise Refused(400, f"{name} must be a number")
    return float(value)


def make_app(session: Session, info: dict, hosts: list[str]) -> Starlette:
    """The explorer's app: `info` is what the page shows of the model; `hosts` the Host names it answers."""

    def handled(endpoint):
        async def answer(request: Request) -> Response:
            try:
                return await endpoint(request)
            except Refused as e:
                return JSONResponse({"error": str(e)}, e.status, headers=HEADERS)
            except TooLarge as e:
                return JSONResponse({"error": f"image refused: {e}"}, 413, headers=HEADERS)
            except UserError as e:
                return JSONResponse({"error": str(e)}, 400, headers=HEADERS)
            except Exception as e:  # the server keeps serving; the terminal gets one line
                log.error("explorer: %s %s failed: %s: %s", request.method, request.url.path, type(e).__name__, e)
                return JSONResponse({"error": f"the server failed: {type(e).__name__}: {e}"}, 500, headers=HEADERS)

        return answer

    async def asset(request: Request) -> Response:
        name, kind = ASSETS[request.url.path]
        text = resources.files("vae_jax.explorer").joinpath(name).read_text()
        return Response(text, media_type=kind, headers=HEADERS)

    async def get_info(request: Request) -> Response:
        return JSONResponse(info, headers=HEADERS)

    async def get_map(request: Request) -> Response:
        p, tsne = session.projection, dict(session.tsne)
        if tsne["state"] == "running":
            tsne["elapsed"] = time.time() - tsne.pop("since")
        if p is None:
            return JSONResponse({"kind": "none", "tsne": tsne}, headers=HEADERS)
        x, y = np.round(p.points, 4).T.tolist()
        return JSONResponse(
            {"kind": p.kind, "x": x, "y": y, "labels": session.labels.tolist(), "tsne": tsne}, headers=HEADERS
        )

    async def post_tsne(request: Request) -> Response:
        await _json_body(request)
        session.start_tsne()
        return JSONResponse({"state": session.tsne["state"]}, headers=HEADERS)

    async def test_image(request: Request) -> Response:
        i = request.path_params["i"]
        if session.images is None or i >= len(session.images):
            raise Refused(404, f"no test image {i}")
        return _png_response(session.images[i])

    async def standard(request: Request) -> Response:
        body = await _json_body(request)
        u = await run_in_threadpool(session.standard, str(body.get("src")), _label(body.get("label")))
        return JSONResponse({"u": u.tolist()}, headers=HEADERS)

    async def show(request: Request) -> Response:
        body = await _json_body(request)
        u = body.get("u")
        top = session.model.vae.groups[0]
        if not isinstance(u, list) or len(u) != top or not all(isinstance(v, (int, float)) for v in u):
            raise Refused(400, f"u must be a list of {top} numbers")
        image = await run_in_threadpool(session.show, np.asarray(u, np.float32)[None], _label(body.get("label")))
        return _png_response(image[0])

    async def map_point(request: Request) -> Response:
        body = await _json_body(request)
        xy = (_number(body, "x"), _number(body, "y"))
        return _png_response(await run_in_threadpool(session.at_map, xy, _label(body.get("label"))))

    async def interpolate(request: Request) -> Response:
        body = await _json_body(request)
        t = body.get("t")
        if not isinstance(t, list) or not 1 <= len(t) <= 16 or not all(isinstance(v, (int, float)) for v in t):
            raise Refused(400, "t must be a list of 1 to 16 positions in [0, 1]")
        args = (str(body.get("a")), str(body.get("b")), t, bool(body.get("slerp")), _label(body.get("label")))
        images = await run_in_threadpool(session.interpolation, *args)
        return _png_response(images[0] if len(images) == 1 else _strip(images))

    async def samples(request: Request) -> Response:
        body = await _json_body(request)
        seed = int(_number(body, "seed", 0)) % 2**31
        args = (_number(body, "temperature", 1.0), _label(body.get("label")), seed)
        return _png_response(await run_in_threadpool(session.samples, *args))

    async def upload(request: Request) -> Response:
        _require(request, "application/octet-stream", "the image's bytes")
        data = await _upload_bytes(request)
        result = await run_in_threadpool(session.upload, data, _label(request.query_params.get("label")))
        result["seen"], result["recon"] = data_url(result["seen"]), data_url(result["recon"])
        return JSONResponse(result, headers=HEADERS)

    routes = [Route(path, handled(asset)) for path in ASSETS] + [
        Route("/api/info", handled(get_info)),
        Route("/api/map", handled(get_map)),
        Route("/api/tsne", handled(post_tsne), methods=["POST"]),
        Route("/api/test/{i:int}", handled(test_image)),
        Route("/api/standard", handled(standard), methods=["POST"]),
        Route("/api/show", handled(show), methods=["POST"]),
        Route("/api/map_point", handled(map_point), methods=["POST"]),
        Route("/api/interpolate", handled(interpolate), methods=["POST"]),
        Route("/api/samples", handled(samples), methods=["POST"]),
        Route("/api/upload", handled(upload), methods=["POST"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])


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
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:
                ready()

    server = Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
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
    """Wait until `server` serves, ask it for /api/info as the page does, then make it stop."""
    import http.client

    while not server.started:
        time.sleep(0.05)
    host = "127.0.0.1" if address[0] in ("0.0.0.0", "::") else address[0]
    try:
        conn = http.client.HTTPConnection(host, address[1], timeout=60)
        conn.request("GET", "/api/info", headers={"Host": f"127.0.0.1:{address[1]}"})
        log.warning("smoke run ($VAE_JAX_SMOKE): /api/info answered %d; the explorer stops", conn.getresponse().status)
    finally:
        server.should_exit = True
