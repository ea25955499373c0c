"""Checkpoints written by earlier versions (tests/fixtures: one epoch on 240 8x8 digits of an mlp and
an hvae in checkpoint format 0, and in format 2 a conv with --ema, a resnet, a conditional mlp and an
mlp with a VampPrior and an IAF posterior, with what the version that wrote them gave from them in
expected.npz) load to bitwise the same parameters, and sample, evaluate and resume to the same numbers."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from fixtures import expect

EXPECTED = np.load("tests/fixtures/expected.npz")
TOL = {"rtol": 1e-5, "atol": 1e-6}  # the same computation; a different CPU may round differently


SLOW = ("hvae", "conv_ema", "resnet", "cvae", "vamp_iaf")  # the quick tier reads the mlp's


@pytest.mark.parametrize("family", [pytest.param(f, marks=[pytest.mark.slow] * (f in SLOW)) for f in expect.FLAGS])
def test_an_earlier_checkpoint_loads_resumes_and_samples_as_before(family, tmp_path):
    assert {k.split("/")[0] for k in EXPECTED.files} == set(expect.FLAGS)
    got = expect.expected(family)
    assert set(got) == {k for k in EXPECTED.files if k.startswith(f"{family}/")}
    for name, value in got.items():
        if "/loaded_" in name:  # reading a checkpoint computes nothing: the very same numbers
            np.testing.assert_array_equal(value, EXPECTED[name], err_msg=name)
        else:
            np.testing.assert_allclose(value, EXPECTED[name], **TOL, err_msg=name)


def test_the_fixture_is_not_changed_by_reading_it(tmp_path):
    run = tmp_path / "run"
    shutil.copytree("tests/fixtures/run_mlp", run)
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    out = subprocess.run(
        [sys.executable, "sample.py", "--ckpt", str(run), "--out", str(tmp_path / "s.png")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before
