import json
import os

import numpy as np

import core
from core.rundir import RunDir
from core.training.monitor import TrainingMonitor

core.import_tensorflow()
import keras  # noqa: E402


def test_status_merges_and_rejects_unknown_states(tmp_path):
    run = RunDir(tmp_path / "r").create()
    run.update_status(state="queued", task="mnist")
    status = run.update_status(state="running", pid=123)
    assert status["task"] == "mnist" and status["pid"] == 123 and status["state"] == "running"
    try:
        run.update_status(state="exploded")
    except ValueError as exc:
        assert "exploded" in str(exc)
    else:
        raise AssertionError("unknown state accepted")
    assert run.read_status()["state"] == "running"


def test_metrics_reader_skips_a_half_written_line(tmp_path):
    run = RunDir(tmp_path / "r")
    run.append_metrics({"type": "epoch", "epoch": 1, "loss": np.float32(0.5)})
    with open(run.metrics_path, "a") as handle:
        handle.write('{"type": "batch", "ba')
    (record,) = run.read_metrics()
    assert record["loss"] == 0.5 and run.read_metrics("batch") == []


def _tiny_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_monitor_records_epochs_checkpoints_and_honours_stop(tmp_path):
    run = RunDir(tmp_path / "r").create()
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = _tiny_model()
    monitor = TrainingMonitor(run, epochs=3, steps=8, batch_every_s=0, show_bar=False)
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[monitor])
    epochs = run.read_metrics("epoch")
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and "accuracy" in epochs[0]
    assert len(run.read_metrics("batch")) == 24
    assert run.checkpoint_state()["epoch"] == 3
    restored = keras.models.load_model(run.checkpoint_path)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert not [p for p in run.checkpoint_dir.iterdir() if p.name.startswith(".")]

    run.request_stop()
    stopper = TrainingMonitor(run, epochs=5, steps=8, batch_every_s=0, show_bar=False)
    history = model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[stopper])
    assert stopper.stopped and len(history.history["loss"]) == 1


def test_log_tail_reads_only_the_end(tmp_path):
    run = RunDir(tmp_path / "r").create()
    run.log_path.write_text("\n".join(f"line {i}" for i in range(1000)))
    assert run.log_tail(3) == "line 997\nline 998\nline 999"
    assert json.loads(json.dumps(run.read_status())) == {}
    assert os.path.isdir(run.path)


def test_resume_clears_the_stop_that_ended_the_last_attempt(tmp_path, monkeypatch):
    from core.training import runner as train

    calls = []
    run = RunDir(tmp_path / "r").create()
    run.request_stop()

    def fake_execute(task, cfg, out, name=None, resume=False):
        calls.append(run.stop_requested())
        return {}

    monkeypatch.setattr(train, "execute", fake_execute)  # this test is about the STOP file only
    assert train.main(["mnist", "--out", str(run.path)]) == 0 and calls == [True]
    assert train.main(["mnist", "--out", str(run.path), "--resume"]) == 0 and calls == [True, False]
    assert run.read_status()["state"] == "succeeded"
