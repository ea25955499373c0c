"""No recompilation between epochs: the training step is traced once, and a further epoch traces nothing."""

import collections

import jax
import pytest

from vae_jax import experiment
from vae_jax.config import Config

TRACE = "/jax/core/compile/jaxpr_trace_duration"
traces: collections.Counter = collections.Counter()
jax.monitoring.register_event_duration_secs_listener(
    lambda event, seconds, **kw: traces.update([kw.get("fun_name")]) if event == TRACE else None
)


def _traces_of_a_run(tmp_path, epochs: int, **options) -> collections.Counter:
    before = traces.copy()
    experiment.train(Config(epochs=epochs, batch_size=100, eval_k=1, workdir=str(tmp_path / f"e{epochs}"), **options))
    return traces - before


@pytest.mark.parametrize(
    "options", [dict(hidden=(32,), latent_dim=4), dict(model="conv", channels=(4, 8), latent_dim=4)]
)
@pytest.mark.slow
def test_the_step_compiles_once_and_a_further_epoch_compiles_nothing(tmp_path, options):
    _traces_of_a_run(tmp_path, 1, **options)  # the first run also traces what any process traces once
    two, three = _traces_of_a_run(tmp_path, 2, **options), _traces_of_a_run(tmp_path, 3, **options)
    # 40 steps an epoch in chunks of 4 (mlp) or 1 (conv): one chunk length, one trace of the step
    assert two["run"] == 1, two
    assert three == two, three - two  # the third epoch traced nothing: no per-epoch compilation of anything
