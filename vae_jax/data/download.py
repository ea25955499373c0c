"""Verified downloads of the official dataset files, without TensorFlow.

Which files a dataset needs, and their official addresses, sizes and sha256 digests, come from
the checksum lists that tensorflow-datasets ships (or from $VAE_JAX_DATA_CHECKSUMS, a file in the
same format: URL, size, sha256 and file name, tab-separated). A file is fetched into the cache
($VAE_JAX_DATA_DIR, default ~/.cache/vae_jax/datasets, one folder per dataset) under a temporary
name, resumed where a dropped connection stopped it, verified against its size and digest, and
only then renamed into place; cached files are verified again on every use. With
$VAE_JAX_DATA_MIRROR=URL every file is fetched from URL + its file name instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import http.client
import importlib.util
import logging
import os
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from tqdm.auto import tqdm

from vae_jax.data import datasets
from vae_jax.errors import UserError

log = logging.getLogger("vae_jax")

CACHE_ENV, MIRROR_ENV, CHECKSUMS_ENV = "VAE_JAX_DATA_DIR", "VAE_JAX_DATA_MIRROR", "VAE_JAX_DATA_CHECKSUMS"
PROBE_TIMEOUT_S = 3.0  # the download host must accept a connection within this (DNS included)
READ_TIMEOUT_S = 5.0  # a server silent for this long is given up
RESUMES = 5  # a connection that drops after sending something is resumed this many times
BLOCK = 1 << 16


@dataclass(frozen=True)
class Remote:
    """One file to fetch: where from, and what it must be."""

    url: str
    size: int
    sha256: str
    name: str


def cache_dir(name: str) -> str:
    """Where the verified files of dataset `name` are kept."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "vae_jax", "datasets")
    return os.path.join(root, name)


def remote_files(name: str) -> list[Remote]:
    """The files of dataset `name` with their addresses, sizes and digests (see the module docstring)."""
    listing = os.environ.get(CHECKSUMS_ENV)
    if not listing:
        # found, not imported: importing tensorflow_datasets replaces builtins.__import__ for every thread
        # while it runs (etils' lazy imports), and the explorer reads its data in a thread of its own
        spec = importlib.util.find_spec("tensorflow_datasets")
        if spec is None or not spec.submodule_search_locations:
            raise UserError(f"--dataset {name}: its checksum list comes with tensorflow-datasets, not installed here")
        listing = os.path.join(spec.submodule_search_locations[0], datasets.TABLE[name].checksums)
    try:
        with open(listing) as f:
            lines = [line.strip().split("\t") for line in f if line.strip() and not line.startswith("#")]
    except OSError as e:
        raise UserError(f"{listing}: cannot read the checksum list ({e.strerror})") from None
    known = {}
    for fields in lines:
        if len(fields) not in (3, 4) or not fields[1].isdigit():
            raise UserError(f"{listing}: expected lines of URL, size, sha256[, file name] separated by tabs")
        file_name = fields[3] if len(fields) == 4 else os.path.basename(urllib.parse.urlparse(fields[0]).path)
        known[file_name] = Remote(fields[0], int(fields[1]), fields[2].lower(), file_name)
    mirror = os.environ.get(MIRROR_ENV)
    files = []
    for file_name in datasets.TABLE[name].files:
        if file_name not in known:
            raise UserError(f"{listing}: lists no {file_name} (a file of {name})")
        remote = known[file_name]
        files.append(
            Remote(mirror.rstrip("/") + "/" + file_name, remote.size, remote.sha256, file_name) if mirror else remote
        )
    return files


@functools.lru_cache(maxsize=16)  # one probe per host and run: the TFDS download asks the same host
def reachable(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether `host` accepts a connection on `port` within `timeout` seconds (DNS included)."""
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def fetch(name: str) -> str | None:
    """The cache folder of dataset `name` holding every one of its files, verified: from the cache
    when it has them (no network), else downloaded. None when the host does not answer or a
    download fails (with a log line saying why), so that the next source is tried; but where the
    user named the source ($VAE_JAX_DATA_MIRROR or $VAE_JAX_DATA_CHECKSUMS) that is a UserError,
    as is a file that fails its checksum twice."""
    named = [env for env in (MIRROR_ENV, CHECKSUMS_ENV) if os.environ.get(env)]
    files = remote_files(name)
    folder = cache_dir(name)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        log.warning(
            "data: cannot use the download cache %s (%s); set %s to another folder", folder, e.strerror, CACHE_ENV
        )
        return None
    with _locked(folder):  # processes on one machine download once; the others find the files
        missing = [f for f in files if not _cached(folder, f)]
        if not missing:
            return folder
        url = urllib.parse.urlparse(missing[0].url)
        port = url.port or (443 if url.scheme == "https" else 80)
        if not reachable(url.hostname or "", port):
            if named:
                raise UserError(
                    f"data: the download host {url.hostname}:{port} (set by {' and '.join(named)}) does not answer; "
                    f"nothing else was tried: fix or unset {' and '.join(named)}"
                )
            log.debug("data: download host %s unreachable, no download tried", url.hostname)  # load() says it once
            return None
        for remote in missing:
            try:
                _fetch_verified(folder, remote)
            except _Failed as e:
                if named:
                    raise UserError(
                        f"data: download of {remote.name} from {remote.url} (set by {' and '.join(named)}) failed: "
                        f"{e}; expected {remote.size} bytes with sha256 {remote.sha256[:16]}...; nothing else was tried"
                    ) from None
                log.warning("data: download of %s failed (%s)", remote.url, e)
                return None
    return folder


class _Failed(Exception):
    """A download that cannot go on (no answer, an HTTP error, a connection that keeps dropping)."""


@contextlib.contextmanager
def _locked(folder: str) -> Iterator[None]:
    fd = os.open(os.path.join(folder, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _digest(path: str) -> tuple[int, str]:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            sha.update(block)
    return os.path.getsize(path), sha.hexdigest()


def _cached(folder: str, remote: Remote) -> bool:
    """Whether the cache holds `remote` whole; a cached file that is not is removed."""
    path = os.path.join(folder, remote.name)
    if not os.path.isfile(path):
        return False
    if _digest(path) == (remote.size, remote.sha256):
        return True
    log.warning("data: cached %s fails its checksum; removed, to be fetched again", path)
    os.remove(path)
    return False


def _fetch_verified(folder: str, remote: Remote) -> None:
    """Download `remote` into `folder`; a file that fails its checksum is fetched once more, then refused."""
    path = os.path.join(folder, remote.name)
    part = path + ".part"
    for attempt in (1, 2):
        _download(remote, part)
        size, digest = _digest(part)
        if (size, digest) == (remote.size, remote.sha256):
            os.replace(part, path)
            return
        os.remove(part)
        if attempt == 2:
            raise UserError(
                f"data: {remote.name} from {remote.url} failed its checksum twice: expected sha256 {remote.sha256} "
                f"({remote.size} bytes), got {digest} ({size} bytes)"
            )
        log.warning("data: %s failed its checksum (sha256 %s); fetching it once more", remote.name, digest)


def _download(remote: Remote, part: str) -> None:
    """Fetch `remote` into `part`, continuing a partial file with an HTTP Range request, and again
    after a connection that drops; a server that sends nothing is given up at once."""
    log.info("data: downloading %s (%.1f MB) from %s", remote.name, remote.size / 1e6, remote.url)
    for _ in range(RESUMES + 1):
        have = os.path.getsize(part) if os.path.exists(part) else 0
        if have >= remote.size:
            return  # complete (or too long: the checksum will say)
        request = urllib.request.Request(remote.url, headers={"Range": f"bytes={have}-"} if have else {})
        received, length = 0, None
        try:
            with urllib.request.urlopen(request, timeout=READ_TIMEOUT_S) as response:
                if have and response.status != 206:
                    have = 0  # the server ignores ranges: start again
                length = response.headers.get("Content-Length")
                with (
                    open(part, "ab" if have else "wb") as out,
                    tqdm(
                        total=remote.size, initial=have, unit="B", unit_scale=True, desc=remote.name, leave=False
                    ) as bar,
                ):
                    while block := response.read(BLOCK):
                        out.write(block)
                        received += len(block)
                        bar.update(len(block))
                    bar.refresh()  # what arrived, also when the last blocks came between two redraws
        except (OSError, http.client.HTTPException) as e:  # URLError and timeouts are OSErrors
            if not received or isinstance(e, urllib.error.HTTPError):
                raise _Failed(str(e) or type(e).__name__) from None
            log.info("data: connection dropped after %d bytes of %s; resuming", have + received, remote.name)
            continue
        if length is not None and received == int(length) and have + received < remote.size:
            raise _Failed(f"the server's whole file is {have + received} bytes")  # not a dropped connection
    if os.path.getsize(part) < remote.size:
        raise _Failed(f"the connection dropped {RESUMES + 1} times, {os.path.getsize(part)} bytes received")
