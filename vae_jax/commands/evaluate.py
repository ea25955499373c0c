"""Honest numbers for a trained VAE: python evaluate.py --ckpt checkpoints/ [--k 1000]."""

import json
import os
import time
from typing import TYPE_CHECKING

from vae_jax import cli, config, newfiles, options, samplers

if TYPE_CHECKING:
    import vae_jax


def table(model: "vae_jax.Model", result: dict, which: str, seconds: float) -> str:
    d, c = result["data"], model.config
    kind = model.objective.label + (", conditional" if c.conditional else "")
    rows = [
        f"checkpoint   step {model.step} (epoch {model.epoch}, {which})",
        f"model        {kind}: {c.model}, {c.likelihood} likelihood, latent {_latent(model)}",
        f"trained on   {model.objective.formula}",
        f"data         {'your images' if d['split'] == 'images' else d['dataset'] + ' ' + d['split'] + ' split'}, "
        f"{d['size']} images "
        f"{'x'.join(map(str, d['image_shape']))}, from {d['source']}",
        f"pixels       {d['pixels']}",
        "",
    ]
    if result.get("autoencoder"):
        rows += [
            f"recon        {result['recon']:.2f} +- {result['recon_se']:.2f} nats  log p(x|z = encoder mean)",
            f"squared err  {result['mse_per_pixel']:.5f} per pixel",
            f"active units {result['active_units']} / {result['latent_dim']}",
            f"note         {result['note']}",
            _time(seconds),
        ]
        return "\n".join(rows)
    nll = "NLL -log p(x|y)" if result["conditional"] else "NLL"
    latent = result["latent"]
    if result["conditional"]:
        rows.append(f"conditional  {d['conditional']}")
    rows += [
        f"{nll:<12} {result['nll']:.2f} +- {result['nll_se']:.2f} nats per image (importance sampled, "
        f"k={result['k']}, +- is the standard error over images)",
        f"bits/dim     {result['bits_per_dim']:.4f}",
        f"ELBO         {result['elbo']:.2f} +- {result['elbo_se']:.2f} nats",
        f"  recon      {result['recon']:.2f}   E_q[log p(x|z)] over the same {result['k']} samples",
        f"  KL         {result['kl']:.2f}   {latent['kl']}",
        f"active units {result['active_units']} / {result['latent_dim']}   (Var_x E_q[z_d] > 0.01, z_d in prior "
        "standard deviations from the prior's mean)",
        *([f"codebook     {_codebook(result['codebook'])}"] if "codebook" in result else []),
        f"prior        {latent['prior']}",
        f"posterior    {latent['posterior']}",
    ]
    if len(result["groups"]) > 1:  # a hierarchy: thousands of units, shown per group (top first)
        per_group = zip(result["groups"], result["kl_per_group"], result["active_units_per_group"])
        rows += [
            f"  group {g + 1:<4} KL {kl:8.2f}   active units {active} / {size}"
            for g, (size, kl, active) in enumerate(per_group)
        ]
    elif result["kl_per_dim"] is not None:
        rows.append("KL per dim   " + " ".join(f"{v:.2f}" for v in result["kl_per_dim"]))
    rows.append(_time(seconds))
    return "\n".join(rows)


def _yardstick(model: "vae_jax.Model", dataset, args) -> dict:
    """evaluate.py --samples: vae_jax.yardstick's numbers for the chosen split."""
    import jax

    from vae_jax import fitted, smoke, yardstick
    from vae_jax.data.pixels import eval_images

    pixels, labels = getattr(dataset, f"{args.split}_images"), getattr(dataset, f"{args.split}_labels")
    draw = None
    if args.sampler != "prior":
        sampler = fitted.load_or_fit(model, cli.outputs_of(args.ckpt), args.sampler, args.seed, dataset)
        draw = lambda key, n: sampler.sample(model, key, n)  # noqa: E731
    x = eval_images(pixels, model.vae.likelihood.binary)
    n = smoke.samples(args.samples)
    return yardstick.measure(model, pixels, x, labels, n, jax.random.key(args.seed), draw, args.sampler)


def yardstick_rows(result: dict) -> list[str]:
    """The table's lines of evaluate.py --samples."""
    s, r = result["samples"], result["reconstruction"]
    return [
        f"samples      {s['n']:,} from the {s['sampler']} against {s['test_images']:,} test images, in {s['features']}",
        f"  Fréchet    {s['frechet_distance']:.3f}   (FID's formula in these features)",
        f"  precision  {s['precision']:.3f}   recall {s['recall']:.3f}   (k = 3)",
        f"  density    {s['density']:.3f}   coverage {s['coverage']:.3f}   (k = 5)",
        f"recon error  squared {r['mse']:.5f} +- {r['mse_se']:.5f} per sub-pixel, binary cross-entropy "
        f"{r['bce']:.2f} +- {r['bce_se']:.2f} nats per image (at the encoder's mean)",
    ]


def disentanglement_rows(result: dict) -> list[str]:
    """The table's lines of evaluate.py --disentanglement."""
    s = result["scores"]
    factors = ", ".join(f"{name} ({n})" for name, n in result["factors"].items())
    return [
        f"factors      {factors}; scores of {result['representation']} ({result['observations']} images)",
        f"  BetaVAE    {s['beta_vae']:.3f}   FactorVAE {s['factor_vae']:.3f}   MIG {s['mig']:.3f}   SAP {s['sap']:.3f}",
        f"  DCI        disentanglement {s['dci_disentanglement']:.3f}   completeness {s['dci_completeness']:.3f}   "
        f"informativeness {s['dci_informativeness_test']:.3f}",
        f"  modularity {s['modularity']:.3f}   explicitness {s['explicitness']:.3f}",
    ]


def _codebook(usage: dict) -> str:
    from vae_jax import codebook  # here: --help does not wait for JAX

    return codebook.summary(usage)


def _time(seconds: float) -> str:
    return f"time         {seconds:.1f} s   this evaluation, its compilation included (not loading the model and data)"


def _latent(model: "vae_jax.Model") -> str:
    """The latent's size; of a hierarchy, its groups' shapes, top first."""
    shapes = model.vae.group_shapes
    if len(shapes) == 1 and len(shapes[0]) == 1:
        return str(model.vae.latent_dim)
    return f"{len(shapes)} group{'s' * (len(shapes) > 1)} " + ", ".join("x".join(map(str, s)) for s in shapes)


def make_parser() -> cli.Parser:
    """The evaluate.py flags (the docs list them from here)."""
    parser = cli.Parser(description="Importance-sampled log-likelihood, ELBO and active units of a checkpoint.")
    cli.add_checkpoint_flags(parser, latest=True)
    parser.add_argument("--k", type=int, default=1000, help="importance samples per image (default: 1000)")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="images evaluated at once (default: sized to the image)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the importance samples (default: 0)")
    parser.add_argument("--split", default="test", choices=("test", "train"), help="which split (default: test)")
    parser.add_argument("--images", default=None, help="evaluate your own images (a PNG/JPEG file or a folder) instead")
    parser.add_argument(
        "--samples",
        type=int,
        default=0,
        help="also compare N samples with the test images in the features of the dataset's shipped classifier "
        "(Fréchet distance, precision, recall, density, coverage) and measure the reconstructions' error "
        "(default: 0, not measured)",
    )
    parser.add_argument(
        "--sampler",
        default="prior",
        choices=samplers.names(),
        help=f"--samples: {samplers.help_text()}, stored beside the checkpoint",
    )
    parser.add_argument(
        "--disentanglement",
        action="store_true",
        help="also score the posterior means against the dataset's known factors (dsprites): BetaVAE and FactorVAE "
        "scores, MIG, DCI, modularity and explicitness, SAP, with disentanglement_lib's sample sizes",
    )
    cli.add_label_flag(parser, "the class of your --images")
    cli.add_invert_flag(parser)
    parser.add_argument(
        "--out",
        default=None,
        help="the JSON result to write, never overwritten (default: <ckpt>/eval.json, or eval_images.json for "
        "--images: the latest result, replaced by the next)",
    )
    return parser


def run() -> None:
    parser = make_parser()
    args = parser.parse_args()
    for name in ("k", "batch_size"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if options.samples_at_most(args.k):
        parser.error(f"--k {args.k}: {options.samples_at_most(args.k)}")
    if not 0 <= args.seed <= config.MAX_SEED:
        parser.error(f"--seed must be in 0 .. {config.MAX_SEED}, got {args.seed}")
    if (args.label is not None or args.invert) and not args.images:
        parser.error("--label and --invert go with --images")
    if args.samples < 0:
        parser.error(f"--samples must be positive, got {args.samples}")
    if args.samples and args.images:
        parser.error("--samples compares samples with the dataset's test images: not with --images")
    if args.disentanglement and args.images:
        parser.error("--disentanglement draws observations of the dataset's factors: not with --images")
    if args.sampler != "prior" and not args.samples:
        parser.error("--sampler goes with --samples")
    default = os.path.join(cli.outputs_of(args.ckpt), "eval_images.json" if args.images else "eval.json")
    out, _ = newfiles.choose(args.out, default, ".json", number=False)
    from vae_jax import data, report, smoke

    model = cli.load(args)
    c = model.config
    if args.samples:
        from vae_jax import classifier

        classifier.record(c.dataset)  # the yardstick's classifier is there, before the long part
    if args.disentanglement:
        from vae_jax import factor_scores

        factor_scores.ground_truth(c.dataset)  # a dataset with factors, before the long part
    if args.images:  # the user's images stand in for the test split
        pixels, labels, _ = cli.user_images(model, args.images, cli.label_of(model, args.label), args.invert)
        dataset = data.Dataset(args.images, args.images, pixels, labels, pixels, labels)
    else:
        dataset = data.of_run(c)
    t0 = time.time()
    k = smoke.k(args.k)
    result = report.evaluation(
        model.vae, model.params, model.config, dataset, args.split, k, args.seed, args.batch_size
    )
    if args.samples:
        result["yardstick"] = _yardstick(model, dataset, args)
    if args.disentanglement:
        result["disentanglement"] = factor_scores.measure(model, args.seed)
    seconds = time.time() - t0
    if args.images:
        result["data"]["split"] = "images"
    lines = table(model, result, "best" if args.best else "latest", seconds).split("\n")
    if "yardstick" in result:  # before the time line
        lines[-1:-1] = yardstick_rows(result["yardstick"])
    if "disentanglement" in result:
        lines[-1:-1] = disentanglement_rows(result["disentanglement"])
    print("\n".join(lines))
    record = {"checkpoint_step": model.step, "epoch": model.epoch, "which": "best" if args.best else "latest", **result}

    def write(path: str) -> None:
        with open(path, "w") as f:
            json.dump(record, f, indent=1)

    print(f"wrote {newfiles.write_new(out, write) if args.out else newfiles.replace(out, write)}")


def main() -> None:
    cli.main(run)


if __name__ == "__main__":
    main()
