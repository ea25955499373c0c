"""Property-based tests: any CLI flags and any .npz end in a valid config/dataset or a clear UserError."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vae_jax import cli, config, data, flags
from vae_jax.errors import UserError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

values = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.text(max_size=12),
    st.sampled_from(["", "0", "-1", "nan", "inf", "1e308", "500,-3", ",", "mlp", "1,2,3"]),
)
flag_lists = st.lists(
    st.tuples(st.sampled_from([f"--{f.replace('_', '-')}" for f in config.Config.__dataclass_fields__]), values),
    max_size=4,
)


@SETTINGS
@given(flag_lists)
def test_any_train_flags_give_a_valid_config_or_a_clear_error(pairs):
    parser = cli.Parser()
    flags.add_flags(parser)
    argv = [item for flag, value in pairs for item in ((flag,) if flag == "--conditional" else (flag, value))]
    try:
        cfg = flags.from_args(parser.parse_args(argv))
    except SystemExit as e:  # argparse: one line on stderr, exit code 2
        assert e.code == 2
        return
    except UserError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert cfg.latent_dim > 0 and cfg.batch_size > 0 and cfg.lr > 0 and cfg.epochs > 0 and not math.isnan(cfg.lr)
    assert config.Config.from_dict(cfg.to_dict()) == cfg  # what a checkpoint stores reads back


dtypes = st.sampled_from([np.uint8, np.int64, np.float32, np.float64, np.bool_, np.int8, np.complex64])
images = hnp.arrays(dtypes, hnp.array_shapes(min_dims=0, max_dims=5, max_side=6))


@SETTINGS
@given(
    images,
    st.one_of(
        st.none(),
        hnp.arrays(st.sampled_from([np.int64, np.float32, np.int32]), hnp.array_shapes(max_dims=2, max_side=40)),
    ),
)
def test_any_npz_gives_a_valid_dataset_or_a_clear_error(tmp_path_factory, x, labels):
    path = tmp_path_factory.mktemp("npz") / "d.npz"
    arrays = {"images": x} if labels is None else {"images": x, "labels": labels}
    np.savez(path, **arrays)
    try:
        ds = data.load(str(path))
    except UserError as e:
        assert str(e) and "\n" not in str(e)
        return
    for imgs, labs in ((ds.train_images, ds.train_labels), (ds.test_images, ds.test_labels)):
        assert imgs.dtype == np.uint8 and imgs.ndim == 4 and imgs.shape[-1] in (1, 3) and len(imgs) > 0
        assert labs.dtype == np.int32 and labs.shape == (len(imgs),) and labs.min() >= 0


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04garbage"])
def test_a_file_that_is_not_an_npz_is_a_clear_error(tmp_path, content):
    path = tmp_path / "d.npz"
    path.write_bytes(content)
    with pytest.raises(UserError, match="cannot read as .npz"):
        data.load(str(path))


def test_an_npz_with_pickled_objects_is_not_unpickled(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, images=np.array([object()], dtype=object))
    with pytest.raises(UserError, match="cannot read as .npz"):
        data.load(str(path))
