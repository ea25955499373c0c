"""--model vqvae --objective vqvae, the VQ-VAE: its maths against brute force (the nearest code, the
loss, the straight-through gradient, the moving-average codebook, the perplexity), and the model from
the command line and the API: it trains, resumes bitwise, samples, evaluates; what it has no use for
is refused in one line."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import DIGITS8, run_command, straight_and_resumed
from PIL import Image

import vae_jax
from vae_jax import codebook, families, objectives
from vae_jax.commands import encode, evaluate, sample
from vae_jax.config import Config
from vae_jax.families.vqvae import nearest
from vae_jax.objectives import Batch
from vae_jax.objectives.vqvae import ema_codebook, perplexity
from vae_jax.visualize import grid

TINY = dict(
    model="vqvae",
    objective="vqvae",
    channels=(8,),
    depth=1,
    latent_dim=3,
    codebook_size=6,
    dataset=DIGITS8,
    likelihood="bernoulli",
)


def _model(**changes):
    config = Config(**(TINY | changes))
    vae = families.build(config, (8, 8, 1))
    return config, vae, vae.init(jax.random.key(0))


def _x(n: int = 5) -> jax.Array:
    return jnp.asarray(np.load(DIGITS8)["x_train"][:n, ..., None] > 127, jnp.float32)


def test_the_nearest_code_is_the_brute_force_argmin():
    vectors, codebook = jax.random.normal(jax.random.key(1), (50, 4)), jax.random.normal(jax.random.key(2), (9, 4))
    brute = np.argmin(((np.asarray(vectors)[:, None] - np.asarray(codebook)[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest(vectors, codebook), brute)


def test_the_grid_the_codes_and_the_uniform_priors_kl():
    _, vae, params = _model()
    assert vae.grid == (4, 4) and vae.latent_dim == 16 * 3 and vae.group_shapes == ((4, 4, 3),)
    z_e, z_q, codes = vae.quantize(params, _x())
    np.testing.assert_array_equal(z_q, vae.embed(params, codes))  # each position's code vector
    np.testing.assert_array_equal(codes, nearest(z_e.reshape(5, 16, 3), params["codebook"]))
    draw = vae.posterior(params, _x()[0], jax.random.key(0), 2)
    np.testing.assert_allclose(draw.kl, 16 * math.log(6), rtol=1e-6)  # log K per position
    np.testing.assert_allclose(draw.log_p, -16 * math.log(6), rtol=1e-6)
    np.testing.assert_array_equal(draw.log_q, 0.0)
    np.testing.assert_allclose(draw.z[0], z_q[0], atol=1e-6)  # the value of z is z_q


def test_the_loss_is_the_papers_formula():
    config, vae, params = _model(vq_beta=0.3)
    objective = objectives.of(config)
    x = _x()
    value, stats = objective.loss(vae, params, {"state": {}, "groups": {}}, Batch(x, None, 100), jax.random.key(0), 0)
    z_e, z_q, codes = (np.asarray(a, np.float64) for a in vae.quantize(params, x))
    logits = np.asarray(vae.decode(params, jnp.asarray(z_q, jnp.float32)))[..., 0]
    xs = np.asarray(x)
    recon = (xs * logits - np.logaddexp(0, logits)).sum(axis=(1, 2, 3))  # Bernoulli log p(x | z_q)
    squared = ((z_e - z_q) ** 2).sum(-1)
    assert float(value) == pytest.approx(np.mean(-recon + squared + 0.3 * squared), rel=1e-5)
    assert float(stats["elbo"]) == pytest.approx(np.mean(recon) - 16 * math.log(6), rel=1e-5)


def test_the_straight_through_gradient_reaches_the_encoder_as_the_decoders_gradient_at_z_q():
    config, vae, params = _model(codebook_update="ema")
    objective, x = objectives.of(config), _x()
    aux = {"state": objective.init(vae, params, jax.random.key(0)), "groups": {}}

    def recon_only(p):
        return objective.loss(vae, p, aux, Batch(x, None, 100), jax.random.key(0), 0)[1]["recon"]

    grads = jax.grad(recon_only)(params)
    z_q = vae.quantize(params, x).z_q
    # by hand: d recon / d z at z = z_q, carried back through the encoder's z_e
    dz = jax.grad(lambda z: jnp.mean(jax.vmap(vae.likelihood.log_prob)(vae.decode(params, z), x)))(z_q)
    _, pullback = jax.vjp(lambda enc: vae.quantize({**params, "encoder": enc}, x).z_e, params["encoder"])
    (by_hand,) = pullback(dz)
    for a, b in zip(jax.tree.leaves(grads["encoder"]), jax.tree.leaves(by_hand)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert sum(float(jnp.abs(g).sum()) for g in jax.tree.leaves(grads["encoder"])) > 0
    np.testing.assert_array_equal(grads["codebook"], 0.0)  # the reconstruction does not move the codes


def test_with_the_loss_rule_a_codes_gradient_is_twice_its_distance_from_its_vectors():
    config, vae, params = _model(vq_beta=0.0)
    objective, x = objectives.of(config), _x()
    zero_decoder = {**params, "decoder": jax.tree.map(jnp.zeros_like, params["decoder"])}  # recon has no z

    def loss(p):
        return objective.loss(vae, p, {"state": {}, "groups": {}}, Batch(x, None, 100), jax.random.key(0), 0)[0]

    grad = np.asarray(jax.grad(loss)(zero_decoder)["codebook"])
    z_e, _, codes = vae.quantize(params, x)
    z_e, codes = np.asarray(z_e).reshape(-1, 3), np.asarray(codes).ravel()
    e = np.asarray(params["codebook"])
    expected = np.zeros_like(e)
    for vector, code in zip(z_e, codes):
        expected[code] += 2 * (e[code] - vector) / len(x)  # the batch mean of |sg[z_e] - e|^2 summed per example
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)


def test_the_moving_averages_and_the_codebook_they_give_are_their_formula():
    config, vae, params = _model(codebook_update="ema", vq_decay=0.9)
    objective, x = objectives.of(config), _x()
    state = objective.init(vae, params, jax.random.key(0))
    counts, sums = np.zeros(6), np.zeros((6, 3))
    for t in (1, 2, 3):
        xs = x if t != 2 else x[:3]
        state = objective.update(vae, params, {"state": state, "groups": {}}, Batch(xs, None, 100), None, 0)
        z_e, _, codes = vae.quantize(params, xs)
        z_e, codes = np.asarray(z_e, np.float64).reshape(-1, 3), np.asarray(codes).ravel()
        n = np.bincount(codes, minlength=6)
        s = np.stack([z_e[codes == i].sum(0) for i in range(6)])
        counts, sums = 0.9 * counts + 0.1 * n, 0.9 * sums + 0.1 * s
        np.testing.assert_allclose(state["count"], counts, rtol=1e-5)
        np.testing.assert_allclose(state["sum"], sums, rtol=1e-5, atol=1e-6)
    debiased_n, debiased_s = counts / (1 - 0.9**3), sums / (1 - 0.9**3)
    total = debiased_n.sum()
    smoothed = (debiased_n + 1e-5) / (total + 6 * 1e-5) * total
    np.testing.assert_allclose(ema_codebook(state, 0.9), debiased_s / smoothed[:, None], rtol=1e-4, atol=1e-6)
    written = objective.written(vae, params, state)["codebook"]
    np.testing.assert_allclose(written, debiased_s / smoothed[:, None], rtol=1e-4, atol=1e-6)
    used = debiased_n > 0.5
    means = sums[used] / counts[used, None]
    np.testing.assert_allclose(written[used], means, rtol=1e-3)  # the means of their vectors
    fresh = objective.init(vae, params, jax.random.key(0))
    np.testing.assert_array_equal(objective.written(vae, params, fresh)["codebook"], params["codebook"])


def test_a_training_step_writes_the_codebook_its_moving_averages_give_and_the_optimizer_leaves_it():
    from vae_jax import optim, training

    config, vae, _ = _model(codebook_update="ema", vq_decay=0.5)
    objective, optimizer = objectives.of(config), optim.make_optimizer(config, 100)
    state = training.init_state(vae, optimizer, objective, jax.random.key(0))
    images = jnp.asarray(np.load(DIGITS8)["x_train"][:64, ..., None])
    run = training.make_train_steps(vae, optimizer, objective, True, 32).run
    for step in range(2):
        before = state
        state, stats = run(state, images, None, jnp.arange(64), jax.random.key(step), step, 1)
        assert not bool(stats["skipped"][0])
        assert int(state.aux["state"]["steps"]) == step + 1
        np.testing.assert_allclose(state.params["codebook"], ema_codebook(state.aux["state"], 0.5), rtol=1e-6)
        assert not np.allclose(state.params["codebook"], before.params["codebook"])
        moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.params["encoder"], before.params["encoder"])
        assert all(jax.tree.leaves(moved))  # the optimizer trains the encoder


@pytest.mark.parametrize("rule", ["loss", "ema"])
def test_dead_codes_restart_at_the_batchs_encoder_outputs_when_their_use_falls_below_r(rule):
    config, vae, params = _model(codebook_update=rule, vq_decay=0.5, vq_restart=1.0)
    objective, x = objectives.of(config), _x(2)  # 2 images: 32 positions
    state = objective.init(vae, params, jax.random.key(0))
    np.testing.assert_array_equal(state["usage"], np.ones(6))  # r at the start, as Jukebox's
    z_e, _, codes = vae.quantize(params, x)
    vectors, n = np.asarray(z_e).reshape(-1, 3), np.bincount(np.asarray(codes).ravel(), minlength=6)
    usage = 0.5 * 1.0 + 0.5 * n
    state = objective.update(vae, params, {"state": state, "groups": {}}, Batch(x, None, 100), jax.random.key(3), 0)
    dead = usage < 1.0  # never chosen in this batch
    assert dead.any() and not dead.all()
    np.testing.assert_array_equal(state["dead"], dead)
    np.testing.assert_allclose(state["usage"], np.where(dead, 1.0, usage), rtol=1e-6)
    book = np.asarray(objective.written(vae, params, state)["codebook"])
    for i in np.flatnonzero(dead):  # each dead code is now one of the batch's encoder outputs
        assert np.abs(vectors - book[i]).max(1).min() < 1e-6
    if rule == "loss":  # the others are the optimizer's, untouched
        np.testing.assert_array_equal(book[~dead], np.asarray(params["codebook"])[~dead])
    else:  # the moving averages restart at the vector, as if it had been given one position
        np.testing.assert_allclose(ema_codebook(state, 0.5)[dead], book[dead], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(state["count"][dead] / (1 - 0.5), 1.0, rtol=1e-6)
    again = objective.update(vae, params, {"state": state, "groups": {}}, Batch(x, None, 100), jax.random.key(4), 1)
    assert not np.array_equal(again["fresh"][again["dead"]], state["fresh"][again["dead"]])  # a new draw each step


def test_perplexity_counts_the_codes_in_even_use():
    assert float(perplexity(jnp.arange(12) % 4, 8)) == pytest.approx(4.0, rel=1e-5)
    assert float(perplexity(jnp.zeros(7, jnp.int32), 8)) == pytest.approx(1.0)


SMALL = ["--dataset", DIGITS8, "--model", "vqvae", "--objective", "vqvae", "--channels", 8, "--depth", 1]
SMALL += ["--latent-dim", 3, "--codebook-size", 6, "--codebook-update", "ema", "--vq-restart", 1, "--batch-size", 32]
SMALL += ["--eval-k", 2]


def test_codebook_usage_counts_the_used_and_dead_codes_and_their_perplexity():
    codes = np.array([[[0, 0], [1, 1]], [[0, 0], [1, 1]], [[3, 3], [3, 3]]])  # 3 images of 2x2 codes
    u = codebook.usage(codes, 6)
    assert (u["codes"], u["used"], u["dead"], u["images"], u["positions"]) == (6, 3, 3, 3, 4)
    assert u["perplexity"] == pytest.approx(3.0)  # three codes, four times each
    assert u["top"] == [[0, 4], [1, 4], [3, 4]]
    skewed = codebook.usage(np.array([[0, 0, 0, 1]]), 2)
    assert skewed["perplexity"] == pytest.approx(math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))))
    assert codebook.summary(u) == "3 of 6 codes used by 3 images (3 dead), perplexity 3.0"


@pytest.fixture(scope="module")
def vq_runs(tmp_path_factory):
    """The run's folder: two epochs straight ('straight'), and one resumed from its first ('resumed')."""
    root = tmp_path_factory.mktemp("vqvae")
    straight_and_resumed(root, SMALL)
    return root


@pytest.mark.slow
def test_the_vqvae_trains_resumes_bitwise_and_samples(vq_runs, tmp_path, monkeypatch):
    resumed, straight = (vae_jax.load(str(vq_runs / w), ema=False) for w in ("resumed", "straight"))
    assert resumed.step == straight.step and resumed.epoch == 2
    for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(straight.params)):
        np.testing.assert_array_equal(a, b)
    assert "nearest code vector" in straight.vae.description["posterior"]
    records = [json.loads(line) for line in (vq_runs / "straight" / "metrics.jsonl").read_text().splitlines()]
    trained = [r for r in records if "train_perplexity" in r]
    assert len(trained) == 2 and all(1 <= r["train_perplexity"] <= 6 for r in trained)
    for mode in ("samples", "reconstructions"):
        out = tmp_path / f"{mode}.png"
        run_command(sample, monkeypatch, "--ckpt", vq_runs / "straight", "--mode", mode, "--out", out, "--n", 4)
        assert Image.open(out).size[0] > 8
    with pytest.raises(vae_jax.UserError, match="this model's z is discrete"):
        straight.sample(jax.random.key(0), 4, 0.5)
    with pytest.raises(vae_jax.UserError, match="this model's z is discrete"):
        run_command(
            sample, monkeypatch, "--ckpt", vq_runs / "straight", "--sampler", "gmm", "--out", tmp_path / "g.png"
        )


@pytest.mark.slow
def test_the_vqvae_evaluates_its_bound_under_the_uniform_prior_and_its_codebook_use(
    vq_runs, tmp_path, monkeypatch, capsys
):
    from vae_jax import data
    from vae_jax.data.pixels import eval_images

    ckpt = vq_runs / "straight"
    run_command(evaluate, monkeypatch, "--ckpt", ckpt, "--k", 3, "--out", tmp_path / "e.json")
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["kl"] == pytest.approx(16 * math.log(6), rel=1e-6)  # one-hot q, uniform p: log K per position
    assert result["nll"] == pytest.approx(-result["elbo"], rel=1e-6)  # q is a point mass: every weight is one
    assert result["latent"]["kl"].startswith("closed form")
    model = vae_jax.load(str(ckpt))
    test_x = np.asarray(eval_images(data.of_run(model.config).test_images, model.vae.likelihood.binary))
    z_e = np.asarray(model.vae.quantize(model.params, jnp.asarray(test_x)).z_e).reshape(len(test_x), 16, 1, 3)
    codes = ((z_e - np.asarray(model.vae.codebook(model.params))) ** 2).sum(-1).argmin(-1)  # nearest, by brute force
    assert result["codebook"] == json.loads(json.dumps(codebook.usage(codes, 6)))
    assert "codebook     " + codebook.summary(result["codebook"]) in capsys.readouterr().out
    Image.fromarray(np.load(DIGITS8)["x_test"][0]).save(tmp_path / "one.png")
    refused = [
        (encode, ["--images", tmp_path / "one.png", "--out", tmp_path / "z.npz"]),
        (sample, ["--mode", "traverse", "--out", tmp_path / "t.png"]),
    ]
    for command, flags in refused:
        with pytest.raises(vae_jax.UserError, match="defined for a continuous latent; this model's z is discrete"):
            run_command(command, monkeypatch, "--ckpt", ckpt, *flags)


@pytest.mark.slow
def test_a_vqvae_opens_in_the_explorer_with_its_codes_and_says_why_not_the_map_sliders_or_interpolation(vq_runs):
    from vae_jax import data, pictures
    from vae_jax.explorer.codes import NOT_SHOWN
    from vae_jax.explorer.facts import page_info
    from vae_jax.explorer.session import open_session

    model = vae_jax.load(str(vq_runs / "straight"))
    dataset = data.of_run(model.config)
    session = open_session(model, dataset.test_images, dataset.test_labels)
    codes = codebook.codes_of(model.vae, model.params, session.inputs)
    assert session.projection is None and session.dims == [] and session.activity_how == NOT_SHOWN["sliders"]
    assert session.codes.usage == codebook.usage(codes, 6)
    grid, recon = session.image_codes("test:3")
    np.testing.assert_array_equal(grid, codes[3])
    decoded = model.decode_top(model.vae.embed(model.params, jnp.asarray(codes[3:4]).reshape(1, -1)))
    np.testing.assert_array_equal(recon, np.rint(np.clip(np.asarray(decoded), 0, 1) * 255).astype(np.uint8)[0])
    for call, panel in [
        (lambda: session.standard("test:0", None), "sliders"),
        (lambda: session.show(np.zeros((1, 48)), None), "sliders"),
        (lambda: session.at_map((0.0, 0.0), None), "map"),
        (lambda: session.interpolation("test:0", "test:1", [0.5], False, None), "interpolation"),
    ]:
        with pytest.raises(vae_jax.UserError, match=NOT_SHOWN[panel].split(":")[0]):
            call()
    np.testing.assert_array_equal(session.samples(1.0, None, seed=2), pictures.samples(model, 16, 2))
    with pytest.raises(vae_jax.UserError, match="a discrete z has no temperature"):
        session.samples(0.5, None, seed=2)
    with pytest.raises(vae_jax.UserError, match="no sampler 'pixelcnn' for this model: prior"):
        session.samples(1.0, None, seed=2, sampler="pixelcnn")  # none fitted beside it
    r = session.upload(_png(dataset.test_images[5, ..., 0]), None)  # a test image, sent as a file
    assert r["bound"] and r["place"] is None and r["codes"] == codes[5].tolist()
    assert r["nll"] == pytest.approx(-model.evaluate(session.inputs[5:6], k=1)["elbo"], rel=1e-5)
    info = page_info(model, session, str(vq_runs / "straight"))
    assert info["discrete"]["grid"] == [4, 4] and [s["name"] for s in info["discrete"]["samplers"]] == ["prior"]
    facts = dict(info["facts"])
    assert facts["latent"] == "a 4x4 grid of codes (48 dimensions)" and facts["codebook"].startswith("6 codes of 3")
    assert facts["codes used"] == "test images: " + codebook.summary(codebook.usage(codes, 6))


def _png(pixels: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.slow
def test_a_pixelcnn_fitted_to_the_codes_is_stored_states_the_bound_and_draws_codes_the_model_decodes(
    vq_runs, tiny_run, tmp_path, monkeypatch, capsys
):
    from vae_jax import data, fitted
    from vae_jax.data.pixels import eval_images

    ckpt = vq_runs / "straight"
    out = tmp_path / "pixelcnn.png"
    run_command(sample, monkeypatch, "--ckpt", ckpt, "--sampler", "pixelcnn", "--out", out, "--n", 4)
    said = capsys.readouterr().out
    assert "fitted sampler: stored" in said or "gated PixelCNN" in said
    model = vae_jax.load(str(ckpt))
    stored = fitted.load_or_fit(model, str(ckpt), "pixelcnn")  # read, not fitted again
    report = stored.report
    assert report["test_log_density_prior"] == pytest.approx(-16 * math.log(6), rel=1e-6)
    test_x = np.asarray(eval_images(data.of_run(model.config).test_images, model.vae.likelihood.binary))
    codes = codebook.codes_of(model.vae, model.params, test_x)
    assert codes.shape == (len(test_x), 4, 4) and codes.max() < 6
    log_p = np.asarray(stored.spec.functions.log_prob(stored.state, codes))
    recon = model.evaluate(test_x, k=1)["recon"]
    assert report["test_nll_bound"] == pytest.approx(-recon - log_p.mean(), rel=1e-5)  # -log p(x|z_q) - log p(c)
    assert report["test_bits_per_dim_bound"] == pytest.approx(report["test_nll_bound"] / (64 * math.log(2)))
    assert "a bound" in fitted.summary(report)
    images = np.asarray(stored.sample(model, jax.random.key(0), 3))
    drawn = stored.spec.functions.sample(stored.state, jax.random.key(0), 3, 1.0)
    decoded = model.decode_top(model.vae.embed(model.params, jnp.asarray(drawn).reshape(3, -1)))
    np.testing.assert_allclose(images, np.clip(decoded, 0, 1), atol=1e-6)
    assert Image.open(out).size[0] > 8
    from vae_jax.explorer.codes import Codes

    other = stored.options | {"epochs": stored.options["epochs"] + 1}
    with pytest.raises(fitted.Unusable, match="holds --sampler pixelcnn with"):
        fitted.read(stored.path, model, "pixelcnn", **other)
    assert fitted.read(stored.path, model, "pixelcnn", as_stored=True, **other).options == stored.options
    shown = Codes(model)  # the explorer offers it beside the uniform prior, and draws what it draws
    shown.read_prior(str(ckpt))
    assert [s["name"] for s in shown.samplers()] == ["prior", "pixelcnn"]
    drawn = stored.sample(model, jax.random.key(4), 4)
    np.testing.assert_array_equal(shown.samples("pixelcnn", 4, 4), grid(np.asarray(drawn), 2))
    with pytest.raises(vae_jax.UserError, match="models a discrete model's codes; this model's z is continuous"):
        fitted.load_or_fit(vae_jax.load(tiny_run.workdir), str(tmp_path), "pixelcnn")


VQ = ["--model", "vqvae", "--objective", "vqvae"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--model", "vqvae"], "--model vqvae has a discrete z (codes): train it with --objective vqvae"),
        (
            ["--objective", "vqvae", "--model", "conv"],
            "--objective vqvae trains a discrete z (codes): use --model vqvae",
        ),
        (["--model", "conv", "--codebook-size", 8], "--codebook-size applies to --model vqvae only, not conv"),
        ([*VQ, "--prior", "mog"], "--prior mog applies to --model mlp, conv, resnet, not vqvae"),
        ([*VQ, "--conditional"], "--model vqvae is unconditional"),
        ([*VQ, "--codebook-update", "ema", "--vq-decay", 1], "--vq-decay"),
    ],
)
def test_what_the_vqvae_has_no_use_for_is_a_one_line_error(flags, message, tmp_path):
    argv = ["--dataset", DIGITS8, *map(str, flags), "--epochs", "1", "--workdir", str(tmp_path / "w")]
    proc = subprocess.run([sys.executable, "train.py", *argv], capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert proc.returncode == 2 and len(errors) == 1 and message in errors[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "w" / "checkpoints").exists()
