"""Data parallelism: 1 vs 8 devices, host- vs device-fed batches, two processes, bfloat16."""

import json
import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_cli import assert_one_line_error, run

import vae_jax
from vae_jax.config import Config
from vae_jax.families import build
from vae_jax.objectives.vae import ELBO
from vae_jax.training import init_state, make_train_steps

pytestmark = pytest.mark.slow  # run by the full suite only (see docs/development.md, Tests)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(devices: int) -> dict[str, str]:
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}


def _multidevice(devices: int, feed: str = "device", model: str = "mlp", options: str = "{}") -> dict:
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "multidevice.py"), feed, model, options],
        env=_env(devices),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_one_and_eight_devices_give_the_same_loss_curve_and_samples():
    one, eight = _multidevice(1), _multidevice(8)
    assert (one["devices"], eight["devices"]) == (1, 8)
    # only float reassociation differs: the batch mean is summed per device, then across devices
    np.testing.assert_allclose(eight["losses"], one["losses"], rtol=2e-5)
    np.testing.assert_allclose(eight["samples"], one["samples"], atol=2e-5)
    assert one["losses"][-1] < one["losses"][0] - 10  # it trained
    host = _multidevice(8, "host")  # each process hands over its rows: the same batches
    np.testing.assert_allclose(host["losses"], one["losses"], rtol=2e-5)


@pytest.mark.parametrize(
    "options",
    ['{"prior": "vamp", "pseudo_inputs": 6, "flow": "iaf", "flow_steps": 2, "flow_hidden": 16}', '{"prior": "mog"}'],
)
def test_mixture_priors_and_flows_train_the_same_on_one_and_eight_devices(options):
    one, eight = _multidevice(1, options=options), _multidevice(8, options=options)
    assert (one["devices"], eight["devices"]) == (1, 8)
    np.testing.assert_allclose(eight["losses"], one["losses"], rtol=2e-5)
    np.testing.assert_allclose(eight["samples"], one["samples"], atol=2e-5)
    assert one["losses"][-1] < one["losses"][0] - 5  # it trained


def test_a_hierarchical_vae_trains_the_same_on_one_and_eight_devices():
    one, eight = _multidevice(1, model="hvae"), _multidevice(8, model="hvae")
    assert (one["devices"], eight["devices"]) == (1, 8)
    np.testing.assert_allclose(eight["losses"], one["losses"], rtol=1e-4)
    np.testing.assert_allclose(eight["samples"], one["samples"], atol=1e-4)
    assert one["losses"][-1] < one["losses"][0] - 10  # it trained


def test_a_batch_the_devices_do_not_divide_is_refused_with_the_nearest_sizes(tmp_path):
    for batch, hint in (("100", "try 96 or 104"), ("3", "try 8")):
        proc = subprocess.run(
            [sys.executable, "train.py", "--batch-size", batch, "--workdir", str(tmp_path)],
            cwd=ROOT,
            env=_env(8),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert f"--batch-size {batch} is the global batch and must be a multiple of the 8 devices; {hint}" in last


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--num-processes", "0"], "--num-processes must be positive"),
        (["--num-processes", "2", "--process-id", "2"], "--process-id must be in 0 .. num-processes - 1, got 2"),
        (["--process-id", "-1"], "--process-id must be in 0 .. num-processes - 1, got -1"),
    ],
)
def test_bad_process_flags_are_one_line_errors(flags, message):
    code, _, err = run("train.py", *flags)
    assert_one_line_error(code, err, message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


FLAGS = ["--hidden", "64", "--latent-dim", "4", "--batch-size", "200", "--eval-k", "1"]


def _train(workdir, epochs: int, processes: int) -> list[str]:
    """train.py in `processes` processes of 2 devices each (1 process: 1 device); their stderr."""
    flags = [sys.executable, "train.py", *FLAGS, "--epochs", str(epochs), "--workdir", str(workdir)]
    if processes == 1:
        proc = subprocess.run(flags, cwd=ROOT, env=_env(1), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return [proc.stderr]
    address = f"localhost:{_free_port()}"
    procs = [
        subprocess.Popen(
            [*flags, "--coordinator", address, "--num-processes", str(processes), "--process-id", str(i)],
            cwd=ROOT,
            env=_env(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * processes, errs
    return errs


def _assert_same_params(a, b):
    assert a.step == b.step
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)


def test_two_processes_train_like_one_and_checkpoints_move_between_them(tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    errs = _train(two, 1, 2)
    assert "training on 4 device(s)" in errs[0] and "fed from the host" in errs[0]
    assert "params identical on all 2 processes" in errs[0]  # multihost_utils.assert_equal at the end
    assert "epoch 1/1" not in errs[1]  # only process 0 reports
    assert sorted(os.listdir(two)).count("metrics.jsonl") == 1
    _train(one, 1, 1)
    _assert_same_params(vae_jax.load(str(two)), vae_jax.load(str(one)))  # written by 2 processes, restored in 1
    _train(two, 2, 1)  # the 2-process checkpoint continues in 1 process ...
    _train(one, 2, 2)  # ... and the 1-process one in 2
    _assert_same_params(vae_jax.load(str(two)), vae_jax.load(str(one)))


def test_bfloat16_computes_in_bf16_keeps_float32_state_and_stays_close_to_float32():
    images = jnp.asarray((np.random.RandomState(0).rand(64, 28, 28, 1) * 255).astype(np.uint8))
    results = {}
    for dtype in ("float32", "bfloat16"):
        vae = build(Config(model="conv", channels=(8, 16), latent_dim=4, dtype=dtype), (28, 28, 1))
        optimizer = optax.adam(1e-3)
        state = init_state(vae, optimizer, ELBO(), jax.random.key(0))
        run = make_train_steps(vae, optimizer, ELBO(), True, 32).run
        state, stats = run(state, images, None, jnp.arange(64), jax.random.key(1), jnp.int32(0), n_steps=2)
        leaves = jax.tree.leaves((state.params, state.opt_state))
        assert all(leaf.dtype in (jnp.float32, jnp.int32) for leaf in leaves)
        jaxpr = str(jax.make_jaxpr(lambda p: vae.decode(p, jnp.zeros((1, 4))))(state.params))
        assert ("bf16" in jaxpr) == (dtype == "bfloat16")
        results[dtype] = np.asarray(stats["loss"])
    # bf16 keeps 8 bits of mantissa: per-pixel errors of ~0.4% average out in the 784-pixel sum
    np.testing.assert_allclose(results["bfloat16"], results["float32"], rtol=5e-3)
