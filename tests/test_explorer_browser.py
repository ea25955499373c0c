"""The explorer's page in a real headless Chromium (Debian's chromium, driven by Playwright), against
servers these tests start on free local ports with shipped models: the map shows, hovering shows a
test image, clicking decodes, sliders move the decoded image, uploads are measured or refused on
the page, a conditional model's class picker changes the samples, a discrete model shows its codes,
and nothing is fetched from anywhere but the server. The slider's latency is measured and printed."""

import os
import shutil
import statistics

import explorer_server
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

PIXELS = """(selector) => {
  const img = document.querySelector(selector);
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const g = canvas.getContext("2d");
  g.drawImage(img, 0, 0);
  return Array.from(g.getImageData(0, 0, canvas.width, canvas.height).data);
}"""
PAINTED = """() => {
  const c = document.getElementById("map"), d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) n += d[i] > 0;
  return n;
}"""


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail("no chromium: apt-get install chromium (.ci/run installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"] if os.geteuid() == 0 else [])
        yield b
        b.close()


def _server(name, tmp_path_factory):
    folder = tmp_path_factory.mktemp(name)
    return explorer_server.start(["--pretrained", name], str(folder / "stderr.txt"), cwd=str(folder))


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    server = _server("mnist-mlp", tmp_path_factory)
    yield server
    assert server.stop()[0] == 0


def open_page(browser, server):
    """The page, loaded and ready; the list of requests that went anywhere but the server grows as it runs."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.elsewhere, page.errors = [], []
    page.on("pageerror", lambda e: page.errors.append(str(e)))

    def route(r):
        if r.request.url.startswith(server.url + "/") or r.request.url.startswith(("data:", "blob:")):
            return r.continue_()
        page.elsewhere.append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready=yes]", timeout=60_000)
    return page


def pixels(page, selector) -> np.ndarray:
    return np.array(page.evaluate(PIXELS, selector))


def changed(page, selector, before: str, timeout=30_000) -> None:
    """Wait until the image at `selector` shows a new, loaded picture."""
    page.wait_for_function(
        "([s, old]) => { const i = document.querySelector(s); "
        "return i.src !== old && i.complete && i.naturalWidth > 0; }",
        arg=[selector, before],
        timeout=timeout,
    )


def src(page, selector) -> str:
    return page.eval_on_selector(selector, "i => i.src")


def test_the_map_hover_click_and_sliders_follow_the_pointer(browser, digits, capsys):
    page = open_page(browser, digits)
    assert page.evaluate(PAINTED) > 500  # the test images' points are drawn
    assert "1,000 test images" in page.inner_text("#map-note") and page.locator("#legend span").count() == 10
    box = page.locator("#map").bounding_box()
    # hovering a point shows its test image
    m = page.evaluate("() => state.map")
    px, py = page.evaluate("([x, y]) => mapScale().toPx(x, y)", [m["x"][0], m["y"][0]])
    page.mouse.move(box["x"] + px, box["y"] + py)
    page.wait_for_function(
        "() => !document.getElementById('hover').hidden && document.getElementById('hover').complete"
    )
    assert "/api/test/" in src(page, "#hover")
    # clicking two places of the map decodes two different images
    shown = []
    for x, y in [(0.25, 0.3), (0.75, 0.7)]:
        before = src(page, "#map-decoded")
        page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])
        changed(page, "#map-decoded", before)
        shown.append(pixels(page, "#map-decoded"))
    assert shown[0].shape == (28 * 28 * 4,) and not np.array_equal(shown[0], shown[1])
    # a slider moves the decoded image; each move is timed from its input event to the new image on screen
    start = pixels(page, "#slider-decoded")
    slider = page.locator("#sliders input").first
    for i in range(20):
        before = src(page, "#slider-decoded")
        slider.evaluate("(s, v) => { s.value = v; s.dispatchEvent(new Event('input')); }", -2.5 + 0.25 * i)
        changed(page, "#slider-decoded", before)
    latency = page.evaluate("() => window.vaeLatency")
    assert len(latency) == 20 and not np.array_equal(pixels(page, "#slider-decoded"), start)
    with capsys.disabled():
        print(
            f"\nexplorer slider latency (pretrained:mnist-mlp, headless chromium, {os.cpu_count()} CPUs): median "
            f"{statistics.median(latency):.1f} ms over 20 moves (min {min(latency):.1f}, max {max(latency):.1f})"
        )
    assert page.elsewhere == [] and page.errors == []


def test_uploads_are_measured_or_refused_on_the_page(browser, digits, tmp_path):
    page = open_page(browser, digits)
    digit = np.zeros((64, 48), np.uint8)
    digit[12:52, 20:28] = 255  # a "1", larger than 28x28
    Image.fromarray(digit).save(tmp_path / "one.png")
    page.set_input_files("#file", str(tmp_path / "one.png"))
    page.wait_for_function("() => document.getElementById('upload-nll').textContent.includes('nats')")
    assert "NLL -log p(x) = " in page.inner_text("#upload-nll") and "k = 100" in page.inner_text("#upload-nll")
    assert "resized from 48x64 to 28x28" in page.inner_text("#upload-notes")
    assert pixels(page, "#upload-recon").shape == (28 * 28 * 4,) and pixels(page, "#upload-recon").std() > 0
    assert page.is_enabled("#b-upload")  # and it can be interpolated to
    before = src(page, "#interp-strip")
    page.click("#b-upload")
    changed(page, "#interp-strip", before)

    with open(tmp_path / "big.png", "wb") as f:  # 100 MB, refused before it is sent
        f.truncate(100 * 2**20)
    page.set_input_files("#file", str(tmp_path / "big.png"))
    page.wait_for_function("() => document.getElementById('status').className === 'error'")
    assert page.inner_text("#status") == "big.png is 100 MB: at most 10 MB are read"
    (tmp_path / "notes.png").write_text("these are words, not pixels")
    page.set_input_files("#file", str(tmp_path / "notes.png"))
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('notes.png')")
    assert page.inner_text("#status").startswith("notes.png: not a readable PNG or JPEG image")
    before = src(page, "#samples")  # the page and the server go on working
    page.locator("#temperature").evaluate("s => { s.value = 0.5; s.dispatchEvent(new Event('input')); }")
    changed(page, "#samples", before)
    assert page.elsewhere == [] and page.errors == []


def test_tsne_on_request_says_it_is_working_then_redraws_the_map(browser, digits):
    page = open_page(browser, digits)
    page.click("#tsne")
    page.wait_for_function("() => state.map.kind === 'tsne'", timeout=180_000)
    assert page.inner_text("#map-note").startswith("1,000 test images: t-SNE of the posterior means")
    assert page.inner_text("#tsne-note").startswith("t-SNE took")


def test_a_conditional_models_class_picker_changes_the_samples(browser, tmp_path_factory):
    server = _server("fashion-cvae", tmp_path_factory)
    try:
        page = open_page(browser, server)
        assert page.is_visible("#class-box") and page.locator("#label option").count() == 10
        first = pixels(page, "#samples")
        before = src(page, "#samples")
        page.select_option("#label", "1")  # Trouser
        changed(page, "#samples", before)
        trousers = pixels(page, "#samples")
        before = src(page, "#samples")
        page.select_option("#label", "0")
        changed(page, "#samples", before)
        assert not np.array_equal(first, trousers) and np.array_equal(first, pixels(page, "#samples"))
        assert page.elsewhere == [] and page.errors == []
    finally:
        assert server.stop()[0] == 0


def test_a_discrete_models_page_shows_its_codes_and_says_why_it_has_no_map(browser, tmp_path_factory, tmp_path):
    from conftest import DIGITS8

    from vae_jax import experiment
    from vae_jax.config import Config
    from vae_jax.explorer.codes import NOT_SHOWN

    folder = tmp_path_factory.mktemp("vqvae")
    config = Config(dataset=DIGITS8, model="vqvae", objective="vqvae", channels=(8,), depth=1, latent_dim=3,
                    codebook_size=6, batch_size=32, eval_k=1, epochs=1, workdir=str(folder / "w"))  # fmt: skip
    experiment.train(config)
    server = explorer_server.start(["--ckpt", config.workdir], str(folder / "stderr.txt"), cwd=str(folder))
    try:
        page = open_page(browser, server)
        for panel, why in [("map", "map"), ("sliders", "sliders"), ("interp", "interpolation")]:
            assert page.inner_text(f"#{panel}-panel .not-shown") == NOT_SHOWN[why]
        assert page.is_visible("#codes-panel") and not page.is_visible("#temperature-box")
        assert page.locator("#codes-grid tr").count() == 4 and page.locator("#codes-grid td").count() == 16
        assert "codes are used by the 48 test images" in page.inner_text("#codes-usage")
        first = [page.locator("#codes-grid td").nth(i).inner_text() for i in range(16)]
        before = src(page, "#codes-recon")
        page.fill("#codes-index", "7")
        page.dispatch_event("#codes-index", "change")
        changed(page, "#codes-recon", before)
        digit = np.zeros((8, 8), np.uint8)
        digit[1:7, 3:5] = 255
        Image.fromarray(digit).save(tmp_path / "one.png")
        page.set_input_files("#file", str(tmp_path / "one.png"))
        page.wait_for_function("() => document.getElementById('codes-name').textContent === 'your image'")
        assert page.inner_text("#upload-nll").startswith("a bound on -log p(x): ")
        shown = [page.locator("#codes-grid td").nth(i).inner_text() for i in range(16)]
        assert all(c.isdigit() and int(c) < 6 for c in first + shown)
        assert page.elsewhere == [] and page.errors == []
    finally:
        assert server.stop()[0] == 0
