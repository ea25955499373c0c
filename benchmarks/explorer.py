"""The explorer's speed as a user meets it, in a headless Chromium (Debian's chromium):

    python benchmarks/explorer.py [--names fashion-mlp,fashion-conv] [--moves 20] [--screenshot PNG]

For each shipped model: seconds from launching `explore.py --pretrained NAME` to the address it
prints (once the model is loaded, before the map is computed), whether the page then said the map
was coming, and seconds to the map drawn on the page; then the latency of the sliders (from a
slider's input event to its new decoded image on screen) and of clicks on the map (from the click
to the decoded point on screen), median over --moves each. Targets, on 2 quiet CPU cores: the
address within 2 s; a slider move within 100 ms for the mlp and conv models; the map of 10,000
test images within 5 s of start-up. --screenshot writes the page of the first model after an
upload and a click.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def launch(name: str, log) -> tuple[subprocess.Popen, str, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "explore.py"), "--pretrained", name],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    for line in proc.stdout:
        address = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        if address:
            return proc, address.group(1), time.perf_counter() - t0
    raise SystemExit(f"{name}: the explorer did not start")


def timed_moves(page, moves: int) -> tuple[list[float], list[float]]:
    """(slider latencies, map-click latencies) in ms."""
    slider = page.locator("#sliders input").first
    for i in range(moves):
        n = page.evaluate("() => window.vaeLatency.length")
        slider.evaluate("(s, v) => { s.value = v; s.dispatchEvent(new Event('input')); }", -2.5 + 5 * i / moves)
        page.wait_for_function(f"() => window.vaeLatency.length > {n}")
    box = page.locator("#map").bounding_box()
    clicks = []
    for i in range(moves):
        old = page.eval_on_selector("#map-decoded", "i => i.src")
        t0 = page.evaluate("() => performance.now()")
        page.mouse.click(box["x"] + box["width"] * (0.2 + 0.6 * i / moves), box["y"] + box["height"] * 0.5)
        page.wait_for_function(
            "old => { const i = document.getElementById('map-decoded'); return i.src !== old && i.complete; }", arg=old
        )
        clicks.append(page.evaluate("() => performance.now()") - t0)
    return page.evaluate("() => window.vaeLatency"), clicks


def screenshot(page, path: str) -> None:
    import numpy as np
    from PIL import Image

    from vae_jax import data

    boot = data.load("fashion_mnist").test_images[1]  # a test image, uploaded as a user's PNG would be
    buffer = io.BytesIO()
    Image.fromarray(np.repeat(boot, 4, 0).repeat(4, 1)[..., 0]).save(buffer, format="PNG")
    page.set_input_files("#file", {"name": "pullover.png", "mimeType": "image/png", "buffer": buffer.getvalue()})
    page.wait_for_function("() => document.getElementById('upload-nll').textContent.includes('nats')")
    page.screenshot(path=path, full_page=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", default="fashion-mlp,fashion-conv")
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--screenshot", default="")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    print(f"{os.cpu_count()} CPUs; chromium {chromium}; medians over {args.moves}")
    with sync_playwright() as p, tempfile.TemporaryFile("w+") as log:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"] if os.geteuid() == 0 else [])
        for i, name in enumerate(args.names.split(",")):
            t0 = time.perf_counter()
            proc, url, printed = launch(name, log)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(url + "/")
            page.wait_for_function("() => document.body.dataset.map || document.body.dataset.ready")
            coming = page.evaluate("() => document.body.dataset.map === 'computing'")
            page.wait_for_selector("body[data-map=ready]", timeout=60_000)
            drawn = time.perf_counter() - t0
            page.wait_for_selector("body[data-ready=yes]", timeout=60_000)
            sliders, clicks = timed_moves(page, args.moves)
            points = page.evaluate("() => state.map.x.length")
            print(
                f"{name}: map of {points} test images: address printed {printed:.1f} s after launch (the page "
                f"{'said the map was coming' if coming else 'found the map ready'}), drawn {drawn:.1f} s; "
                f"slider {statistics.median(sliders):.1f} ms (min {min(sliders):.1f}, max "
                f"{max(sliders):.1f}); map click {statistics.median(clicks):.1f} ms (min {min(clicks):.1f}, max "
                f"{max(clicks):.1f})",
                flush=True,
            )
            if args.screenshot and i == 0:
                screenshot(page, args.screenshot)
                print(f"wrote {args.screenshot}")
            page.close()
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        browser.close()


if __name__ == "__main__":
    main()
