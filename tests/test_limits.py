"""Requests too large to serve are refused in one line naming what to change: a flow too long to
compile, a model too large for the memory free (naming the flags that set its size), image uploads
decoded one at a time."""

import io
import threading
import time

import numpy as np
import pytest
from conftest import DIGITS8
from PIL import Image

from vae_jax import experiment, families, memory
from vae_jax.config import Config
from vae_jax.errors import UserError


def test_a_flow_too_long_to_compile_is_refused_before_anything_runs():
    with pytest.raises(UserError, match=r"--flow-steps 1000000: at most 64 \(each step"):
        Config(flow="iaf", flow_steps=1_000_000)
    assert Config(flow="iaf", flow_steps=64).flow_steps == 64


@pytest.mark.parametrize(
    "options, named",
    [
        ({"prior": "mog", "components": 7}, "--hidden, --latent-dim, --components, --batch-size"),
        ({"prior": "vamp", "pseudo_inputs": 7}, "--hidden, --latent-dim, --pseudo-inputs, --batch-size"),
        ({"flow": "iaf", "flow_steps": 2}, "--hidden, --latent-dim, --flow-steps, --flow-hidden, --batch-size"),
        ({"model": "conv", "channels": (4,)}, "--channels, --latent-dim, --batch-size"),
        ({"objective": "iwae", "k": 3}, "--hidden, --latent-dim, --batch-size, --k"),
    ],
)
def test_a_model_too_large_for_the_memory_free_names_the_flags_that_size_it(tmp_path, monkeypatch, options, named):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    config = Config(dataset=DIGITS8, hidden=(8,), latent_dim=2, batch_size=16, workdir=str(tmp_path / "w"), **options)
    with pytest.raises(UserError, match="this run needs at least") as refused:
        experiment.train(config)
    assert str(refused.value).endswith(f"use a smaller {named}")
    assert families.size_flags(config) == named.split(", ")[: len(families.size_flags(config))]


def test_explorer_uploads_are_decoded_one_at_a_time(tiny_run, monkeypatch):
    import vae_jax
    from vae_jax.data import model_inputs
    from vae_jax.explorer.session import open_session

    session = open_session(vae_jax.load(tiny_run.workdir), None, None)
    decode, inside, most = model_inputs.decode, [0], [0]

    def slow_decode(data, max_pixels):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.2)
        inside[0] -= 1
        return decode(data, max_pixels)

    monkeypatch.setattr(model_inputs, "decode", slow_decode)
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(buffer, format="PNG")
    threads = [threading.Thread(target=session.upload, args=(buffer.getvalue(), None)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and len(session.uploads) == 4
