"""Every picture mode: sizes, content that can be checked, and same seed -> same bytes."""

import os

import jax
import numpy as np
import pytest

import vae_jax
from vae_jax import data, experiment, pictures
from vae_jax.config import Config
from vae_jax.data.pixels import eval_images
from vae_jax.errors import UserError
from vae_jax.visualize import interpolation_latents, project_2d, save_figure, save_png, traversal_latents


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-D latent model after two epochs, and the test split it was measured on."""
    workdir = str(tmp_path_factory.mktemp("pictures"))
    experiment.train(Config(latent_dim=2, hidden=(256,), epochs=2, workdir=workdir, eval_k=5))
    ds = data.load("mnist")
    return vae_jax.load(workdir), np.asarray(eval_images(ds.test_images, True)), ds.test_labels, workdir


@pytest.mark.parametrize("slerp", [False, True])
def test_interpolation_endpoints_are_the_reconstructions_of_the_endpoints(run, slerp):
    model, x, _, _ = run
    rows = pictures.interpolation_rows(model, x, rows=3, steps=6, seed=5, slerp=slerp).reshape(3, 6, 28, 28, 1)
    idx = np.asarray(jax.random.permutation(jax.random.key(5), len(x))[:6]).reshape(3, 2)
    for r in range(3):
        np.testing.assert_allclose(rows[r, 0], model.reconstruct(x[idx[r, :1]])[0], atol=1e-5)
        np.testing.assert_allclose(rows[r, -1], model.reconstruct(x[idx[r, 1:]])[0], atol=1e-5)
    assert not np.allclose(rows[0, 0], rows[0, -1])


def test_slerp_moves_at_constant_angle_and_linear_at_constant_step():
    z0, z1 = np.array([1.0, 0.0, 0.0]), np.array([0.0, 2.0, 0.0])
    s = interpolation_latents(z0, z1, 5, slerp=True)
    angles = [np.arccos(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)) for a, b in zip(s[:-1], s[1:])]
    np.testing.assert_allclose(angles, np.pi / 8, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), [1.0, 1.25, 1.5, 1.75, 2.0], atol=1e-5)
    lin = interpolation_latents(z0, z1, 5)
    np.testing.assert_allclose(np.diff(lin, axis=0), np.tile((z1 - z0) / 4, (4, 1)), atol=1e-6)


def test_traverse_varies_two_dims_and_holds_the_others_fixed():
    z = np.arange(6, dtype=np.float32)
    values = np.linspace(-3, 3, 4).astype(np.float32)
    g = traversal_latents(z, (1, 4), values).reshape(4, 4, 6)
    for d in (0, 2, 3, 5):
        assert np.all(g[..., d] == z[d])
    assert np.all(g[:, :, 1] == values[:, None]) and np.all(g[:, :, 4] == values[None, :])


def test_traverse_picture_uses_the_most_active_dims_by_default(run):
    model, x, _, _ = run
    image, dims = pictures.traversal(model, x, seed=0)
    assert sorted(dims) == [0, 1] and image.shape == (9 * 30 + 2, 9 * 30 + 2, 1)
    with pytest.raises(UserError, match="two different dimensions"):
        pictures.traversal(model, x, dims=(0, 0))


def test_latent_scatter_has_one_colour_per_label(run):
    model, x, labels, _ = run
    fig = pictures.latents(model, x, labels)
    ax = fig.axes[0]
    colours = {tuple(np.round(c.get_facecolor()[0], 4)) for c in ax.collections}
    assert len(ax.collections) == 10 and len(colours) == 10
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [str(i) for i in range(10)]
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(x)


def test_pca_projection_keeps_distances_of_points_on_a_plane():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(50, 2)) @ np.linalg.qr(rng.normal(size=(5, 2)))[0].T
    p = project_2d(plane)
    d = lambda a: np.linalg.norm(a[:, None] - a[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(d(p), d(plane - plane.mean(0)), atol=1e-8)


def test_manifold_needs_a_2d_latent(run, tmp_path):
    model, *_ = run
    assert pictures.manifold(model, n=15).shape == (15 * 28, 15 * 28, 1)
    experiment.train(Config(latent_dim=3, hidden=(32,), epochs=1, workdir=str(tmp_path), eval_k=1))
    with pytest.raises(UserError, match="needs a 2-D latent"):
        pictures.manifold(vae_jax.load(str(tmp_path)))


def test_history_has_one_row_per_epoch_below_the_originals(run, tmp_path):
    _, _, _, workdir = run
    image = pictures.history(workdir)
    assert image.shape == (3 * (28 + 4), 10 * 30 + 2, 1)  # originals + 2 epochs, each a padded row
    with pytest.raises(UserError, match="no per-epoch reconstructions"):
        pictures.history(str(tmp_path))


def test_same_seed_gives_the_same_bytes(run, tmp_path):
    model, x, labels, _ = run
    makers = {
        "samples": lambda s: pictures.samples(model, 16, s),
        "reconstructions": lambda s: pictures.reconstructions(model, x, 8, s),
        "interpolate": lambda s: pictures.interpolations(model, x, 2, 5, seed=s, slerp=True),
        "traverse": lambda s: pictures.traversal(model, x, s)[0],
    }
    for name, make in makers.items():
        paths = [save_png(str(tmp_path / f"{name}{i}.png"), make(seed)) for i, seed in enumerate((3, 3, 4))]
        blobs = [open(p, "rb").read() for p in paths]
        assert blobs[0] == blobs[1], name
        # a 2-D traversal overrides both latent dims, so the chosen image (the seed) cannot matter there
        assert (blobs[0] == blobs[2]) == (name == "traverse"), name
    figs = [save_figure(str(tmp_path / f"latents{i}.png"), pictures.latents(model, x, labels)) for i in range(2)]
    assert open(figs[0], "rb").read() == open(figs[1], "rb").read()
    assert os.path.getsize(figs[0]) > 10_000
