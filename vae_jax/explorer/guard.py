"""What stands between the network and the explorer's routes: a request must name this server as its
Host (a web page elsewhere cannot reach it through DNS rebinding), and every answer, the server's own
errors (404, 405, a refused Host) included, carries the same security headers."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
_ENCODED = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
LOCAL_NAMES = ("127.0.0.1", "localhost", "::1")


def host_of(header: str) -> str | None:
    """The host name of a Host header ('name:port', '[v6]:port'), lower case; None where it has none."""
    try:
        return urlsplit("//" + header).hostname
    except ValueError:
        return None


def answers(host: str | None, names: frozenset[str], addresses: bool) -> bool:
    """Whether a request for `host` is answered: one of `names`, or with `addresses` an IP address
    (a rebinding page reaches a server through a name it controls, never through an address)."""
    if host is None:
        return False
    if host in names:
        return True
    if not addresses:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Guard:
    """ASGI middleware: Host check (`names`, and with `addresses` any IP address) and HEADERS on every answer."""

    def __init__(self, app: Any, names: Iterable[str], addresses: bool = False):
        self.app, self.names, self.addresses = app, frozenset(n.lower() for n in names), addresses

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (k.lower().encode(), v.encode()) for k, v in HEADERS.items() if k.lower().encode() not in present
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        header = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
        host = host_of(header)
        if answers(host, self.names, self.addresses):
            await self.app(scope, receive, with_headers)
            return
        error = (
            f"this explorer does not answer for the host {header[:80]!r}: start it with --allowed-host NAME to add one"
        )
        body = json.dumps({"error": error}).encode()
        await with_headers(
            {"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": body})
