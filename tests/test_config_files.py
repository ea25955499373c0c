"""Config files and presets: a run's config.json repeats it bitwise, flags override files, and every
preset (the quality table's configurations, docs/evaluation.md) trains."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from test_cli import assert_one_line_error, run

import vae_jax
from vae_jax import cli, experiment, flags
from vae_jax.config import Config
from vae_jax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(hidden=[16], channels=[4, 8], latent_dim=2, epochs=1, batch_size=500, eval_k=1)


def _parse(argv):
    parser = cli.Parser()
    flags.add_flags(parser)
    return flags.parse(parser, argv)[0]


@pytest.mark.slow
def test_a_runs_config_json_repeats_it_bitwise(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    flags = [
        "--hidden",
        "32",
        "--latent-dim",
        "3",
        "--epochs",
        "2",
        "--batch-size",
        "200",
        "--eval-k",
        "1",
        "--seed",
        "7",
    ]
    for args in (["--workdir", a, *flags], ["--config", os.path.join(a, "config.json"), "--workdir", b]):
        proc = subprocess.run(
            [sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr
    run_a, run_b = vae_jax.load(a), vae_jax.load(b)
    assert run_b.config == Config.from_dict({**run_a.config.to_dict(), "workdir": b})
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(run_a.params), jax.tree.leaves(run_b.params)))
    assert run_a.step == run_b.step == 2 * (4000 // 200)


def test_later_flags_override_the_file_and_the_file_overrides_the_preset(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"latent_dim": 7, "model": "conv", "conditional": True}))
    cfg = _parse(["--preset", "resnet_fashion", "--config", str(path), "--latent-dim", "3"])
    assert (cfg.dataset, cfg.epochs, cfg.depth) == ("fashion_mnist", 10, 1)  # from the preset
    assert cfg.model == "conv" and cfg.conditional  # the file over the preset
    assert cfg.latent_dim == 3  # the flag over the file
    assert _parse([]) == Config()


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "cannot read as JSON"),
        ('["a"]', "expected a JSON object"),
        ('{"evil": 1}', "unknown fields: evil"),
        ('{"latent_dim": "20"}', "wrong type"),
    ],
)
def test_a_bad_config_file_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        _parse(["--config", str(path)])
    code, _, err = run("train.py", "--config", str(path), "--workdir", str(tmp_path / "w"))
    assert_one_line_error(code, err, message)


def test_a_preset_is_a_named_run_in_a_folder_of_its_own(tmp_path):
    """After the README's run in checkpoints/, the docs' `--preset mlp_fashion` trains beside it, not into it."""
    assert _parse(["--preset", "mlp_fashion"]).workdir == os.path.join("runs", "mlp_fashion")
    assert _parse(["--preset", "mlp_fashion", "--workdir", "mine"]).workdir == "mine"  # the flag over the preset
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"workdir": "from-file"}))
    assert _parse(["--preset", "mlp_fashion", "--config", str(path)]).workdir == "from-file"  # the file over it
    assert _parse([]).workdir == "checkpoints"


def test_an_unknown_preset_names_the_known_ones():
    with pytest.raises(UserError, match="'nope' is not one of aae_fashion, aae_mnist, annealed_dsprites"):
        _parse(["--preset", "nope"])


@pytest.mark.slow
@pytest.mark.parametrize("name", flags.presets())
def test_every_preset_trains_an_epoch(name, tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_JAX_SMOKE", "1")  # about 1,024 training images: the preset's settings, not its data's size
    preset = flags.read_file(os.path.join(flags.PRESETS, name + ".json"))
    samples = {name: min(preset[name], 2) for name in ("k", "m") if name in preset}  # 64 draws: minutes here
    cfg = Config.from_dict({**Config().to_dict(), **preset, **TINY, **samples, "workdir": str(tmp_path)})
    metrics = experiment.train(cfg)
    assert metrics["epoch"] == 1 and np.isfinite(metrics["train_loss"])
    assert json.load(open(tmp_path / "config.json")) == cfg.resolved().to_dict()  # "auto" made concrete
