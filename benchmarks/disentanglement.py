"""The disentanglement study: the β-VAE family of Locatello et al. 2019 on the generated dSprites,
each model at its paper's default, several seeds, scored by the six scores of vae_jax.disentanglement.

    python benchmarks/disentanglement.py --seeds 0,1,2 --out benchmarks/results/disentanglement
    python benchmarks/disentanglement.py --table --out benchmarks/results/disentanglement   # -> docs

Each run is `train.py` with Locatello et al.'s protocol where 2 CPU cores allow it: 10 latent units,
a Bernoulli decoder, Adam at 1e-4 and batches of 64, for --epochs passes over the 727,280 training
images (theirs: 300,000 steps, 26 passes). Their encoder, four stride-2 convolutions of 32, 32, 64
and 64 channels, trains at 332 examples/s on 2 CPU cores (36 minutes a pass; measured with the conv
family's 3x3 kernels, one jitted step of batch 64 timed over 30 steps), so the runs here use the
fully connected networks Chen et al. 2018 trained on dSprites instead, 4096-1200-1200-10 (their
decoder has a third hidden layer; ours mirrors the encoder): 930-1,030 examples/s on the same
cores (700 for the FactorVAE, with its discriminator), 12-17 minutes a pass. --architecture conv
gives Locatello et al.'s. Then the model is scored with disentanglement_lib's sample sizes
(evaluate.py --disentanglement's numbers), and its test reconstruction and KL are measured
(k = --eval-k). Each run's numbers go to <out>/<model>_seed<s>.json, written once: a run already
there is kept, so the study can be continued run by run. --table reads every run there and writes
the table (mean and standard deviation over seeds per model) between the markers in
docs/evaluation.md, and the latent traversals of each model's run of highest MIG to docs/images/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs", "evaluation.md")
BEGIN, END = "<!-- disentanglement study: begin -->", "<!-- disentanglement study: end -->"
PROTOCOL = ["--dataset", "dsprites", "--latent-dim", "10", "--batch-size", "64", "--lr", "1e-4", "--keep", "1"]
ARCHITECTURES = {
    "mlp": ["--model", "mlp", "--hidden", "1200,1200"],  # Chen et al. 2018's dSprites networks
    "conv": ["--model", "conv", "--channels", "32,32,64,64"],  # Locatello et al. 2019's encoder's channels
}

# name: (label, the flags of its paper's default)
MODELS = {
    "vae": ("VAE (β = 1)", ["--objective", "vae"]),
    "beta-vae": ("β-VAE (β = 4)", ["--objective", "vae", "--beta", "4"]),
    "annealed": ("AnnealedVAE (γ = 1000, C → 25)", ["--objective", "annealed"]),
    "factor": ("FactorVAE (γ = 40)", ["--objective", "factor"]),
    "dip-i": ("DIP-VAE-I (λ_od = 10, λ_d = 100)", ["--objective", "dip-i"]),
    "dip-ii": ("DIP-VAE-II (λ_od = λ_d = 10)", ["--objective", "dip-ii"]),
    "beta-tc": ("β-TCVAE (β = 6)", ["--objective", "beta-tc"]),
}
SHOWN = ("beta_vae", "factor_vae", "mig", "dci_disentanglement", "modularity", "sap")


def train_and_score(name: str, seed: int, args: argparse.Namespace) -> dict:
    """Train model `name` with `seed` (train.py, a subprocess), score it and measure it."""
    import vae_jax
    from vae_jax import factor_scores

    workdir = os.path.join(args.runs, f"{name}_seed{seed}")
    flags = [*PROTOCOL, *ARCHITECTURES[args.architecture], *MODELS[name][1], "--epochs", str(args.epochs)]
    flags += ["--seed", str(seed)]
    started = time.time()
    subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *flags, "--eval-k", str(args.eval_k),
                    "--workdir", workdir], check=True)  # fmt: skip
    trained, load = time.time(), os.getloadavg()[2]  # the machine's load over the last 15 minutes of training
    model = vae_jax.load(workdir)
    measured = factor_scores.measure(model, seed=seed)
    records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    epochs = [r for r in records if "train_loss" in r]
    final = next(r["evaluation"] for r in records if "evaluation" in r)
    steps = sum(r["steps_seconds"] for r in epochs)
    return {
        "model": name,
        "label": MODELS[name][0],
        "seed": seed,
        "flags": flags,
        "scores": measured["scores"],
        "sizes": measured["sizes"],
        "recon": final["recon"],
        "kl": final["kl"],
        "nll": final["nll"],
        "eval_k": args.eval_k,
        "examples_per_s": epochs[-1]["step"] * 64 / steps,
        "train_seconds": trained - started,
        "load_average_15min": load,  # above the 2 cores' 2: other work shared the machine and slowed the steps
        "score_seconds": time.time() - trained,
        "workdir": workdir,
    }


def traversals(workdir: str, path: str, steps: int = 9, span: float = 2.0) -> None:
    """One row per latent unit (most informative first, by their KL): a test image's posterior mean
    with that unit set to steps values in [-span, span], decoded."""
    import vae_jax
    from vae_jax import data
    from vae_jax.visualize import grid, save_png

    model = vae_jax.load(workdir)
    x = np.asarray(data.of_run(model.config).test_images[:1], np.float32) / 255.0
    mean, log_var = (np.asarray(a)[0] for a in model.encode(x))
    kl = 0.5 * (np.exp(log_var) + mean**2 - 1 - log_var)
    rows = []
    for unit in np.argsort(-kl):
        z = np.repeat(mean[None], steps, axis=0)
        z[:, unit] = np.linspace(-span, span, steps)
        rows.append(np.asarray(model.decode(z)))
    save_png(path, grid(np.concatenate(rows), steps))


def table(runs: list[dict]) -> str:
    """The markdown table: per model, each score's mean ± standard deviation over its seeds."""
    head = "| model | seeds | " + " | ".join(SHOWN) + " | recon (nats) | KL (nats) | examples/s |"
    lines = [head, "|" + "---|" * (len(SHOWN) + 5)]
    for name, (label, _) in MODELS.items():
        mine = [r for r in runs if r["model"] == name]
        if not mine:
            continue

        def cell(values, digits=3):
            values = np.asarray(values, float)
            spread = f" ± {values.std(ddof=1):.{digits}f}" if len(values) > 1 else ""
            return f"{values.mean():.{digits}f}{spread}"

        scores = [cell([r["scores"][s] for r in mine]) for s in SHOWN]
        rest = [cell([-r["recon"] for r in mine], 1), cell([r["kl"] for r in mine], 1)]
        rest.append(f"{np.mean([r['examples_per_s'] for r in mine]):,.0f}")
        lines.append(f"| {label} | {len(mine)} | " + " | ".join(scores + rest) + " |")
    return "\n".join(lines)


def write_docs(runs: list[dict], out: str) -> None:
    """The table between the markers of docs/evaluation.md; each model's best traversals beside it."""
    text = open(DOCS).read()
    if BEGIN not in text or END not in text:
        sys.exit(f"{DOCS}: no {BEGIN} ... {END} markers to write the table between")
    figures = []
    for name, (label, _) in MODELS.items():
        mine = [r for r in runs if r["model"] == name]
        if mine:
            best = max(mine, key=lambda r: r["scores"]["mig"])
            traversals(best["workdir"], os.path.join(ROOT, "docs", "images", f"traversals_{name}.png"))
            figures.append(f"![{label}, seed {best['seed']}](images/traversals_{name}.png)")
    body = f"{BEGIN}\n\n{table(runs)}\n\n" + "\n".join(figures) + f"\n\n{END}"
    with open(DOCS, "w") as f:
        f.write(text[: text.index(BEGIN)] + body + text[text.index(END) + len(END) :])
    print(table(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma separated, of " + ", ".join(MODELS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--architecture", default="mlp", choices=tuple(ARCHITECTURES))
    parser.add_argument("--eval-k", type=int, default=10, help="importance samples of each run's final NLL")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "disentanglement"))
    parser.add_argument("--runs", default="runs/disentanglement", help="where the runs' folders go")
    parser.add_argument("--table", action="store_true", help="write the table of the runs in --out to the docs")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.table:
        runs = [json.load(open(os.path.join(args.out, f))) for f in sorted(os.listdir(args.out)) if f.endswith(".json")]
        return write_docs(runs, args.out)
    for name in args.models.split(","):
        if name not in MODELS:
            sys.exit(f"--models: {name!r} is not one of {', '.join(MODELS)}")
    for seed in (int(s) for s in args.seeds.split(",")):
        for name in args.models.split(","):
            path = os.path.join(args.out, f"{name}_seed{seed}.json")
            if os.path.exists(path):
                print(f"{path}: kept (already run)")
                continue
            result = train_and_score(name, seed, args)
            with open(path, "x") as f:
                json.dump(result, f, indent=1)
            print(f"{name} seed {seed}: " + ", ".join(f"{s} {result['scores'][s]:.3f}" for s in SHOWN))


if __name__ == "__main__":
    main()
