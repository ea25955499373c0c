"""benchmarks/faults.py's probes of the files readers trust and of the explorer's inputs (items 36.x):
a fitted sampler's file damaged or another run's, a shipped model's record damaged (every single-bit
flip of one), a step's metadata and metrics flipped, readers racing a writer, a stop signal in the
last epoch and the final evaluation, the explorer's hostile JSON, uploads that decode large, and
sizes that cannot be served."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

import numpy as np
from faults_setup import ROOT, Probe, run, steps_in
from PIL import Image

from vae_jax import pretrained
from vae_jax.errors import UserError

SAMPLER = ("sample.py", "--sampler", "gmm", "--components", "3", "--n", "4")


def _flip(path: str, offset: int, mask: int = 0x01) -> None:
    data = bytearray(open(path, "rb").read())
    data[offset] ^= mask
    open(path, "wb").write(bytes(data))


def _offsets(path: str, n: int = 10) -> list[int]:
    return np.linspace(0, os.path.getsize(path) - 1, n).astype(int).tolist()


def probes(tmp: str, base: str, copy: Callable[[str], str], train_flags: list[str]) -> list:
    """(item, what, probe) of each fault; `base` is a finished run of `train_flags`, `copy(name)` a fresh copy of it."""

    def sampler_file(w: str) -> str:
        names = [n for n in os.listdir(w) if n.startswith("sampler_gmm3_step")]
        if not names:
            run(*SAMPLER, "--ckpt", w, "--out", os.path.join(w, "s.png")).expect(0).raise_unless_ok()
            names = [n for n in os.listdir(w) if n.startswith("sampler_gmm3_step")]
        return os.path.join(w, names[0])

    def sampler(name: str, damage: Callable[[str], None], said: str) -> Callable[[], Probe]:
        def probe() -> Probe:
            w = copy(f"sampler-{name}")
            path = sampler_file(w)
            damage(path)
            p = run(*SAMPLER, "--ckpt", w, "--out", os.path.join(w, "after.png"))
            aside = [n for n in os.listdir(w) if n.startswith("set-aside-")]
            used = not aside  # read as it was: only where the flip changed nothing it holds (the zip's framing)
            why = re.search(r"fitted sampler: \S+ (.*?); moved to", p.stderr)
            note = "read: the flip changed nothing it holds" if used else f"set aside, fitted again ({why and why[1]})"
            check = used and "moved to" not in p.stderr or len(aside) == 1 and said in p.stderr
            return p.expect(0, check=check, last=False, note=note)

        return probe

    def other_run() -> Probe:
        w = copy("sampler-foreign")
        other = os.path.join(tmp, "other-run")
        if not steps_in(other):
            run("train.py", *train_flags, "--seed", "1", "--workdir", other).expect(0).raise_unless_ok()
        theirs = sampler_file(other)
        mine = os.path.join(w, os.path.basename(theirs))  # the same step and latent size, another run's parameters
        shutil.copy(theirs, mine)
        p = run(*SAMPLER, "--ckpt", w, "--out", os.path.join(w, "after.png"))
        aside = [n for n in os.listdir(w) if n.startswith("set-aside-")]
        return p.expect(0, check=len(aside) == 1, contains="was fitted to another model", last=False)

    def shipped(name: str, damage: Callable[[bytes], bytes], tool: str) -> Callable[[], Probe]:
        def probe() -> Probe:
            folder = os.path.join(tmp, f"weights-{name}")
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(os.path.join(ROOT, "vae_jax", "weights"), folder)
            path = os.path.join(folder, "fashion-mlp.json")
            data = open(path, "rb").read()
            open(path, "wb").write(damage(data))
            argv = {"sample": "['sample.py', '--ckpt', 'pretrained:fashion-mlp']",
                    "explore": "['explore.py', '--pretrained', 'fashion-mlp']"}[tool]  # fmt: skip
            script = (
                f"import pathlib, sys, vae_jax.pretrained as p; p._folder = lambda: pathlib.Path({folder!r}); "
                f"from vae_jax.commands.{tool} import main; sys.argv = {argv}; main()"
            )
            return run("-c", script).expect(2, contains="is damaged")

        return probe

    def every_bit() -> Probe:
        """Every single-bit flip of weights/fashion-mlp.json, read as sample.py and explore.py read it."""
        folder = tempfile.mkdtemp(dir=tmp)
        original = open(os.path.join(ROOT, "vae_jax", "weights", "fashion-mlp.json"), "rb").read()
        shutil.copy(os.path.join(ROOT, "vae_jax", "weights", "fashion-mlp.npz"), folder)
        before, saved = pretrained._folder, json.loads(original)
        pretrained._folder = lambda: __import__("pathlib").Path(folder)
        refused = same = changed = crashed = 0
        try:
            for i in range(len(original)):
                for bit in range(8):
                    with open(os.path.join(folder, "fashion-mlp.json"), "wb") as f:
                        f.write(original[:i] + bytes([original[i] ^ 1 << bit]) + original[i + 1 :])
                    try:
                        got = pretrained.record("fashion-mlp")
                    except UserError:
                        refused += 1
                        continue
                    except Exception:  # a traceback for a user
                        crashed += 1
                        continue
                    same, changed = same + (got == saved), changed + (got != saved)
        finally:
            pretrained._folder = before
        flips = 8 * len(original)
        note = f"{flips:,} flips: {refused:,} refused in one line, {same} read unchanged, {changed} changed, "
        note += f"{crashed} tracebacks"
        return Probe(0, "", crashed == 0 and changed == 0 and refused + same == flips, note)

    def step_file(item: str, offset_index: int, tool: str) -> Callable[[], Probe]:
        def probe() -> Probe:
            w = copy(f"{item}-{offset_index}-{tool}")
            newest = steps_in(w)[-1]
            sub = {"meta": ("meta", "metadata"), "metrics": ("metrics", "metrics")}[item]
            path = os.path.join(w, str(newest), *sub)
            _flip(path, _offsets(path)[offset_index])
            if tool == "sample":
                p = run("sample.py", "--ckpt", w, "--n", "4")
                return p.expect(0, contains=f"checkpoint step {newest}", last=False, note=f"step {newest} passed over")
            p = run("train.py", *train_flags, "--epochs", "3", "--workdir", w)
            moved = any(e.startswith(f"damaged-{newest}-") for e in os.listdir(w))
            return p.expect(0, check=moved, contains=f"step {newest}", last=False, note=f"step {newest} set aside")

        return probe

    def race() -> Probe:
        w = os.path.join(tmp, "race")
        shutil.rmtree(w, ignore_errors=True)
        flags = ["--epochs", "3", "--batch-size", "64", "--eval-k", "1", "--hidden", "64"]
        writer = run("train.py", *flags, "--checkpoint-every-steps", "2", "--keep", "1", "--workdir", w, wait=False)
        writer.wait_for("first training step done")
        readers = []
        for i in range(10):
            readers.append(
                run("sample.py", "--ckpt", w, "--n", "4", "--out", os.path.join(tmp, f"race{i}.png"), wait=False)
            )
            time.sleep(0.4)
        results = [Probe.of(r) for r in readers]
        Probe.of(writer)
        text = "".join(r.stderr for r in results)
        false = text.count("damaged")
        removed = text.count("removed meanwhile")
        codes = [r.rc for r in results]
        ok = (
            false == 0
            and all(r.tracebacks == 0 for r in results)
            and all(r.rc == 0 or r.rc == 2 and "removed meanwhile" in r.stderr for r in results)
        )
        worst = max(results, key=lambda r: r.lines)
        worst.ok, worst.note = ok, f"exit codes {codes}; {false} 'damaged', {removed} 'removed meanwhile' lines"
        return worst

    def signal_in(where: str) -> Probe:
        w = os.path.join(tmp, f"signal-{where}")
        shutil.rmtree(w, ignore_errors=True)
        flags = ["--epochs", "1", "--eval-k", "3000", "--hidden", "64"]
        proc = run("train.py", *flags, "--workdir", w, wait=False)
        proc.wait_for("first training step done" if where == "last epoch" else "evaluation:")
        time.sleep(0.3)
        proc.terminate()
        p = Probe.of(proc)
        again = run("train.py", *flags, "--workdir", w, timeout=900) if p.rc == 75 else None
        resumed = again is not None and again.rc == 0 and "final evaluation unfinished: running it" in again.stderr
        return p.expect(
            75, check=resumed, contains="checkpoint saved at step", note="the same command ran the evaluation"
        )

    def explorer_json() -> list[tuple[str, str, Callable[[], Probe]]]:
        deep = "[" * 100_000 + "]" * 100_000
        big = "1" + "0" * 400
        cases = [(route, deep) for route in ("/api/tsne", "/api/standard", "/api/show", "/api/map_point",
                                              "/api/interpolate", "/api/samples")]  # fmt: skip
        fields = ['{"x": N, "y": 0}', '{"x": 0, "y": N}', '{"temperature": N}', '{"seed": N}', '{"u": [N, 0]}',
                  '{"a": "test:0", "b": "test:1", "t": [N]}']  # fmt: skip
        routes = ["/api/map_point", "/api/map_point", "/api/samples", "/api/samples", "/api/show", "/api/interpolate"]
        for n in (big, str(2**64 + 1)):
            cases += [(route, body.replace("N", n)) for route, body in zip(routes, fields)]
        cases += [("/api/show", '{"u": [0, 0], "label": Infinity}'), ("/api/show", '{"u": [0, 0], "label": -Infinity}'),
                  ("/api/standard", '{"src": "test:\\u00b2"}')]  # fmt: skip
        return cases

    def explorer() -> Probe:
        """The hostile JSON list, server errors' headers, a 50 MB declared body, a foreign Host behind
        --host 0.0.0.0, and eight 82 KB PNGs that decode to 5000x5000 (the server's memory before and after)."""
        import psutil

        log = os.path.join(tmp, "explorer.err")
        proc = subprocess.Popen(
            [sys.executable, "explore.py", "--ckpt", base, "--host", "0.0.0.0"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True,
        )  # fmt: skip
        try:
            port = None
            while port is None and proc.poll() is None:
                found = re.search(r"127\.0\.0\.1:(\d+)/", proc.stdout.readline())
                port = int(found.group(1)) if found else None

            def ask(method, path, body=None, headers=None):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
                r = conn.getresponse()
                return r.status, dict(r.getheaders()), r.read()

            bad = []
            for route, body in explorer_json():
                status, _, answer = ask("POST", route, body)
                error = json.loads(answer).get("error", "")
                if not (400 <= status < 500 and error and "\n" not in error):
                    bad.append(f"{route} {body[:30]}: {status}")
            for method, path, headers in [("GET", "/nope", {}), ("DELETE", "/api/info", {}),
                                          ("GET", "/api/info", {"Host": "attacker.example"})]:  # fmt: skip
                status, got, _ = ask(method, path, headers=headers)
                if "nosniff" not in got.get("x-content-type-options", "") or status == 200:
                    bad.append(f"{method} {path}: {status} without its headers")
            octets = {"Content-Type": "application/octet-stream"}
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", "/api/upload", body=b"\0" * 50 * 2**20, headers=octets)
            if conn.getresponse().status != 413:
                bad.append("50 MB upload: not 413")
            ask("POST", "/api/upload", _png(28), octets)  # compiled: what follows is the images' memory
            server = psutil.Process(proc.pid)
            rss, peak, huge = server.memory_info().rss, [0], _png(5000)
            uploads = [threading.Thread(target=ask, args=("POST", "/api/upload", huge, octets)) for _ in range(8)]
            for t in uploads:
                t.start()
            while any(t.is_alive() for t in uploads):  # the server's largest memory while the eight are served
                peak[0] = max(peak[0], server.memory_info().rss)
                time.sleep(0.02)
            grown = peak[0]
            asked = len(explorer_json()) + 4
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
        note = f"{asked} hostile requests: {asked - len(bad)} a 4xx with one line; "
        note += (
            f"eight {len(huge) // 1000} KB PNGs of 5000x5000 at once: {rss / 2**30:.2f} GB, at most {grown / 2**30:.2f}"
        )
        return Probe(0, open(log).read(), not bad, note + (f"; {'; '.join(bad)}" if bad else ""))

    def flip_at(k: int) -> Callable[[str], None]:
        return lambda path: _flip(path, _offsets(path)[k])

    first_byte = shipped("first", lambda d: bytes([d[0] ^ 1]) + d[1:], "sample")
    renamed = shipped("key", lambda d: d.replace(b'"step"', b'"stap"'), "explore")
    return [
        *[("36.1", f"sampler file: a bit flipped at offset {k + 1}/10", sampler(f"flip{k}", flip_at(k), ""))
          for k in range(10)],
        ("36.1", "sampler file truncated", sampler("truncated", lambda p: os.truncate(p, os.path.getsize(p) // 2), "")),
        ("36.1", "sampler file empty", sampler("empty", lambda p: os.truncate(p, 0), "cannot be read")),
        ("36.1", "sampler file of another run (same step, latent size)", other_run),
        ("36.2", "shipped record: first byte flipped, sample.py", first_byte),
        ("36.2", "shipped record: a key renamed, explore.py", renamed),
        ("36.2", "every single-bit flip of fashion-mlp.json", every_bit),
        *[("36.3", f"{item}: a bit flipped at offset {k + 1}/10, sample.py", step_file(item, k, "sample"))
          for item in ("meta", "metrics") for k in range(10)],
        *[("36.3", f"meta: a bit flipped at offset {k + 1}/10, train.py resumes", step_file("meta", k, "train"))
          for k in (2, 7)],
        ("36.4", "10 readers racing a writer (a save every 2 steps, --keep 1)", race),
        ("36.5", "the explorer's hostile inputs", explorer),
        ("36.6", "SIGTERM in the last epoch (--epochs 1 --eval-k 3000)", lambda: signal_in("last epoch")),
        ("36.6", "SIGTERM in the final evaluation", lambda: signal_in("evaluation")),
    ]  # fmt: skip


def _png(side: int) -> bytes:
    """A grey PNG of side x side pixels that compresses to a few KB."""
    import io

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((side, side), np.uint8)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
