"""Hostile inputs and faults, one probe each, through the command-line tools as a user runs them.

    python benchmarks/faults.py                 # every probe (about 25 minutes on 2 CPU cores)
    python benchmarks/faults.py --only 3,9      # the probes of some items of the list (36.1 ... 36.7:
                                                # the files readers trust, the explorer: faults_surfaces.py;
                                                # 43: the trackers and compare, faults_tracking.py)

Each probe runs train.py, sample.py, evaluate.py or encode.py in a subprocess and checks what it
promises: the exit code, one line (no traceback) where a message is due, nothing lost or replaced.
Prints a table (item, probe, exit code, lines on stderr, tracebacks, ok) and exits 1 if a probe
failed. A stop signal at random moments is benchmarks/sigterm.py. Probes that mount a tmpfs need
root and are skipped without it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from collections.abc import Callable

import faults_surfaces
import faults_tracking
import numpy as np
from faults_setup import Probe, flip_newest, http_mirror, mount_tmpfs, run, steps_in, write_png_folder

BASE = ["--epochs", "2", "--batch-size", "128", "--eval-k", "1", "--hidden", "64"]


def probes(tmp: str, base: str) -> list[tuple[str, str, Callable[[], Probe]]]:
    """(item, what, probe) of every fault; `base` is a finished run of BASE flags."""

    def copy(name: str) -> str:
        target = os.path.join(tmp, name)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(base, target)
        return target

    def keep() -> Probe:
        w = os.path.join(tmp, "keep")
        p = run(
            "train.py", *BASE, "--batch-size", "256", "--checkpoint-every-steps", "2", "--keep", "1", "--workdir", w
        )
        return p.expect(0, check=len(steps_in(w)) <= 2, note=f"{len(steps_in(w))} steps kept")

    def flipped(tool: str) -> Callable[[], Probe]:
        def probe() -> Probe:
            w = copy(f"flipped-{tool}")
            newest = flip_newest(w, "state" if tool == "train" else "sampling_params")
            args = {
                "train": ("train.py", *BASE, "--epochs", "3", "--workdir", w),
                "sample": ("sample.py", "--ckpt", w),
                "evaluate": ("evaluate.py", "--ckpt", w, "--k", "5"),
            }[tool]
            p = run(*args)
            return p.expect(0, contains="does not match the digest", last=False, note=f"step {newest} passed over")

        return probe

    def race() -> Probe:
        out, pngs = os.path.join(tmp, "race.npz"), write_png_folder(os.path.join(tmp, "pngs"), 4, 28)
        if os.path.exists(out):
            os.remove(out)
        procs = [run("encode.py", "--ckpt", base, "--images", pngs, "--out", out, wait=False) for _ in range(2)]
        results = [Probe.of(p) for p in procs]
        codes = sorted(r.rc for r in results)
        ok = codes == [0, 2] and np.load(out)["mean"].shape == (4, 20)
        return results[1 if results[0].rc == 0 else 0].expect(2, check=ok, note=f"exit codes {codes}")

    def existing_png() -> Probe:
        out = os.path.join(tmp, "mine.png")
        open(out, "wb").write(b"keep")
        p = run("sample.py", "--ckpt", base, "--out", out)
        return p.expect(2, check=open(out, "rb").read() == b"keep", contains="exists")

    def mirror() -> Probe:
        with http_mirror(tmp, short="train-images-idx3-ubyte.gz") as env:
            p = run("train.py", *BASE, "--workdir", os.path.join(tmp, "mirror"), env=env)
        return p.expect(2, contains="train-images-idx3-ubyte.gz", note="no fallback to other data")

    def npz(name: str, values: np.ndarray, rc: int, contains: str, last: bool = True) -> Callable[[], Probe]:
        def probe() -> Probe:
            path = os.path.join(tmp, name)
            np.savez(path, images=values)
            return run("train.py", *BASE, "--dataset", path, "--workdir", os.path.join(tmp, name + ".w")).expect(
                rc, contains=contains, last=last
            )

        return probe

    floats = np.random.default_rng(0).random((600, 28, 28)).astype(np.float32)
    nans = floats.copy()
    nans[5, 5, 5] = np.nan

    def streamed(change: str) -> Callable[[], Probe]:
        def probe() -> Probe:
            folder = write_png_folder(os.path.join(tmp, f"stream-{change}"), 2000, 28)
            w = os.path.join(tmp, f"stream-{change}.w")
            shutil.rmtree(w, ignore_errors=True)
            args = ("train.py", "--dataset", folder, "--stream", "--batch-size", "8", "--epochs", "1", "--workdir", w)
            proc = run(*args, wait=False)
            victims = sorted(os.listdir(os.path.join(folder, "a")))[-300:]
            proc.wait_for("first training step done")
            for name in victims:
                path = os.path.join(folder, "a", name)
                os.remove(path) if change == "deleted" else write_png_folder(path, 0, 28, single=True)
            return Probe.of(proc).expect(2, contains="training stopped")

        return probe

    def noop_rerun() -> Probe:
        w = copy("noop")
        before = open(os.path.join(w, "config.json")).read()
        p = run("train.py", *BASE, "--epochs", "1", "--workdir", w)
        return p.expect(0, check=open(os.path.join(w, "config.json")).read() == before, note="config.json as it was")

    def bad_number(flag: str, value: str, *more: str) -> Callable[[], Probe]:
        return lambda: run("train.py", *BASE, *more, flag, value, "--workdir", os.path.join(tmp, "bad")).expect(
            2, contains=flag
        )

    def all_damaged() -> Probe:
        w = copy("all-damaged")
        for step in steps_in(w):
            for r, _, files in os.walk(os.path.join(w, str(step))):
                for f in files:
                    os.truncate(os.path.join(r, f), min(10, os.path.getsize(os.path.join(r, f))))
        return run("train.py", *BASE, "--epochs", "3", "--workdir", w).expect(2, contains="no intact checkpoint")

    def gif() -> Probe:
        folder = write_png_folder(os.path.join(tmp, "gif"), 40, 28)
        write_png_folder(os.path.join(folder, "a", "x.gif"), 0, 28, single=True)
        p = run("train.py", "--dataset", folder, "--epochs", "1", "--batch-size", "8", "--workdir", folder + ".w")
        return p.expect(0, contains="ignored 1 file(s)", last=False)

    def fallback() -> Probe:
        w = copy("fallback")
        newest = os.path.join(w, str(steps_in(w)[-1]), "sampling_params")  # what sample.py reads
        largest = max((os.path.join(r, f) for r, _, fs in os.walk(newest) for f in fs), key=os.path.getsize)
        os.truncate(largest, os.path.getsize(largest) // 2)
        results = [run("sample.py", "--ckpt", w, "--n", "4") for _ in range(5)]  # numbered outputs: nothing replaced
        worst = max(results, key=lambda r: r.lines)
        return worst.expect(0, check=all(r.rc == 0 and r.lines == 1 for r in results), last=False)

    def disk_full() -> Probe:
        small = os.path.join(tmp, "small")
        if not mount_tmpfs(small, 14):
            return Probe.skipped("needs root to mount a tmpfs")
        script = (
            "import sys, vae_jax.workdir as w; w.free_bytes = lambda p: 2**40; sys.argv[0] = 'train.py'; "
            "from vae_jax.commands.train import main; main()"
        )
        try:
            flags = ["--epochs", "2", "--eval-k", "1", "--checkpoint-every-steps", "5", "--keep", "100"]
            p = run("-c", script, *flags, "--workdir", os.path.join(small, "w"))
        finally:
            subprocess.run(["umount", small], check=False)
        return p.expect(74, contains="no room to save checkpoint", max_lines=10)

    def read_only(tool: str) -> Callable[[], Probe]:
        def probe() -> Probe:
            folder = os.path.join(tmp, f"ro-{tool}")
            if not mount_tmpfs(folder, 64):
                return Probe.skipped("needs root to mount a tmpfs")
            try:
                shutil.copytree(base, os.path.join(folder, "w"))
                subprocess.run(["mount", "-o", "remount,ro", folder], check=True)
                extra = {
                    "encode": ["--images", write_png_folder(os.path.join(tmp, "pngs"), 4, 28)],
                    "evaluate": ["--k", "2"],
                    "sample": [],
                }[tool]
                return run(f"{tool}.py", "--ckpt", os.path.join(folder, "w"), *extra).expect(2, contains="read-only")
            finally:
                subprocess.run(["umount", folder], check=False)

        return probe

    def sample_out(out: str) -> Callable[[], Probe]:
        return lambda: run("sample.py", "--ckpt", base, "--out", os.path.join(tmp, out)).expect(2, contains="--out")

    def big_images() -> Probe:
        folder = write_png_folder(os.path.join(tmp, "big"), 12, 2000)
        args = ("train.py", "--dataset", folder, "--batch-size", "4", "--workdir", folder + ".w")
        return run(*args).expect(2, contains="needs at least")

    def deep_config() -> Probe:
        path = os.path.join(tmp, "deep.json")
        open(path, "w").write("[" * 100_000 + "]" * 100_000)
        return run("train.py", "--config", path).expect(2, contains="nested too deeply")

    def latin1_workdir() -> Probe:
        w = os.fsencode(tmp) + b"/caf\xe9"
        return run("train.py", *BASE, "--workdir", w).expect(2, contains="not valid UTF-8")

    def latency() -> Probe:
        path = os.path.join(tmp, "large.npz")
        if not os.path.exists(path):
            np.savez(path, images=np.random.default_rng(0).integers(0, 256, (1_000_000, 28, 28), dtype=np.uint8))
        w = os.path.join(tmp, "large.w")
        shutil.rmtree(w, ignore_errors=True)
        proc = run("train.py", "--dataset", path, "--batch-size", "4", "--workdir", w, wait=False)
        proc.wait_for("first training step done")
        time.sleep(3)
        t0 = time.perf_counter()
        proc.terminate()
        result = Probe.of(proc)
        seconds = time.perf_counter() - t0
        return result.expect(
            75,
            check=seconds < 30,
            contains="checkpoint saved at step",
            note=f"stopped {seconds:.1f} s after SIGTERM (1,000,000 images, batch 4)",
        )

    def fifo() -> Probe:
        folder = write_png_folder(os.path.join(tmp, "fifo"), 40, 28)
        if not os.path.exists(os.path.join(folder, "a", "x.png")):
            os.mkfifo(os.path.join(folder, "a", "x.png"))
        p = run(
            "train.py",
            "--dataset",
            folder,
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--workdir",
            folder + ".w",
            timeout=300,
        )
        return p.expect(0, contains="not a regular file", last=False)

    def cost(flag: str, value: str, rc: int, contains: str, prior: str = "auto") -> Callable[[], Probe]:
        def probe() -> Probe:
            w = os.path.join(tmp, "cost" + flag)
            shutil.rmtree(w, ignore_errors=True)
            proc = run("train.py", "--prior", prior, flag, value, "--epochs", "1", "--workdir", w, wait=False)
            if rc == 0:  # a run that fits: it must say its size before it starts
                proc.wait_for("first training step done", timeout=600)
                proc.terminate()
            return Probe.of(proc).expect(75 if rc == 0 else rc, contains=contains, last=rc != 0)

        return probe

    def text_npz() -> Probe:
        path = os.path.join(tmp, "text.npz")
        open(path, "w").write("a,b\n1,2\n")
        return run("train.py", "--dataset", path).expect(2, contains="not a zip archive")

    def fresh_on_files() -> Probe:
        folder = os.path.join(tmp, "mine")
        os.makedirs(folder, exist_ok=True)
        open(os.path.join(folder, "notes.txt"), "w").write("mine")
        p = run("train.py", *BASE, "--workdir", folder, "--fresh")
        return p.expect(
            2,
            check=os.listdir(folder) == ["notes.txt"] or sorted(os.listdir(folder)) == [".lock", "notes.txt"],
            contains="holds no run",
        )

    step_dir = os.path.join(base, str(steps_in(base)[-1]))
    return [
        ("2", "--keep 1 with a save every 2 steps", keep),
        ("3", "flipped bytes: train.py resumes", flipped("train")),
        ("3", "flipped bytes: sample.py", flipped("sample")),
        ("3", "flipped bytes: evaluate.py", flipped("evaluate")),
        ("4", "two encode.py, one --out", race),
        ("4", "sample.py --out existing.png", existing_png),
        ("5", "mirror serves a short file", mirror),
        ("6", "float images in [0, 1]", npz("floats.npz", floats, 0, "scaled to 8 bits", last=False)),
        ("6", "an image with a NaN", npz("nan.npz", nans, 2, "NaN")),
        ("7", "streamed files deleted mid-run", streamed("deleted")),
        ("7", "streamed files rewritten mid-run", streamed("rewritten")),
        ("8", "--epochs 1 after 2: config.json", noop_rerun),
        *[
            ("8", f"{f} {v}", bad_number(f, v))
            for f, v in [
                ("--free-bits", "nan"),
                ("--skip-threshold", "nan"),
                ("--lr", "inf"),
                ("--beta", "nan"),
                ("--beta", "inf"),
                ("--clip-norm", "inf"),
                ("--weight-decay", "nan"),
            ]
        ],
        ("8", "every step damaged", all_damaged),
        ("8", "a GIF among PNGs", gif),
        ("9", "sample.py past a damaged step, 5 runs", fallback),
        ("10", "disk fills while Orbax writes", disk_full),
        *[("11", f"{tool}.py on a read-only folder", read_only(tool)) for tool in ("sample", "evaluate", "encode")],
        *[("12", f"sample.py --out {o}", sample_out(o)) for o in ("x.txt", "pngs", "noextension")],
        ("12", "--seed 2^64", bad_number("--seed", str(2**64))),
        ("12", "--kl-warmup-epochs 1000000000", cost("--kl-warmup-epochs", "1000000000", 0, "model:")),
        ("12", "12 images of 2000x2000", big_images),
        ("12", "100,000-deep --config", deep_config),
        ("12", "workdir with byte \\xe9", latin1_workdir),
        ("13", "SIGTERM on a long epoch", latency),
        ("14", "a FIFO named x.png", fifo),
        ("14", "--k 1000000000", cost("--k", "1000000000", 2, "--k")),
        ("14", "--latent-dim 100000", cost("--latent-dim", "100000", 0, "parameters")),
        ("14", "--hidden 1000000", cost("--hidden", "1000000", 2, "needs at least")),
        ("15", "a text file named .npz", text_npz),
        ("15", "--ckpt a step folder", lambda: run("sample.py", "--ckpt", step_dir).expect(2, contains="one step")),
        ("15", "--fresh on a folder of other files", fresh_on_files),
        *faults_surfaces.probes(tmp, base, copy, BASE),
        ("36.7", "--flow iaf --flow-steps 1000000", bad_number("--flow-steps", "1000000", "--flow", "iaf")),
        ("36.7", "--prior mog --components 100000000", cost("--components", "100000000", 2, "--components", "mog")),
        *faults_tracking.probes(tmp, base, copy, BASE),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="items of the list, comma separated (default: all)")
    parser.add_argument("--root", default="/tmp/vae_jax_faults")
    args = parser.parse_args()
    os.makedirs(args.root, exist_ok=True)
    base = os.path.join(args.root, "base")
    if not steps_in(base):
        run("train.py", *BASE, "--checkpoint-every-steps", "10", "--workdir", base).expect(0).raise_unless_ok()
    wanted = set(args.only.split(",")) - {""}
    print("| item | probe | exit | stderr lines | tracebacks | ok | note |\n|---|---|---|---|---|---|---|", flush=True)
    failed = 0
    for item, what, probe in probes(args.root, base):
        if wanted and item not in wanted:
            continue
        result = probe()
        failed += result.ok is False
        print(f"| {item} | {what} | {result.row()} |", flush=True)
    print(f"{failed} probe(s) failed")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
