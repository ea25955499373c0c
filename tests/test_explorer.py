"""The explorer's model side and its server: the map and its inverse, decoded points, sliders,
interpolations, samples and uploads agree with the package's own functions; the server answers
only its own routes, on 127.0.0.1, to its own Host, and refuses oversized or hostile uploads with
one line while it keeps serving. (tests/test_explorer_browser.py drives the page in Chromium.)"""

import http.client
import io
import json
import os
import signal
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from importlib import resources

import explorer_server
import numpy as np
import pytest
from conftest import DIGITS8
from PIL import Image

from vae_jax.errors import UserError


def png_bytes(size=(60, 40), colour=(200, 30, 30), kind="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=kind)
    return buffer.getvalue()


def bomb(width=40_000, height=40_000) -> bytes:
    """A tiny PNG whose header declares width x height grey pixels (1.6 GB decoded)."""
    data = bytearray(png_bytes((1, 1)))
    ihdr = 8 + 8  # after the signature, the IHDR chunk's length and type
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13])))
    return bytes(data)


# ---- the map


def test_a_pca_map_places_latents_and_decodes_its_points_on_the_plane():
    from vae_jax.explorer.projection import project

    latents = np.random.default_rng(0).normal(size=(200, 6)) * np.arange(1, 7)
    p = project(latents)
    assert p.kind == "pca"
    np.testing.assert_allclose(p.place(latents[7]), p.points[7], atol=1e-9)
    on_plane = p.mean + np.array([1.5, -2.0]) @ p.basis
    np.testing.assert_allclose(p.inverse(p.place(on_plane)), on_plane, atol=1e-9)
    np.testing.assert_allclose(p.place(p.inverse(np.array([0.3, 4.0]))), [0.3, 4.0], atol=1e-9)
    assert np.var(p.points[:, 0]) > np.var(p.points[:, 1]) > 0  # the first axis carries the most variance


def test_a_2d_latent_is_its_own_map_and_a_tsne_map_inverts_through_its_neighbours():
    from vae_jax.explorer.projection import NEIGHBOURS, project

    two = np.random.default_rng(1).normal(size=(50, 2))
    p = project(two)
    assert p.kind == "latent" and np.array_equal(p.points, two) and np.array_equal(p.inverse([0.5, 1.0]), [0.5, 1.0])
    latents = np.random.default_rng(2).normal(size=(120, 4))
    t = project(latents, "tsne")
    assert t.kind == "tsne" and t.points.shape == (120, 2)
    np.testing.assert_allclose(t.inverse(t.points[3]), latents[3])  # on a point: that point's latent
    between = t.inverse(t.points[:2].mean(0))
    nearest = np.argsort(np.linalg.norm(t.points - t.points[:2].mean(0), axis=1))[:NEIGHBOURS]
    lo, hi = latents[nearest].min(0), latents[nearest].max(0)
    assert np.all(between >= lo - 1e-9) and np.all(between <= hi + 1e-9)  # a weighted mean of its neighbours


def test_interpolate_at_positions_matches_the_steps_and_ends_exactly():
    from vae_jax.visualize import interpolate_at, interpolation_latents

    a, b = np.array([1.0, 0.0, 2.0]), np.array([-1.0, 3.0, 0.5])
    for slerp in (False, True):
        steps = interpolation_latents(a, b, 5, slerp)
        np.testing.assert_allclose(interpolate_at(a, b, np.linspace(0, 1, 5), slerp), steps, rtol=1e-6)
        np.testing.assert_array_equal(
            interpolate_at(a, b, np.array([0.0, 1.0]), slerp), np.stack([a, b]).astype(np.float32)
        )
    half = interpolate_at(a, b, np.array([0.5]), True)[0]
    assert np.linalg.norm(half) == pytest.approx((np.linalg.norm(a) + np.linalg.norm(b)) / 2, rel=1e-5)


# ---- the model side


@pytest.fixture(scope="module")
def session(tiny_run):
    import vae_jax
    from vae_jax import data
    from vae_jax.explorer.session import open_session

    model = vae_jax.load(tiny_run.workdir)
    dataset = data.of_run(model.config)
    return open_session(model, dataset.test_images, dataset.test_labels)


def _u8(x) -> np.ndarray:
    return np.rint(np.clip(np.asarray(x), 0, 1) * 255).astype(np.uint8)


def test_the_map_of_a_2d_latent_is_the_posterior_means_and_a_click_decodes_there(session):
    model = session.model
    means = np.asarray(model.encode(session.inputs)[0])
    assert session.projection.kind == "latent"
    np.testing.assert_allclose(session.projection.points, means, atol=1e-5)
    for xy in [(0.0, 0.0), (1.5, -2.0)]:
        np.testing.assert_array_equal(session.at_map(xy, None), _u8(model.decode(np.array([xy], np.float32)))[0])
    assert not np.array_equal(session.at_map((-2.5, 0.0), None), session.at_map((2.5, 0.0), None))


def test_sliders_start_at_the_images_posterior_mean_and_rank_dimensions_by_kl(session):
    model = session.model
    u = session.standard("test:4", None)
    np.testing.assert_allclose(u, np.asarray(model.encode(session.inputs[4:5])[0])[0], atol=1e-6)  # N(0, I)
    np.testing.assert_array_equal(session.show(u[None], None)[0], _u8(model.reconstruct(session.inputs[4:5]))[0])
    kl = model.evaluate(session.inputs[:1000], k=1)["kl_per_dim"]
    assert session.dims == list(np.argsort(kl)[::-1]) and session.activity == pytest.approx(sorted(kl, reverse=True))
    moved = u.copy()
    moved[session.dims[0]] += 2.0
    assert not np.array_equal(session.show(moved[None], None), session.show(u[None], None))


def test_interpolation_runs_between_the_two_images_latents(session):
    ends = session.interpolation("test:1", "test:2", [0.0, 1.0], slerp=True, label=None)
    for end, src in zip(ends, ["test:1", "test:2"]):
        np.testing.assert_array_equal(end, session.show(session.standard(src, None)[None], None)[0])
    middle = session.interpolation("test:1", "test:2", [0.5], slerp=False, label=None)[0]
    halfway = (session.standard("test:1", None) + session.standard("test:2", None)) / 2
    np.testing.assert_array_equal(middle, session.show(halfway[None], None)[0])
    with pytest.raises(UserError, match="no image 'test:99999'"):
        session.standard("test:99999", None)


def test_samples_follow_the_seed_and_the_temperature(session):
    a, b = session.samples(1.0, None, seed=3), session.samples(1.0, None, seed=3)
    assert np.array_equal(a, b) and not np.array_equal(a, session.samples(1.0, None, seed=4))
    cold = session.samples(0.0, None, seed=3)  # every z at the prior's mean: 16 equal tiles
    tiles = [cold[2 + r * 10 : 10 + r * 10, 2 + c * 10 : 10 + c * 10] for r in range(4) for c in range(4)]
    assert all(np.array_equal(t, tiles[0]) for t in tiles) and not np.array_equal(cold, a)


def test_an_upload_is_prepared_as_the_models_inputs_and_measured(session):
    from vae_jax.data import model_inputs
    from vae_jax.data.pixels import eval_images

    model = session.model
    r = session.upload(png_bytes((60, 40)), None)
    assert r["seen"].shape == (8, 8, 1) and r["recon"].shape == (8, 8, 1)
    assert r["notes"][:2] == ["centre-cropped and resized from 60x40 to 8x8", "RGB to grey"]
    assert ("binarized once, as test images are" in r["notes"]) == model.vae.likelihood.binary
    x = session.uploads[r["id"]]
    grey = np.asarray(Image.new("RGB", (60, 40), (200, 30, 30)))
    expected = eval_images(model_inputs.bring(grey, (8, 8, 1))[None], model.vae.likelihood.binary)
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(r["seen"], _u8(x)[0])
    assert r["nll"] == pytest.approx(model.evaluate(x, k=100)["nll"], rel=1e-5) and r["k"] == 100
    np.testing.assert_allclose(r["place"], np.asarray(model.encode(x)[0])[0], atol=1e-5)
    np.testing.assert_array_equal(session.show(session.standard(f"upload:{r['id']}", None)[None], None)[0], r["recon"])


@pytest.mark.parametrize(
    "data, error",
    [
        (b"%PDF-1.4 not an image", "not a readable PNG or JPEG image"),
        (png_bytes(kind="GIF"), "a GIF image: PNG and JPEG are read"),
        (png_bytes()[:40], "not a readable PNG or JPEG image"),
        (bomb(), "1,600,000,000 pixels: at most 25,000,000 are read"),
        (bomb(10_000, 10_000), "10000x10000 pixels: at most 25,000,000 are read"),
    ],
    ids=["pdf", "gif", "truncated", "bomb-past-pil-limit", "bomb"],
)
def test_an_upload_that_is_not_a_readable_image_is_refused_in_one_line(session, data, error):
    with pytest.raises(UserError, match=error) as caught:
        session.upload(data, None)
    assert "\n" not in str(caught.value)


# ---- the server


@dataclass
class InProcess:
    """The explorer's app served by uvicorn in a thread of this process, on a free port."""

    port: int
    folder: str  # where the checkpoint is


@pytest.fixture(scope="module")
def explorer(session, tiny_run):
    import uvicorn

    from vae_jax.explorer import facts, server

    sock = server.bind("127.0.0.1", 0)
    app = server.make_app(
        session, lambda: facts.page_info(session.model, session, tiny_run.workdir), ["127.0.0.1", "localhost"]
    )
    serving = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=serving.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not serving.started:
        time.sleep(0.05)
    yield InProcess(sock.getsockname()[1], tiny_run.workdir)
    serving.should_exit = True
    thread.join(30)


def request(explorer, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", explorer.port, timeout=60)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def announced(explorer, path, content_type, length) -> tuple[int, str]:
    """POST headers that announce `length` bytes, none of them sent: (status, the error said)."""
    conn = http.client.HTTPConnection("127.0.0.1", explorer.port, timeout=60)
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", content_type)
    conn.putheader("Content-Length", str(length))
    conn.endheaders()
    response = conn.getresponse()
    return response.status, json.loads(response.read())["error"]


def post_json(explorer, path, payload):
    return request(explorer, "POST", path, json.dumps(payload), {"Content-Type": "application/json"})


def test_the_server_listens_on_127_0_0_1_and_serves_its_page(explorer):
    status, headers, page = request(explorer, "GET", "/")
    assert status == 200 and b"vae_jax explorer" in page and "default-src 'self'" in headers["content-security-policy"]
    assert b"http" not in page.replace(b"http-equiv", b"")  # nothing fetched from elsewhere
    for asset in ("/page.js", "/page.css"):
        status, _, text = request(explorer, "GET", asset)
        assert status == 200 and b"https://" not in text
    status, _, info = request(explorer, "GET", "/api/info")
    info = json.loads(info)
    assert status == 200 and info["top"] == 2 and info["test_images"] > 0 and len(info["sliders"]) == 2
    status, _, image = post_json(explorer, "/api/show", {"u": [0.5, -1.0]})
    assert status == 200 and Image.open(io.BytesIO(image)).size == (8, 8)


@pytest.mark.parametrize(
    "path",
    ["/../config.json", "/%2e%2e/%2e%2e/etc/passwd", "/api/test/../../config.json", "/config.json", "/metrics.jsonl",
     "/checkpoints", "/page.js/../../../../etc/passwd", "/vae_jax/explorer/server.py", "//etc/passwd"],
)  # fmt: skip
def test_no_path_reaches_a_file_beyond_the_page(explorer, path):
    status, _, body = request(explorer, "GET", path)
    assert status == 404 and b"root:" not in body and b"dataset" not in body


def test_a_request_naming_another_host_or_posting_a_form_is_refused(explorer):
    status, _, _ = request(explorer, "GET", "/api/info", headers={"Host": "attacker.example:80"})
    assert status == 400  # a page elsewhere cannot reach the server through DNS rebinding
    status, _, body = request(
        explorer, "POST", "/api/show", "u=1", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 415 and b"send JSON" in body


def test_uploads_over_the_limits_are_refused_and_the_server_keeps_serving(explorer, tiny_run):
    before = sorted(os.listdir(tiny_run.workdir)), sorted(os.listdir(os.getcwd()))
    status, error = announced(explorer, "/api/upload", "application/octet-stream", 100 * 2**20)
    assert status == 413 and "the file is 100 MB: at most 10 MB are read" in error
    upload = {"Content-Type": "application/octet-stream"}
    status, _, body = request(explorer, "POST", "/api/upload", bomb(), upload)
    assert status == 413 and "1,600,000,000 pixels: at most" in json.loads(body)["error"]
    status, _, body = request(explorer, "POST", "/api/upload", b"GIF89a not really", upload)
    assert status == 400 and json.loads(body)["error"].startswith("not a readable PNG or JPEG image")
    status, _, body = request(explorer, "POST", "/api/upload", png_bytes(), upload)
    assert status == 200 and json.loads(body)["nll"] > 0
    assert (sorted(os.listdir(tiny_run.workdir)), sorted(os.listdir(os.getcwd()))) == before
    assert request(explorer, "GET", "/api/info")[0] == 200


def test_bad_requests_get_one_line_and_a_failure_reaches_the_terminal(explorer, session, monkeypatch, caplog):
    status, _, body = post_json(explorer, "/api/show", {"u": [1.0]})
    assert status == 400 and json.loads(body) == {"error": "u must be a list of 2 numbers"}
    status, _, body = post_json(explorer, "/api/interpolate", {"a": "test:0", "b": "upload:nope", "t": [0.5]})
    assert status == 400 and json.loads(body)["error"].startswith("no image 'upload:nope'")
    status, _, body = post_json(explorer, "/api/samples", {"temperature": "hot"})
    assert status == 400 and json.loads(body)["error"] == "temperature must be a number"
    status, _, body = post_json(explorer, "/api/samples", {"sampler": "pixelcnn"})
    assert status == 400 and json.loads(body)["error"].startswith("no sampler 'pixelcnn' here")
    status, _, body = post_json(explorer, "/api/codes", {"src": "test:0"})
    assert status == 400 and json.loads(body) == {"error": "this model's z is continuous: it has no codes"}
    monkeypatch.setattr(session, "samples", lambda *args: 1 / 0)  # a failure nobody planned for
    status, _, body = post_json(explorer, "/api/samples", {"temperature": 1.0})
    assert status == 500 and json.loads(body) == {"error": "the server failed: ZeroDivisionError: division by zero"}
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "explorer: POST /api/samples failed: ZeroDivisionError: division by zero"
    ]
    assert request(explorer, "GET", "/api/info")[0] == 200  # and it goes on serving


POSTS = ["/api/tsne", "/api/standard", "/api/show", "/api/map_point", "/api/interpolate", "/api/samples", "/api/codes"]


@pytest.mark.parametrize("route", POSTS)
def test_json_nested_100000_deep_is_a_400_on_every_post_route(explorer, route):
    deep = "[" * 100_000 + "]" * 100_000
    status, _, body = request(explorer, "POST", route, deep, {"Content-Type": "application/json"})
    assert status == 400 and json.loads(body) == {"error": "the request's JSON is nested too deeply"}


@pytest.mark.parametrize("huge", ["1" + "0" * 400, str(2**64 + 1), "1e400", "-1e309", "Infinity", "NaN"])
def test_numbers_beyond_range_or_not_finite_are_a_400_with_one_line(explorer, huge):
    for route, payload in [
        ("/api/map_point", '{"x": %s, "y": 0}'), ("/api/map_point", '{"x": 0, "y": %s}'),
        ("/api/samples", '{"temperature": %s}'), ("/api/samples", '{"seed": %s}'),
        ("/api/show", '{"u": [%s, 0]}'), ("/api/interpolate", '{"a": "test:0", "b": "test:1", "t": [%s]}'),
        ("/api/show", '{"u": [0, 0], "label": %s}'), ("/api/samples", '{"label": %s}'),
    ]:  # fmt: skip
        status, _, body = request(explorer, "POST", route, payload % huge, {"Content-Type": "application/json"})
        error = json.loads(body)["error"]
        assert status == 400 and "\n" not in error and ("must be" in error or "whole number" in error), (route, error)


def test_an_image_reference_in_other_digits_is_a_400(explorer):
    status, _, body = post_json(explorer, "/api/standard", {"src": "test:\u00b2"})  # int() takes '²', an index is ASCII
    assert status == 400 and json.loads(body)["error"].startswith("no image 'test:\u00b2'")


def test_every_answer_of_the_server_carries_its_security_headers(explorer):
    for method, path, headers in [
        ("GET", "/nope", {}), ("DELETE", "/api/info", {}), ("GET", "/api/info", {"Host": "attacker.example"}),
        ("GET", "/api/test/100000", {}), ("GET", "/", {}),
    ]:  # fmt: skip
        status, got, _ = request(explorer, method, path, headers=headers)
        assert status in (404, 405, 400, 200) and got.get("x-content-type-options") == "nosniff", (path, got)
        assert "default-src 'self'" in got.get("content-security-policy", ""), (path, got)


def test_a_json_body_over_its_limit_is_a_413_before_it_is_read(explorer):
    status, error = announced(explorer, "/api/show", "application/json", 50 * 2**20)
    assert status == 413 and error == "the request is 50 MB: at most 1,048,576 bytes are read"
    chunks = (b" " * 2**16 for _ in range(20))  # 1.25 MB sent in chunks, its length not declared
    conn = http.client.HTTPConnection("127.0.0.1", explorer.port, timeout=60)
    conn.request("POST", "/api/show", body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True)
    response = conn.getresponse()
    error = json.loads(response.read())["error"]
    assert response.status == 413 and error == "the request is larger than 1,048,576 bytes, the most that is read"


def test_the_page_is_served_before_the_map_and_told_it_is_coming(session):
    """explore.py serves (and prints its address) as soon as the model is loaded; until the map of the
    test images is computed, /api/info says so and the page's other requests get a 503 with one line."""
    import uvicorn

    from vae_jax.explorer import server
    from vae_jax.explorer.session import Session

    pending = Session(session.model)
    sock = server.bind("127.0.0.1", 0)
    app = server.make_app(pending, lambda: {"title": "ready"}, ["127.0.0.1"])
    serving = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=serving.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not serving.started:
        time.sleep(0.05)
    here = InProcess(sock.getsockname()[1], "")
    try:
        assert request(here, "GET", "/")[0] == 200
        status, _, body = request(here, "GET", "/api/info")
        assert status == 200 and json.loads(body) == {"state": "computing"}
        status, _, body = post_json(here, "/api/show", {"u": [0.0, 0.0]})
        assert status == 503 and json.loads(body)["error"].startswith("the explorer is still computing its map")
        pending.failure = "the map could not be computed: OSError: gone"  # what the thread says when it fails
        pending.ready.set()
        status, _, body = request(here, "GET", "/api/info")
        assert status == 500 and json.loads(body) == {"error": "the map could not be computed: OSError: gone"}
        pending.failure = None
        assert json.loads(request(here, "GET", "/api/info")[2]) == {"state": "ready", "title": "ready"}
        assert post_json(here, "/api/show", {"u": [0.0, 0.0]})[0] == 200
    finally:
        serving.should_exit = True
        thread.join(30)
    page = resources.files("vae_jax.explorer").joinpath("page.js").read_text()  # it asks until the map is there
    assert 'info.state !== "computing"' in page and "computing the map of the test images" in page


def test_explore_py_serves_and_stops(tiny_run, monkeypatch, capsys, caplog):
    """In a smoke run the command stops by itself once its own request was answered."""
    import sys

    from vae_jax.commands import explore

    monkeypatch.setenv("VAE_JAX_SMOKE", "1")
    monkeypatch.setattr(sys, "argv", ["explore.py", "--ckpt", tiny_run.workdir])
    with caplog.at_level("INFO", logger="vae_jax"):
        explore.run()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("explorer: http://127.0.0.1:") and out[-1] == "explorer: stopped"
    assert any(m.startswith("explorer: map of ") and "ready" in m for m in caplog.messages)
    assert "smoke run ($VAE_JAX_SMOKE): /api/info answered 200; the explorer stops" in caplog.messages


def test_ctrl_c_stops_the_explorer_cleanly(tiny_run, tmp_path):
    server = explorer_server.start(["--ckpt", tiny_run.workdir], str(tmp_path / "err.txt"), cwd=str(tmp_path))
    assert request(server, "GET", "/api/info")[0] == 200
    code, out = server.stop()
    assert code == 0 and out.strip().endswith("explorer: stopped"), (code, out, server.stderr())
    assert "Traceback" not in server.stderr()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_as_soon_as_the_address_is_printed_stops_it_cleanly(tiny_run, tmp_path, sig):
    """The address is printed once the server handles signals: none sent after it is lost or kills it."""
    server = explorer_server.start(["--ckpt", tiny_run.workdir], str(tmp_path / "err.txt"), cwd=str(tmp_path))
    code, out = server.stop(sig=sig)
    assert code == 0 and out.strip().endswith("explorer: stopped"), (code, out, server.stderr())


@pytest.mark.slow
def test_a_port_in_use_a_checkpoint_that_does_not_load_and_bad_flags_are_one_line_and_exit_2(tiny_run, tmp_path):
    import socket
    import subprocess
    import sys

    def explore(*args):
        command = [sys.executable, os.path.join(explorer_server.ROOT, "explore.py"), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = explore("--ckpt", tiny_run.workdir, "--port", str(port))
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"explore.py: error: port {port} on 127.0.0.1 is in use: choose another with --port, or leave --port out for "
        "a free one"
    )
    for args, message in [
        (["--ckpt", str(tmp_path / "nothing")], "error: "),
        (["--pretrained", "nope"], "--pretrained 'nope' is not one of "),
        (["--ckpt", tiny_run.workdir, "--port", "70000"], "--port must be in 0..65535, got 70000"),
        (["--ckpt", tiny_run.workdir, "--pretrained", "fashion-mlp"], "give --ckpt or --pretrained, not both"),
    ]:
        proc = explore(*args)
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, (
            proc.stderr
        )


@pytest.mark.slow
def test_listening_beyond_this_machine_is_asked_for_and_warned_about(tiny_run, tmp_path):
    args = ["--ckpt", tiny_run.workdir, "--host", "0.0.0.0", "--allowed-host", "My-Machine.lan"]
    server = explorer_server.start(args, str(tmp_path / "err.txt"))
    try:
        said = server.stderr()
        assert f"anyone who can reach port {server.port} there can use this explorer" in said
        assert "it answers requests for 127.0.0.1, localhost, ::1, my-machine.lan" in said
        for host, status in [("my-machine.lan", 200), ("192.168.1.5:80", 200), (f"[::1]:{server.port}", 200),
                             ("attacker.example", 400), ("my-machine.lan.attacker.example", 400)]:  # fmt: skip
            assert request(server, "GET", "/api/info", headers={"Host": host})[0] == status, host
    finally:
        assert server.stop()[0] == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        {"model": "hvae", "channels": (4, 8)},  # explored through its top group
        {"prior": "vamp", "pseudo_inputs": 8, "flow": "iaf", "flow_steps": 1, "flow_hidden": 8},  # no closed-form KL
        {"conditional": True},
        {"objective": "ae"},
    ],
    ids=["hvae", "vamp-iaf", "conditional", "autoencoder"],
)
def test_every_family_opens_in_the_explorer(options, tmp_path):
    import vae_jax
    from vae_jax import data, experiment
    from vae_jax.config import Config
    from vae_jax.explorer.session import open_session

    config = Config(dataset=DIGITS8, hidden=(16,), latent_dim=3, batch_size=32, eval_k=1, epochs=1,
                    workdir=str(tmp_path / "w"), **options)  # fmt: skip
    experiment.train(config)
    model = vae_jax.load(config.workdir)
    dataset = data.of_run(model.config)
    session = open_session(model, dataset.test_images, dataset.test_labels)
    top = model.vae.groups[0]
    label = 1 if config.conditional else None
    assert session.projection.points.shape == (len(dataset.test_images), 2) and len(session.dims) == min(top, 8)
    analytic = model.vae.kl_analytic and config.objective != "ae"
    assert session.activity_how.startswith("KL per dimension" if analytic else "variance of the posterior means")
    u = session.standard("test:0", label)
    assert u.shape == (top,) and session.show(u[None], label).shape == (1, 8, 8, 1)
    assert session.at_map((0.1, 0.2), label).shape == (8, 8, 1)
    assert session.interpolation("test:0", "test:1", [0.0, 0.5, 1.0], True, label).shape == (3, 8, 8, 1)
    assert session.samples(0.8, label, seed=0).shape == (42, 42, 1)
    r = session.upload(png_bytes((8, 8)), label)
    assert ("recon_error" in r) == (config.objective == "ae") and ("nll" in r) != (config.objective == "ae")
    if config.conditional:
        with pytest.raises(UserError, match="choose a class in 0..9"):
            session.samples(1.0, None, seed=0)
