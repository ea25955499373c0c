"""vae_jax beside pythae (PyTorch, PyPI pythae 0.1.2) on the models both have, one protocol for both.

    python -m venv --system-site-packages .peer
    .peer/bin/pip install torch==2.13.0 && .peer/bin/pip install pythae==0.1.2
    .peer/bin/python benchmarks/pythae_side_by_side.py --models vae,wae --out side_by_side.json

(torch first: from the CPU wheel, before pythae pulls a CUDA build.) For each model, both libraries
train the same networks where they share them (the 784-512-20 MLP: ReLU, a Bernoulli decoder;
the AAE's discriminator of two ReLU layers of 1000 units, the paper's; otherwise each library's
default, said in the row), on the same data (all 60,000 Fashion-MNIST
training images, binarized afresh at each step: a torch Dataset drawing Bernoulli pixels on the
pythae side), with Adam at 1e-3, batch 128, for --epochs, with the hyper-parameters vae_jax's
preset gives (set on the pythae side too, where its defaults differ). Both are then measured by
the same code: the importance-sampled NLL (k = 1000, the first 1,000 test images, binarized as
evaluate.py does; pythae's own get_nll image by image, so that both have a standard error) where
the model defines one, with the posterior's geometric-mean standard deviation on those images
(posterior_sd: the proposal's width, on which the estimate depends); the reconstruction error
of the 10,000 test images (vae_jax.yardstick); and
10,000 samples from each library's default sampler (a 10-component Gaussian mixture fitted to the
codes for the RAEs, on both sides) against the test images in the features of the shipped
Fashion-MNIST classifier. Training examples/s: the mean over epochs 2.. of each library's epoch
times (the first compiles), the training steps alone on both sides (vae_jax's `steps_seconds`:
not its per-epoch test metrics; pythae's train_step, as it runs no evaluation without an
eval_dataset), both on the same machine in the same run, one model after another.
torch runs with torch.set_num_threads(--threads).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import jax
import numpy as np

import vae_jax
from vae_jax import data, experiment, fitted, yardstick
from vae_jax.config import Config
from vae_jax.data.pixels import eval_images
from vae_jax.objectives import aae

EPOCHS, BATCH, LR, LATENT, NLL_IMAGES, K, SAMPLES = 10, 128, 1e-3, 20, 1000, 1000, 10_000

AMORTIZED = (
    "ours: each step's parameters given by the encoder for each image (the paper's amortized flow); "
    "pythae's: one set of parameters shared by every image"
)
VQ = {"channels": (32, 64), "depth": 2, "latent_dim": 64, "codebook_size": 512}  # the vqvae preset's networks
# name: (vae_jax's Config fields, pythae's model and config fields, its trainer, its sampler, what differs)
MODELS = {
    "vae": ({}, ("VAE", {}), "base", "normal", ""),
    "iwae": ({"objective": "iwae", "k": 5}, ("IWAE", {"number_samples": 5}), "base", "normal", ""),
    "vamp": ({"prior": "vamp"}, ("VAMP", {"number_components": 500}), "base", "vamp", ""),
    "iaf": (
        {"flow": "iaf"},
        ("VAE_IAF", {}),
        "base",
        "normal",
        "each library's IAF: ours 4 steps of two 256-unit masked layers and the encoder's context, "
        "pythae's 2 MADEs of three 128-unit layers, no context",
    ),
    **{
        kind: (
            {"flow": kind, "flow_steps": 4},
            ("VAE_LinNF", {"flows": [kind.title()] * 4}),
            "base",
            "normal",
            AMORTIZED,
        )
        for kind in ("planar", "radial")
    },
    "infovae": (
        {"objective": "infovae", "info_alpha": 0.0, "info_lambda": 1000.0},
        ("INFOVAE_MMD", {"alpha": 0.0, "lbd": 1000.0, "kernel_choice": "imq"}),
        "base",
        "normal",
        "",
    ),
    "wae": (
        {"objective": "wae", "wae_lambda": 10.0},
        ("WAE_MMD", {"reg_weight": 10.0, "kernel_choice": "imq"}),
        "base",
        "normal",
        "",
    ),
    "miwae": (
        {"objective": "miwae", "m": 8, "k": 8},
        ("MIWAE", {"number_gradient_estimates": 8, "number_samples": 8}),
        "base",
        "normal",
        "",
    ),
    "piwae": (
        {"objective": "piwae", "m": 8, "k": 8},
        ("PIWAE", {"number_gradient_estimates": 8, "number_samples": 8}),
        "coupled",
        "normal",
        "",
    ),
    "ciwae": (
        {"objective": "ciwae", "k": 64, "ciwae_beta": 0.5},
        ("CIWAE", {"number_samples": 64, "beta": 0.5}),
        "base",
        "normal",
        "",
    ),
    "rae_l2": (
        {"objective": "rae-l2"},
        ("RAE_L2", {"embedding_weight": 1e-4, "reg_weight": 1e-7}),
        "coupled",
        "gmm",
        "",
    ),
    "rae_gp": ({"objective": "rae-gp"}, ("RAE_GP", {"embedding_weight": 1e-4, "reg_weight": 1e-7}), "base", "gmm", ""),
    "aae": (
        {"objective": "aae"},
        ("Adversarial_AE", {"adversarial_loss_scale": 1.0, "reconstruction_loss_scale": 1.0}),
        "adversarial",
        "normal",
        "",
    ),
    "vaegan": (
        {"objective": "vaegan"},
        ("VAEGAN", {}),
        "coupled_adversarial",
        "normal",
        "the discriminators: ours convolutional, pythae's an MLP of 256; pythae's equilibrium margins",
    ),
    "msssim": ({"objective": "msssim"}, ("MSSSIM_VAE", {"beta": 1.0}), "base", "normal", "the MS-SSIM's scale"),
    "svae": (
        {"latent_space": "sphere"},
        ("SVAE", {}),
        "base",
        "sphere",
        "pythae's gradient of kappa leaves out the sampler's correction term; its get_nll drops the +1 of the "
        "concentration it trains with, so its NLL here is the same estimator with the +1 (svae_log_px)",
    ),
    "hamiltonian": (
        {"flow": "hamiltonian", "flow_steps": 3},
        ("HVAE", {"n_lf": 3, "eps_lf": 0.001, "beta_zero": 0.3, "learn_eps_lf": True, "learn_beta_zero": True}),
        "base",
        "normal",
        "pythae's HVAE moves z with the momentum from before the half step, drops the tempering, keeps only "
        "-log_var / 2 of log q(z_0|x), takes softplus(log_var) as the scale and reads the decoder's "
        "probabilities as logits; ours is the paper's Algorithm 1",
    ),
    "vqvae": (
        {"model": "vqvae", "objective": "vqvae", **VQ, "likelihood": "gaussian", "sigma": 0.5**0.5, "lr": 2e-4},
        ("VQVAE", {"num_embeddings": 512, "commitment_loss_factor": 0.25, "quantization_loss_factor": 1.0}),
        "base",
        "uniform_codes",
        "pythae's VQ-VAE has only a squared error summed over the pixels, so both train on grey pixels with "
        "it (ours: a Gaussian of variance 1/2, the same loss); its code terms are means over the vectors' "
        "units, ours the paper's sums; the same networks (benchmarks/torch_vqvae.py); samples from each "
        "model's own prior, uniform codes; the preset's learning rate, 2e-4, on both sides",
    ),
    "pvae": (
        {"latent_space": "poincare"},
        ("PoincareVAE", {"curvature": 1.0}),
        "base",
        "poincare",
        "pythae's posterior mean is the encoder's output as it is, and its scale exp(log_var / 2); ours (the "
        "paper's code) exp_0 of the output, and softplus(.) + 1e-5",
    ),
}


def train_ours(name: str, workdir: str, epochs: int):
    """vae_jax's model `name` trained by the protocol into workdir: (the loaded model, each epoch's
    seconds of training steps)."""
    protocol = {"hidden": (512,), "latent_dim": LATENT, "batch_size": BATCH, "lr": LR, "epochs": epochs, "eval_k": 1}
    experiment.train(Config(dataset="fashion_mnist", workdir=workdir, **(protocol | MODELS[name][0])))
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        seconds = [r["steps_seconds"] for r in map(json.loads, f) if "steps_seconds" in r]
    return vae_jax.load(workdir), seconds


def ours(name: str, workdir: str, epochs: int, test_pixels, x_eval) -> dict:
    sampler = MODELS[name][3]
    model, seconds = train_ours(name, workdir, epochs)
    row = {"examples_per_s": 60_000 / float(np.mean(seconds[1:] or seconds)), "epoch_seconds": seconds}
    if model.objective.defines_likelihood and not model.vae.discrete:  # (a VQ-VAE's is its training bound)
        result = model.evaluate(x_eval[:NLL_IMAGES], k=K)
        row |= {"nll": result["nll"], "nll_se": result["nll_se"]}
        row["posterior_sd"] = float(np.exp(0.5 * np.mean(model.encode(x_eval[:NLL_IMAGES])[1])))
    draw = None
    if sampler == "gmm":
        gmm = fitted.load_or_fit(model, workdir, "gmm", 0, components=10)
        draw = lambda key, n: gmm.sample(model, key, n)  # noqa: E731
    images = yardstick.samples(model, jax.random.key(0), SAMPLES, draw)
    row["samples"] = yardstick.compare("fashion_mnist", test_pixels, images)
    row["reconstruction"] = yardstick.reconstruction_errors(model.reconstruct, np.asarray(x_eval))
    return row


def svae_log_px(model, x, k: int) -> float:
    """pythae's SVAE: the importance-sampled log p(x) of ONE image x (1, C, H, W) with k draws from its
    q(z|x) as it trains (concentration softplus(.) + 1), its vMF log-density and the uniform prior's."""
    import math

    import torch
    import torch.nn.functional as F
    from pythae.models.svae.svae_utils import ive

    x_rep = torch.cat(k * [x])
    out = model.encoder(x_rep)
    loc = out.embedding / out.embedding.norm(dim=-1, keepdim=True)
    kappa = F.softplus(out.log_concentration) + 1
    z = model._sample_von_mises(loc, kappa)
    m = loc.shape[-1]
    log_c = (m / 2 - 1) * kappa.log() - (m / 2) * math.log(2 * math.pi) - ive(m / 2 - 1, kappa).log() - kappa
    log_q = (kappa * (loc * z).sum(-1, keepdim=True) + log_c).reshape(-1)
    log_p = -(math.log(2) + (m / 2) * math.log(math.pi) - math.lgamma(m / 2))
    recon = model.decoder(z)["reconstruction"]
    log_lik = -F.binary_cross_entropy(recon.reshape(k, -1), x_rep.reshape(k, -1), reduction="none").sum(-1)
    return float(torch.logsumexp(log_lik + log_p - log_q, 0) - math.log(k))


def binarized(pixels: np.ndarray, grey: bool = False):
    """A torch Dataset of the training images (N, H, W, C) in [0, 1], Bernoulli pixels drawn afresh at each
    read (dynamic binarization; grey: the pixels as they are); its .x the images (N, C, H, W)."""
    import torch
    from pythae.data.datasets import DatasetOutput

    class Binarized(torch.utils.data.Dataset):
        def __init__(self):
            self.x = torch.tensor(np.transpose(pixels, (0, 3, 1, 2)), dtype=torch.float32)

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return DatasetOutput(data=self.x[i] if grey else torch.bernoulli(self.x[i]))

    return Binarized()


def train_peer(name: str, workdir: str, epochs: int, train_pixels, threads: int):
    """pythae's twin of model `name` trained by the protocol into workdir: (the model, in eval mode, each
    epoch's seconds)."""
    import torch
    from pythae import models, trainers
    from pythae.models.nn import default_architectures as nets
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers.training_callbacks import TrainingCallback

    torch.set_num_threads(threads)
    _, (cls, options), trainer, _, _ = MODELS[name]

    class Clock(TrainingCallback):
        def __init__(self):
            self.times = []

        def on_epoch_begin(self, training_config, **kwargs):
            self.start = time.perf_counter()

        def on_epoch_end(self, training_config, **kwargs):
            self.times.append(time.perf_counter() - self.start)

    loss = {} if cls == "VQVAE" else {"reconstruction_loss": "bce"}  # (pythae's VQVAE has a squared error only)
    config = getattr(models, f"{cls}Config" if hasattr(models, f"{cls}Config") else f"{cls}_Config")(
        input_dim=(1, 28, 28), latent_dim=VQ["latent_dim"] if cls == "VQVAE" else LATENT, **loss, **options
    )
    deterministic = cls in ("WAE_MMD", "RAE_L2", "RAE_GP")
    encoder = (nets.Encoder_AE_MLP if deterministic else nets.Encoder_VAE_MLP)(config)
    if cls == "SVAE":
        encoder = nets.Encoder_SVAE_MLP(config)
    networks = {"encoder": encoder, "decoder": nets.Decoder_AE_MLP(config)}
    if cls == "VQVAE":
        import torch_vqvae

        sizes = (VQ["channels"], VQ["depth"], VQ["latent_dim"])
        networks = {"encoder": torch_vqvae.Encoder(*sizes), "decoder": torch_vqvae.Decoder(*sizes)}
    if cls == "Adversarial_AE":  # the paper's discriminator, as vae_jax's: two ReLU layers of 1000 units
        config.discriminator_input_dim = LATENT
        networks["discriminator"] = disc = nets.Discriminator_MLP(config)
        widths = (LATENT, *aae.HIDDEN)
        nn = torch.nn
        layers = [nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in zip(widths, widths[1:])]
        disc.layers = nn.ModuleList([*layers, nn.Sequential(nn.Linear(widths[-1], 1), nn.Sigmoid())])
        disc.depth = len(disc.layers)
    model = getattr(models, cls)(config, **networks)
    common = {"output_dir": workdir, "num_epochs": epochs, "per_device_train_batch_size": BATCH}
    lr = MODELS[name][0].get("lr", LR)
    trainer_config = {
        "base": lambda: trainers.BaseTrainerConfig(learning_rate=lr, **common),
        "coupled": lambda: trainers.CoupledOptimizerTrainerConfig(
            encoder_learning_rate=LR, decoder_learning_rate=LR, **common
        ),
        "adversarial": lambda: trainers.AdversarialTrainerConfig(
            autoencoder_learning_rate=LR, discriminator_learning_rate=LR, **common
        ),
        "coupled_adversarial": lambda: trainers.CoupledOptimizerAdversarialTrainerConfig(
            encoder_learning_rate=LR, decoder_learning_rate=LR, discriminator_learning_rate=LR, **common
        ),
    }[trainer]()
    if trainer == "coupled" and cls == "RAE_L2":  # the decoder's weight decay is its optimizer's (pythae's RAE-L2)
        trainer_config.decoder_optimizer_params = {"weight_decay": options["reg_weight"]}
    clock = Clock()
    training = binarized(train_pixels, grey=cls == "VQVAE")
    TrainingPipeline(model=model, training_config=trainer_config)(train_data=training, callbacks=[clock])
    return model.eval(), clock.times


def peer(name: str, workdir: str, epochs: int, train_pixels, test_pixels, x_eval, threads: int) -> dict:
    import torch
    from pythae import samplers

    _, (cls, _), _, sampler, _ = MODELS[name]
    model, times = train_peer(name, workdir, epochs, train_pixels, threads)
    row = {"examples_per_s": 60_000 / float(np.mean(times[1:] or times)), "epoch_seconds": times}
    x_torch = torch.tensor(np.transpose(np.asarray(x_eval), (0, 3, 1, 2)))
    with torch.no_grad():
        if cls == "SVAE":
            per_image = [-svae_log_px(model, x_torch[i : i + 1], K) for i in range(NLL_IMAGES)]
            row |= {"nll": float(np.mean(per_image)), "nll_se": float(np.std(per_image, ddof=1) / np.sqrt(NLL_IMAGES))}
            kappa = torch.nn.functional.softplus(model.encoder(x_torch[:NLL_IMAGES]).log_concentration) + 1
            row["posterior_sd"] = float(np.exp(-0.5 * kappa.log().mean().item()))  # kappa^(-1/2), as ours
        elif hasattr(model, "get_nll") and MODELS[name][0].get("objective", "vae") not in ("vaegan", "msssim"):
            with torch.enable_grad():  # the HVAE's get_nll differentiates its potential
                per_image = [-model.get_nll(x_torch[i : i + 1], n_samples=K, batch_size=K) for i in range(NLL_IMAGES)]
            row |= {"nll": float(np.mean(per_image)), "nll_se": float(np.std(per_image, ddof=1) / np.sqrt(NLL_IMAGES))}
            log_var = model.encoder(x_torch[:NLL_IMAGES]).log_covariance
            row["posterior_sd"] = float(np.exp(0.5 * log_var.mean().item()))

        def reconstruct(part, labels):
            t = torch.tensor(np.transpose(part, (0, 3, 1, 2)))
            if cls == "VQVAE":  # the decoder at the nearest codes
                quantized = model.quantizer(model.encoder(t).embedding.permute(0, 2, 3, 1)).quantized_vector
                return np.transpose(model.decoder(quantized).reconstruction.numpy(), (0, 2, 3, 1))
            z = model.encoder(t).embedding  # the posterior's mean, through the flow where there is one
            z = z / z.norm(dim=-1, keepdim=True) if cls == "SVAE" else z  # the vMF's mean direction
            z = model.iaf_flow.inverse(z).out if hasattr(model, "iaf_flow") else z
            for layer in model.net if cls == "VAE_LinNF" else ():  # its planar or radial steps
                z = layer(z).out
            out = model.decoder(z)["reconstruction"]
            return np.transpose(out.reshape(-1, 1, 28, 28).numpy(), (0, 2, 3, 1))

        row["reconstruction"] = yardstick.reconstruction_errors(reconstruct, np.asarray(x_eval))
        if sampler == "gmm":
            gmm = samplers.GaussianMixtureSampler(model, samplers.GaussianMixtureSamplerConfig(n_components=10))
            with torch.enable_grad():  # RAE-GP's forward differentiates
                gmm.fit(binarized(train_pixels).x.bernoulli())
            chosen = gmm
        elif sampler == "vamp":
            chosen = samplers.VAMPSampler(model)
        elif sampler == "sphere":
            chosen = samplers.HypersphereUniformSampler(model)
        elif sampler == "poincare":
            chosen = samplers.PoincareDiskSampler(model)
        elif sampler == "uniform_codes":
            import torch_vqvae

            grid = model.encoder(x_torch[:1]).embedding.shape[2:]
            chosen = None
            images = torch.cat([torch_vqvae.uniform_codes(model, 500, grid) for _ in range(SAMPLES // 500)])
        else:
            chosen = samplers.NormalSampler(model)
        if chosen is not None:
            images = chosen.sample(num_samples=SAMPLES, batch_size=500, return_gen=True)
    images = np.transpose(images.reshape(-1, 1, 28, 28).numpy(), (0, 2, 3, 1))
    row["samples"] = yardstick.compare("fashion_mnist", test_pixels, images)
    return row


def table(rows: list[dict]) -> str:
    """The Markdown table of docs/evaluation.md: one row per model, ours above pythae's."""

    def nll(r):
        return f"{r['nll']:.2f} ± {r['nll_se']:.2f}" if "nll" in r else "—"

    lines = [
        "| model | library | NLL (nats) | recon BCE (nats) | recon MSE | Fréchet | precision / recall "
        "| density / coverage | train examples/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for side in ("vae_jax", "pythae"):
            r = row[side]
            s, c = r["samples"], r["reconstruction"]
            model = row["model"] if side == "vae_jax" else ""
            lines.append(
                f"| {model} | {side} | {nll(r)} | {c['bce']:.2f} ± {c['bce_se']:.2f} "
                f"| {c['mse']:.4f} | {s['frechet_distance']:.1f} | {s['precision']:.3f} / {s['recall']:.3f} "
                f"| {s['density']:.3f} / {s['coverage']:.3f} | {r['examples_per_s']:,.0f} |"
            )
    return "\n".join(lines)


def options(parser: argparse.ArgumentParser, names: str, known: dict, out: str) -> argparse.Namespace:
    """The command line, with the options both side-by-side scripts share (--threads, --table, --out, and
    --NAMES: comma separated, each one of known's; an unknown one ends the script in one line)."""
    parser.add_argument(f"--{names}", default=",".join(known), help=f"comma separated, of: {', '.join(known)}")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default: 2)")
    parser.add_argument("--table", action="store_true", help="print the Markdown table of the rows in --out, and stop")
    parser.add_argument("--out", default=out, help="rows are appended to this JSON list")
    args = parser.parse_args()
    unknown = [n for n in getattr(args, names).split(",") if n not in known]
    if unknown:
        parser.error(f"unknown {names} {unknown}: one of {', '.join(known)}")
    return args


def fashion_pixels():
    """Fashion-MNIST (vae_jax.data's), and its training and test images (N, 28, 28, 1) in [0, 1]."""
    dataset = data.load("fashion_mnist")
    return (dataset, *(np.asarray(x, np.float32) / 255.0 for x in (dataset.train_images, dataset.test_images)))


def main() -> None:
    global NLL_IMAGES, SAMPLES
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--nll-images", type=int, default=NLL_IMAGES, help="a smaller check of the script only")
    parser.add_argument("--samples", type=int, default=SAMPLES, help="a smaller check of the script only")
    args = options(parser, "models", MODELS, "pythae_side_by_side.json")
    if args.table:
        print(table(json.load(open(args.out))))
        return
    names = args.models.split(",")
    dataset, train_pixels, test_pixels = fashion_pixels()
    binary, grey = (np.asarray(eval_images(dataset.test_images, b)) for b in (True, False))
    NLL_IMAGES, SAMPLES = args.nll_images, args.samples
    rows = json.load(open(args.out)) if os.path.exists(args.out) else []
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            row = {"model": name, "epochs": args.epochs, "differs": MODELS[name][4], "threads": args.threads}
            try:
                x_eval = grey if MODELS[name][0].get("likelihood") == "gaussian" else binary
                row["vae_jax"] = ours(name, os.path.join(tmp, "ours"), args.epochs, test_pixels, x_eval)
                row["pythae"] = peer(
                    name, os.path.join(tmp, "peer"), args.epochs, train_pixels, test_pixels, x_eval, args.threads
                )
            except Exception as e:  # one model's failure is reported, and the others still run
                print(f"{name}: failed, no row: {type(e).__name__}: {e}", flush=True)
                continue
        rows.append(row)
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
        for side in ("vae_jax", "pythae"):
            r = row[side]
            nll = f"NLL {r['nll']:.2f} +- {r['nll_se']:.2f}, q's sd {r['posterior_sd']:.3f}" if "nll" in r else "no NLL"
            recon = r["reconstruction"]
            print(
                f"{name:8} {side:8} {nll}; recon BCE {recon['bce']:.2f}, MSE {recon['mse']:.5f}; "
                f"Fréchet {r['samples']['frechet_distance']:.3f}, P/R {r['samples']['precision']:.3f}/"
                f"{r['samples']['recall']:.3f}, D/C {r['samples']['density']:.3f}/{r['samples']['coverage']:.3f}; "
                f"{r['examples_per_s']:,.0f} examples/s",
                flush=True,
            )


if __name__ == "__main__":
    main()
