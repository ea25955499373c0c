"""Checkpoints written by an earlier version (tests/fixtures: an mlp and an hvae, one epoch on
240 8x8 digits, with what that version gave from them in expected.npz) load, sample, evaluate and
resume to the same numbers."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from fixtures import expect

EXPECTED = np.load("tests/fixtures/expected.npz")
TOL = {"rtol": 1e-5, "atol": 1e-6}  # the same computation; a different CPU may round differently


@pytest.mark.parametrize("family", ["mlp", pytest.param("hvae", marks=pytest.mark.slow)])
def test_an_earlier_checkpoint_loads_resumes_and_samples_as_before(family, tmp_path):
    assert set(expect.FLAGS) == {"mlp", "hvae"}
    got = expect.expected(family)
    assert set(got) == {k for k in EXPECTED.files if k.startswith(f"{family}/")}
    for name, value in got.items():
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
