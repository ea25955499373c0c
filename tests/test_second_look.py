"""What a new user meets after the first run: train.py names what it wrote, a conditional model's
pictures show every class, images of the opposite polarity are said, messages name the next step
(--image-size, the classes by name, --pretrained, a folder of images), one error prefix, and the
explorer's first interpolation crosses two classes."""

import logging
import os
import sys
from types import SimpleNamespace

import jax
import numpy as np
import pytest
from conftest import DIGITS8
from PIL import Image

import vae_jax
from vae_jax import cli, experiment, outputs
from vae_jax.config import Config
from vae_jax.errors import UserError
from vae_jax.families import build


def test_train_names_every_output_it_wrote(tmp_path, caplog):
    config = Config(dataset=DIGITS8, hidden=(8,), latent_dim=2, batch_size=32, eval_k=1, epochs=1,
                    workdir=str(tmp_path / "w"))  # fmt: skip
    with caplog.at_level(logging.INFO, logger="vae_jax"):
        experiment.train(config)
    said = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("outputs in "))
    for name in ("samples.png", "reconstructions.png", "curves.png"):
        path = os.path.join(config.workdir, name)
        assert path in said and os.path.isfile(path)
    assert "redrawn each epoch" in said and os.path.isfile(os.path.join(config.workdir, "history", "epoch_0001.png"))


def test_a_conditional_models_training_samples_show_every_class():
    vae = build(Config(conditional=True, hidden=(8,), latent_dim=2), (8, 8, 1), num_classes=10)
    params = vae.init(jax.random.key(0))
    x = jax.numpy.zeros((12, 8, 8, 1))
    shown, recons, samples = outputs.picture_fn(vae, x, np.arange(12) % 10, jax.random.key(1))(params)
    assert samples.shape == (80, 8, 8, 1)  # a row of 8 for each of the 10 classes, not 8 rows


def _pngs(folder, pixels) -> str:
    os.makedirs(folder, exist_ok=True)
    for i, image in enumerate(pixels):
        Image.fromarray(image[..., 0]).save(os.path.join(folder, f"{i}.png"))
    return str(folder)


def test_images_of_the_opposite_polarity_are_said_with_the_fix(tiny_run, tmp_path, caplog):
    model = vae_jax.load(tiny_run.workdir)
    digits = np.load(DIGITS8)["x_test"][:6].astype(np.uint8)[..., None]  # light digits on black, as trained
    drawn = _pngs(tmp_path / "drawn", 255 - digits)  # dark digits on white, as people draw them
    with caplog.at_level(logging.WARNING, logger="vae_jax"):
        pixels, _, _ = cli.user_images(model, drawn, None)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "6 of 6 images have a light background where the model's images have a dark" in said[0]
    assert said[0].endswith("--invert turns them over")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vae_jax"):
        turned, _, _ = cli.user_images(model, drawn, None, invert=True)
        cli.user_images(model, _pngs(tmp_path / "as-trained", digits), None)
    assert not caplog.records and np.array_equal(turned, 255 - pixels)


def test_an_upload_of_the_opposite_polarity_gets_a_note(tiny_run):
    import io

    from vae_jax import data
    from vae_jax.explorer.session import open_session

    model = vae_jax.load(tiny_run.workdir)
    dataset = data.of_run(model.config)
    session = open_session(model, dataset.test_images, dataset.test_labels)
    buffer = io.BytesIO()
    Image.fromarray(255 - dataset.test_images[0, ..., 0]).save(buffer, format="PNG")
    notes = session.upload(buffer.getvalue(), None)["notes"]
    assert any("the image has a light background" in n and "turned over" in n for n in notes), notes


def test_a_conv_model_on_images_it_cannot_halve_names_image_size():
    with pytest.raises(UserError, match=r"got 90x90x3: for an image folder, --image-size 88 resizes"):
        build(Config(model="conv"), (90, 90, 3))


def test_a_label_is_a_class_number_or_a_class_name_and_a_wrong_one_lists_them():
    fashion = SimpleNamespace(vae=SimpleNamespace(n_conditions=10), config=SimpleNamespace(dataset="fashion_mnist"))
    assert cli.label_of(fashion, "Dress") == cli.label_of(fashion, "dress") == cli.label_of(fashion, "3") == 3
    with pytest.raises(UserError, match=r"--label '12': this model's classes are 0 T-shirt/top, 1 Trouser, .*9 Ankle"):
        cli.label_of(fashion, "12")
    digits = SimpleNamespace(vae=SimpleNamespace(n_conditions=10), config=SimpleNamespace(dataset="mnist"))
    with pytest.raises(UserError, match=r"this model's classes are 0, 1, 2, .*, 9$"):
        cli.label_of(digits, "-1")
    plain = SimpleNamespace(vae=SimpleNamespace(n_conditions=0), config=SimpleNamespace(dataset="mnist"))
    with pytest.raises(UserError, match="--label needs a conditional model"):
        cli.label_of(plain, "3")


def _main(monkeypatch, capsys, command, *argv) -> str:
    """Run a command's main() as `python command.py ARGV` would: its exit code must be 2; its stderr."""
    monkeypatch.setattr(sys, "argv", [f"{command.__name__.rsplit('.', 1)[-1]}.py", *map(str, argv)])
    with pytest.raises(SystemExit) as stop:
        command.main()
    assert stop.value.code == 2
    return capsys.readouterr().err.strip()


def test_the_explorer_without_a_run_names_the_shipped_models(tmp_path, monkeypatch, capsys):
    from vae_jax.commands import explore

    monkeypatch.chdir(tmp_path)
    err = _main(monkeypatch, capsys, explore)
    assert err.startswith("explore.py: error: --ckpt checkpoints: no such folder; train a model first")
    assert "--pretrained fashion-2d (or fashion-conv, " in err and "\n" not in err


def test_the_explorer_opens_a_shipped_model_named_by_ckpt_and_leaves_logging_as_it_was(tmp_path, monkeypatch, capsys):
    from vae_jax.commands import explore

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAE_JAX_SMOKE", "1")  # it stops once its own request for /api/info was answered
    monkeypatch.setattr(sys, "argv", ["explore.py", "--ckpt", "pretrained:fashion-2d"])
    mine = logging.FileHandler(tmp_path / "log.txt")  # a handler the process had: serving leaves it open
    logging.getLogger().addHandler(mine)
    try:
        explore.run()
    finally:
        logging.getLogger().removeHandler(mine)
    assert capsys.readouterr().out.splitlines()[-1] == "explorer: stopped"
    assert mine.stream is not None and not mine.stream.closed
    mine.close()


def test_a_ckpt_that_is_a_folder_of_images_says_how_to_train_on_it(tmp_path, monkeypatch, capsys):
    from vae_jax.commands import sample

    folder = _pngs(tmp_path / "photos" / "cats", np.zeros((3, 8, 8, 1), np.uint8))
    err = _main(monkeypatch, capsys, sample, "--ckpt", os.path.dirname(folder))
    assert err == (
        f"sample.py: error: --ckpt {tmp_path / 'photos'}: is a folder of images, not of checkpoints; train on it "
        f"with: python train.py --dataset {tmp_path / 'photos'} --workdir runs/mine, then --ckpt runs/mine"
    )


def test_every_error_line_begins_with_the_command_that_failed(tiny_run, tmp_path, monkeypatch, capsys):
    from vae_jax.commands import sample

    parsing = _main(monkeypatch, capsys, sample, "--n", "0")  # argparse's own
    loading = _main(monkeypatch, capsys, sample, "--ckpt", tmp_path / "none")  # the package's
    labelled = _main(monkeypatch, capsys, sample, "--ckpt", tiny_run.workdir, "--label", "3")
    for err in (parsing, loading, labelled):
        assert err.startswith("sample.py: error: ") and "\n" not in err, err


def test_the_first_interpolation_crosses_two_classes(tiny_run):
    from vae_jax.explorer.session import open_session

    model = vae_jax.load(tiny_run.workdir)
    digits = np.load(DIGITS8)
    order = np.argsort(digits["y_test"], kind="stable")  # a split sorted by class, as the MNIST sample's
    session = open_session(model, digits["x_test"][order].astype(np.uint8)[..., None], digits["y_test"][order])
    a, b = session.default_pair()
    first_other = int(np.argmax(session.labels != session.labels[0]))
    assert a == 0 and b == first_other > 1 and session.labels[b] != session.labels[a]


def test_a_shipped_models_outputs_go_under_runs():
    assert cli.outputs_of("pretrained:fashion-mlp") == os.path.join("runs", "pretrained-fashion-mlp")
    assert cli.outputs_of("checkpoints/") == "checkpoints/"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, ".gitignore")) as f:
        assert "/runs/" in f.read().split()  # a clone's runs (presets, shipped models' outputs) stay untracked


def test_every_command_that_loads_a_model_takes_pretrained_name(capsys):
    from vae_jax.commands import encode, evaluate, sample

    for command, needed in ((sample, []), (evaluate, []), (encode, ["--images", "a.png"])):
        parser = command.make_parser()
        assert parser.parse_args(["--pretrained", "fashion-mlp", *needed]).ckpt == "pretrained:fashion-mlp"
        for wrong, said in ((["--pretrained", "nope"], "is not one of fashion-2d"),
                            (["--pretrained", "mnist-mlp", "--ckpt", "runs/a"], "not both")):  # fmt: skip
            with pytest.raises(SystemExit) as stop:
                parser.parse_args([*wrong, *needed])
            err = capsys.readouterr().err
            assert stop.value.code == 2 and said in err and err.count("\n") == 1, err
