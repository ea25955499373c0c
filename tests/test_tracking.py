"""--tracker mlflow / wandb against the real things: an MLflow tracking server (SQLite backend, on
127.0.0.1) read back through MLflow's client, and W&B's offline run files read back with the wandb
package's own reader; a run stopped by a signal and resumed is one tracker run, every epoch once at
its step; a server lost mid-run is one warning and the run finishes."""

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import DIGITS8

from vae_jax import experiment, tracking
from vae_jax.commands import train
from vae_jax.config import Config
from vae_jax.errors import Preempted, UserError
from vae_jax.tracking import mlflow_run

STEPS = [6, 12, 18]  # three epochs of the 192 training digits at batch 32


def _config(workdir, trackers: str, **changes) -> Config:
    fields = dict(dataset=DIGITS8, hidden=(16,), latent_dim=2, batch_size=32, eval_k=1, epochs=3, tracker=trackers)
    return Config(**{**fields, "workdir": str(workdir), **changes})


def _stopped_then_resumed(config: Config, monkeypatch) -> None:
    """Train `config`, stopped by SIGTERM in its second epoch (step 8), then run again: it resumes."""
    count = experiment._Run.count_skipped

    def signalled(self, skipped, step):
        if step == 8:
            os.kill(os.getpid(), signal.SIGTERM)
        return count(self, skipped, step)

    with monkeypatch.context() as patched:
        patched.setattr(experiment._Run, "count_skipped", signalled)
        with pytest.raises(Preempted, match="checkpoint saved at step 8"):
            experiment.train(config)
    experiment.train(config)


class Server:
    """`mlflow server` with a SQLite backend and its artifacts in `folder`, on a free port of 127.0.0.1."""

    def __init__(self, folder):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.folder = folder

    def start(self) -> "Server":
        args = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--backend-store-uri", f"sqlite:///{self.folder}/mlflow.db", "--workers", "1"]
        args += ["--artifacts-destination", str(self.folder / "artifacts")]
        self.log = open(self.folder / "server.log", "a")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"{self.uri}/health", timeout=2).status == 200:
                    return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise AssertionError(f"mlflow server did not start: {(self.folder / 'server.log').read_text()[-2000:]}")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)  # its workers too: gone at once, as a lost server is
        self.process.wait()
        self.log.close()


@pytest.fixture
def mlflow_server(tmp_path, monkeypatch):
    server = Server(tmp_path).start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    for name, value in mlflow_run.PATIENCE.items():
        monkeypatch.setenv(name, value)
    yield server
    if server.process.poll() is None:
        server.stop()


def _train_py(monkeypatch, *argv) -> None:
    """train.py with `argv`, as its script runs it (cli.main: errors become exit statuses)."""
    monkeypatch.setattr(sys, "argv", ["train.py", *map(str, argv)])
    train.main()


def _one_run(uri: str):
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("vae_jax").experiment_id])
    assert len(runs) == 1
    return client, runs[0]


@pytest.mark.slow
def test_mlflow_a_stopped_and_resumed_run_is_one_run_with_every_epoch_once(tmp_path, mlflow_server, monkeypatch):
    config = _config(tmp_path / "run", "mlflow")
    _stopped_then_resumed(config, monkeypatch)
    client, run = _one_run(mlflow_server.uri)
    assert run.info.status == "FINISHED"
    for key in ("train_loss", "test_elbo", "test_recon", "epoch"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == STEPS, key
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    by_step = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "test_elbo")}
    assert by_step == {r["step"]: r["test_elbo"] for r in records if "test_elbo" in r}
    [nll] = client.get_metric_history(run.info.run_id, "eval_nll")
    assert (nll.step, nll.value) == (18, records[-1]["evaluation"]["nll"])
    as_text = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.resolved().to_dict().items()}
    assert run.data.params == as_text
    tags = run.data.tags
    assert tags["checkpoints"] == str(tmp_path / "run") and tags["data_source"] == DIGITS8
    assert len(tags["train_digest"]) > 8 and tags["parameters"] == "3332" and tags["backend"] == "cpu"
    pictures = {f.path for f in client.list_artifacts(run.info.run_id, "pictures")}
    assert {"pictures/samples.png", "pictures/reconstructions.png", "pictures/curves.png"} <= pictures
    history = {f.path for f in client.list_artifacts(run.info.run_id, "pictures/history")}
    assert history == {f"pictures/history/epoch_{e:04d}.png" for e in (1, 2, 3)}
    assert json.load(open(tmp_path / "run" / "tracking.json"))["mlflow"]["id"] == run.info.run_id


@pytest.mark.slow
def test_mlflow_server_lost_mid_run_is_one_warning_and_the_run_finishes(tmp_path, mlflow_server, monkeypatch, capsys):
    """The server goes in epoch 2: one warning, the command ends normally (exit 0) with every epoch
    and the evaluation on disk; once the server is back, the same command sends what it missed."""
    count = experiment._Run.count_skipped

    def lose_the_server(self, skipped, step):
        if step == 8 and mlflow_server.process.poll() is None:
            mlflow_server.stop()
        return count(self, skipped, step)

    monkeypatch.setattr(experiment._Run, "count_skipped", lose_the_server)
    argv = ["--dataset", DIGITS8, "--hidden", "16", "--latent-dim", "2", "--batch-size", "32", "--eval-k", "1"]
    argv += ["--epochs", "3", "--workdir", tmp_path / "run", "--tracker", "mlflow"]
    _train_py(monkeypatch, *argv)  # returns: no SystemExit, exit status 0
    err = capsys.readouterr().err.splitlines()
    said = [line for line in err if "MLflow" in line and "failed" in line]
    assert len(said) == 1 and said[0].startswith("tracking: MLflow failed ("), err
    others = [
        line
        for line in err
        if any(w in line.lower() for w in ("warn", "error", "retr", "traceback", "fail", "exception"))
    ]
    assert others == said, err
    assert err[-1].startswith("time: ")  # the run went to its end
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert [r["step"] for r in records] == [*STEPS, 18] and "evaluation" in records[-1]
    assert json.load(open(tmp_path / "run" / "tracking.json"))["mlflow"].get("step", 0) <= 6  # epoch 1, if in time

    mlflow_server.start()
    _train_py(monkeypatch, *argv)  # nothing to train: the tracker gets what it missed
    client, run = _one_run(mlflow_server.uri)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "test_elbo")] == STEPS
    assert len(client.get_metric_history(run.info.run_id, "eval_nll")) == 1


def _wandb_records(path: str):
    """The records of an offline W&B run file, read by the wandb package."""
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal import datastore

    store = datastore.DataStore()
    store.open_for_scan(path)
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        yield record


def test_wandb_offline_a_stopped_and_resumed_run_is_the_same_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    config = _config(tmp_path / "run", "wandb")
    _stopped_then_resumed(config, monkeypatch)
    run_id = json.load(open(tmp_path / "run" / "tracking.json"))["wandb"]["id"]
    files = sorted(glob.glob(str(tmp_path / "run" / "wandb" / "offline-run-*" / "run-*.wandb")))
    assert len(files) == 2 and all(os.path.basename(f) == f"run-{run_id}.wandb" for f in files)
    steps, images, summary, config_keys = [], set(), {}, set()
    for path in files:
        for record in _wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                assert record.run.run_id == run_id
                config_keys |= {i.key for i in record.run.config.update}
            elif kind == "history":
                items = {"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in record.history.item}
                if "test_elbo" in items:
                    steps.append(items["_step"])
                    images |= {k.split("/")[0] for k in items if k.endswith("/_type")}
            elif kind == "summary":
                summary |= {"/".join(i.nested_key) or i.key: i.value_json for i in record.summary.update}
            elif kind == "config":
                config_keys |= {i.key for i in record.config.update}
    assert steps == STEPS
    assert images == {"samples", "reconstructions", "history"}
    assert (
        json.loads(summary["eval_nll"])
        == json.loads(open(tmp_path / "run" / "metrics.jsonl").readlines()[-1])["evaluation"]["nll"]
    )
    assert {"latent_dim", "tracker", "run"} <= config_keys


def test_tracker_flags_and_refusals(monkeypatch, capsys, tmp_path):
    parser = train.make_parser()
    from vae_jax import flags

    cfg, _ = flags.parse(parser, ["--tracker", "mlflow", "--tracker", "wandb"])
    assert cfg.tracker == "mlflow,wandb" and tracking.parse(cfg.tracker) == ["mlflow", "wandb"]
    assert flags.parse(parser, ["--tracker", "wandb,mlflow,wandb"])[0].tracker == "wandb,mlflow,wandb"
    assert tracking.parse("wandb,mlflow,wandb") == ["wandb", "mlflow"]
    with pytest.raises(UserError, match="'comet' is not one of mlflow, wandb"):
        Config(tracker="comet")
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SystemExit) as exit:
        _train_py(monkeypatch, "--tracker", "wandb", "--workdir", tmp_path / "w")
    assert exit.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["train.py: error: --tracker wandb: the wandb package is not installed: pip install 'vae_jax[wandb]'"]
    assert not os.path.exists(tmp_path / "w")


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    """Three tiny runs that differ in latent size (and one in epochs); the third evaluated by evaluate.py."""
    from vae_jax.commands import evaluate

    root = tmp_path_factory.mktemp("three")
    runs = [_config(root / name, "", latent_dim=d, epochs=e) for name, d, e in (("a", 2, 2), ("b", 3, 2), ("c", 4, 3))]
    for config in runs:
        experiment.train(config)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(sys, "argv", ["evaluate.py", "--ckpt", runs[2].workdir, "--k", "3"])
        evaluate.run()
    return runs


def test_compare_prints_what_differs_and_draws_the_test_curves(three_runs, tmp_path, capsys, monkeypatch):
    from PIL import Image

    from vae_jax import compare

    monkeypatch.chdir(tmp_path)
    compare.run([c.workdir for c in three_runs])
    out, err = capsys.readouterr()
    listed = [(line.split()[0], line.split()[1:]) for line in out.splitlines()[1:] if line.startswith("  ")]
    rows = dict(listed)
    assert out.splitlines()[0].split() == ["a", "b", "c"]
    assert rows["latent_dim"] == ["2", "3", "4"] and rows["epochs"] == ["2", "2", "3"]
    assert "batch_size" not in rows and "workdir" not in rows  # the same in all three; the column names them
    records = [[json.loads(line) for line in open(os.path.join(c.workdir, "metrics.jsonl"))] for c in three_runs]
    assert rows["test_elbo"] == [f"{r[-2]['test_elbo']:.2f}" for r in records]
    nll = [f"{r[-1]['evaluation']['nll']:.2f}" for r in records]
    evaluated = json.load(open(os.path.join(three_runs[2].workdir, "eval.json")))
    by_evaluate = ["-", "-", f"{evaluated['nll']:.2f}"]
    assert [v for k, v in listed if k == "nll"] == [nll, by_evaluate]  # the final evaluation's, eval.json's
    assert err.strip() == "test curves: compare.png"
    assert Image.open(tmp_path / "compare.png").size == (700, 420)
    compare.run([c.workdir for c in three_runs])  # never overwritten: numbered
    assert capsys.readouterr().err.strip() == "test curves: compare-2.png"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{a}"], "give two run folders or more"),
        (["{a}", "{tmp}/none"], "/none: no such folder"),
        (["{a}", "{tmp}"], "holds no run (no metrics.jsonl)"),
        (["{a}", "{a}", "--out", "{tmp}/x.jpg"], "--out {tmp}/x.jpg: must end in .png"),
    ],
)
def test_compare_refuses_bad_input_in_one_line(three_runs, tmp_path, monkeypatch, capsys, argv, message):
    from vae_jax import compare

    fill = lambda s: s.format(a=three_runs[0].workdir, tmp=tmp_path)  # noqa: E731
    monkeypatch.setattr(sys, "argv", ["compare.py", *map(fill, argv)])
    with pytest.raises(SystemExit) as exit:
        compare.main()
    assert exit.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("compare.py: error: ") and fill(message) in line


def test_each_record_reaches_a_tracker_once_and_a_failing_one_is_dropped_after_one_warning(tmp_path, caplog):
    sent = []

    class Fake:
        where = "here"

        def __init__(self, fail_at=None):
            self.fail_at = fail_at

        def log(self, metrics, step, pictures):
            if step == self.fail_at:
                raise ConnectionError("gone\nsecond line")
            sent.append((step, metrics["test_elbo"]))

    tracked = tracking.Tracking("mlflow,wandb", str(tmp_path))
    tracked.backends = {"mlflow": Fake(), "wandb": Fake(fail_at=12)}
    tracked.state = {"mlflow": {"id": "a", "step": 6}, "wandb": {"id": "b"}}
    records = [{"epoch": e, "step": 6 * e, "test_elbo": -100.0 - e} for e in (1, 2, 2, 3)] + [{"epoch": 4}]
    for record in records:  # epoch 2 twice (a run resumed after writing it), one record without a step
        tracked.record(record, {})
    assert sent == [(6, -101.0), (12, -102.0), (18, -103.0)]  # wandb 6 then fails at 12; mlflow 12 and 18, once
    assert list(tracked.backends) == ["mlflow"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "Weights & Biases failed (ConnectionError: gone)" in warnings[0]
    assert json.load(open(tmp_path / "tracking.json"))["wandb"]["step"] == 6
