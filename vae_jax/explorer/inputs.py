"""What the explorer's server accepts of a request: JSON objects of finite numbers, whole classes,
image bytes up to a limit. Anything else is Refused: an error status and one line for the page."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request

MAX_UPLOAD_BYTES = 10 * 2**20
MAX_JSON_BYTES = 2**20  # the page's requests are a few hundred bytes
MAX_NUMBER = 2**53  # beyond it a float skips whole numbers: no coordinate, seed or class of the page is that large


class Refused(Exception):
    """A request the server answers with an error status and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def require(request: Request, content_type: str, what: str) -> None:
    """Refuse (415) a request whose body is not of `content_type` (a form on another site cannot send JSON or bytes)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != content_type:
        raise Refused(415, f"send {what} (Content-Type: {content_type})")


async def json_body(request: Request) -> dict:
    """The request's JSON object (at most MAX_JSON_BYTES of it; numbers as json.loads reads them)."""
    require(request, "application/json", "JSON")
    raw = await _read(request, MAX_JSON_BYTES, "the request")
    try:
        body = json.loads(raw)
    except ValueError:
        raise Refused(400, "the request is not valid JSON") from None
    except RecursionError:
        raise Refused(400, "the request's JSON is nested too deeply") from None
    if not isinstance(body, dict):
        raise Refused(400, "the request must be a JSON object")
    return body


async def upload_bytes(request: Request) -> bytes:
    """The request's body, at most MAX_UPLOAD_BYTES."""
    body = await _read(request, MAX_UPLOAD_BYTES, "the file")
    if not body:
        raise Refused(400, "the upload is empty")
    return body


async def _read(request: Request, most: int, what: str) -> bytes:
    """The request's body, at most `most` bytes: one that declares more is refused (413) before any
    of it is read, one that sends more as soon as it does."""
    limit = f"at most {_size(most)} are read"
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > most:
        raise Refused(413, f"{what} is {_size(int(declared))}: {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > most:
            raise Refused(413, f"{what} is larger than {_size(most)}, the most that is read")
    return bytes(body)


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 10 * 2**20 else f"{n:,} bytes"


def finite(value: Any) -> float | None:
    """A JSON number as a float, at most MAX_NUMBER in size; None for anything else (a bool, a string,
    NaN, infinities, numbers beyond that)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and abs(value) > MAX_NUMBER:
        return None  # before float(): an integer of 400 digits does not fit one
    number = float(value)
    return number if math.isfinite(number) and abs(number) <= MAX_NUMBER else None


def label(value: Any) -> int | None:
    """A class: a whole number (from JSON, or ASCII digits from a query string), or None where none is given."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    whole = finite(value)
    if whole is None or not whole.is_integer():
        raise Refused(400, f"a class must be a whole number, got {_shown(value)}")
    return int(whole)


def number(body: dict, name: str, default: Any = None) -> float:
    """The number under `name` (or `default`), refused (400) where it is not one `finite` takes."""
    value = finite(body.get(name, default))
    if value is None:
        raise Refused(400, f"{name} must be a number")
    return value


def numbers(body: dict, name: str) -> list[float] | None:
    """A list of finite numbers under `name`, or None where it is not one."""
    values = body.get(name)
    if not isinstance(values, list):
        return None
    taken = [finite(v) for v in values]
    return None if any(v is None for v in taken) else taken


def _shown(value: Any) -> str:
    """A value as a message may quote it: its repr, at most 40 characters."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "a number too large"
    return text if len(text) <= 40 else text[:37] + "..."
