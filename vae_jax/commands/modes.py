"""sample.py's modes: each a small function that draws one picture from a loaded model,
draw(model, x, labels, n, args) with x (N, H, W, C) and labels (N,) the test split's (or the
user's --images) for the modes in READS_TEST_IMAGES, else None; `args` are sample.py's flags."""

from vae_jax import cli, pictures


# each returns a picture: an image array (for latents a figure)
def _samples(model, x, labels, n, args):
    if args.sampler == "prior":
        return pictures.samples(model, n, args.seed, args.temperature, args.label)
    from vae_jax import fitted

    sampler = fitted.load_or_fit(model, cli.outputs_of(args.ckpt), args.sampler, args.seed, components=args.components)
    print(fitted.summary(sampler.report))
    print(f"left: {n} samples from the prior; right: {n} from the fitted sampler ({sampler.path})")
    return pictures.beside_prior(model, sampler, n, args.seed, args.temperature)


def _manifold(model, x, labels, n, args):
    return pictures.manifold(model, label=args.label)


def _reconstructions(model, x, labels, n, args):
    return pictures.reconstructions(model, x, n, args.seed, labels)


def _interpolate(model, x, labels, n, args):
    return pictures.interpolations(model, x, n, args.steps, seed=args.seed, slerp=args.slerp, labels=labels)


def _traverse(model, x, labels, n, args):
    image, dims = pictures.traversal(model, x, args.seed, args.dims, labels=labels)
    print(f"traversed latent dimensions {dims[0]} (rows) and {dims[1]} (columns) over [-3, 3]")
    return image


def _latents(model, x, labels, n, args):
    if args.projection == "tsne":
        print(f"latents: t-SNE of {len(x)} posterior means (about a minute for 10,000 on 2 CPU cores)")
    return pictures.latents(model, x, labels, args.projection, args.seed)


DRAW = {
    "samples": _samples,
    "reconstructions": _reconstructions,
    "interpolate": _interpolate,
    "traverse": _traverse,
    "latents": _latents,
    "manifold": _manifold,
}
READS_TEST_IMAGES = ("reconstructions", "interpolate", "traverse", "latents")
