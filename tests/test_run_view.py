"""The Train page's run view tells the truth at every moment, on run folders written by hand.

A stopped run says where it stopped (not 844/844, not "Finished"), a run being stopped shows
no time left, a failed run gives its cause above the log, tables show no "None", "Use it now"
opens the Draw page with the run's model selected, and a model downloads as a zip.
"""
from __future__ import annotations

import io
import json
import time
import zipfile

import pytest
from streamlit.testing.v1 import AppTest

from core import fmt, jobs
from core.config import PROJECT_ROOT
from core.rundir import RunDir
from tests.fixtures.drawing import tiny_cnn

STEPS = 844


def _run(root, run_id: str, state: str, *, stopped_at: int | None = None, error: str | None = None,
         model: bool = False) -> RunDir:
    run = RunDir(root / run_id).create()
    start = time.time() - 30
    run.path.joinpath("job.json").write_text(json.dumps(
        {"task": "mnist", "options": {"arch": "seed", "epochs": 3}, "command": [], "created": start}))
    run.update_status(state=state, task="mnist", started=start, error=error,
                      **({"finished": start + 14} if state in ("succeeded", "failed", "stopped") else {}))
    for batch in (100, 200, stopped_at or 300):
        run.append_metrics({"type": "batch", "phase": "train", "epoch": 1, "epochs": 3, "batch": batch,
                            "steps": STEPS, "loss": 1.0 / batch, "accuracy": 0.5 + batch / 2000,
                            "time": start + batch / 100})
    if stopped_at:
        run.append_metrics({"type": "stop", "phase": "train", "epoch": 1, "epochs": 3, "batch": stopped_at,
                            "steps": STEPS, "time": start + stopped_at / 100})
        run.append_metrics({"type": "epoch", "phase": "train", "epoch": 1, "epochs": 3, "batches": stopped_at,
                            "steps": STEPS, "loss": 0.1, "accuracy": 0.9, "val_loss": 0.2,
                            "val_accuracy": 0.955, "time": start + 5})
    if model:
        tiny_cnn().save(run.model_path)
        run.card_path.write_text(json.dumps({
            "name": run_id, "task": "mnist", "model_file": "model.keras", "title": f"{run_id} CNN",
            "classes": [str(d) for d in range(10)], "input_shape": [28, 28, 1], "input_range": [0.0, 1.0],
            "params": 93322, "metrics": {"test_accuracy": 0.955, "val_accuracy": 0.955},
            "training": {"wall_time_s": 9.2}, "stopped": bool(stopped_at)}))
    return run


def _page(watch: str | None = None) -> AppTest:
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=180)
    at.run()
    if watch:
        at.session_state["watch_run"] = watch
    at.switch_page("app_pages/train.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_progress_and_headline_say_where_a_stop_really_ended(isolated):
    _run(isolated["runs"], "stopped1", "stopped", stopped_at=257, model=True)
    manager = jobs.Jobs(isolated["runs"])
    (run,) = manager.list()
    progress = manager.progress(run.id)
    assert (progress["epoch"], progress["batch"], progress["steps"]) == (1, 257, STEPS)
    assert progress["eta_s"] is None
    kind, sentence = jobs.headline(run, progress)
    assert kind == "stopped" and "Finished" not in sentence
    assert sentence.startswith("Stopped early at epoch 1, batch 257 of 844; "
                               "the model as it was then is saved")


def test_a_run_being_stopped_shows_no_time_left(isolated):
    from ui.run_views import progress_text

    run = _run(isolated["runs"], "going", "running")
    manager = jobs.Jobs(isolated["runs"])
    base = manager.progress("going")
    assert base["eta_s"] is not None and "left" in progress_text(base)
    run.request_stop()
    stopping = manager.progress("going")
    assert stopping["stopping"] and stopping["eta_s"] is None
    text = progress_text(stopping)
    assert text.endswith("stopping…") and "left" not in text and "batch 300/844" in text


def test_stopped_failed_and_table_views(isolated):
    _run(isolated["runs"], "failed1", "failed",
         error="MNIST is not on this machine: put the four files\nTraceback…")
    _run(isolated["runs"], "stopped1", "stopped", stopped_at=257, model=True)
    at = _page(watch="stopped1")
    (warning,) = [w.value for w in at.warning if "Stopped early" in w.value]
    assert "epoch 1, batch 257 of 844" in warning
    assert not [s for s in at.success if "Finished" in s.value]
    bar = at.get("progress")[0].proto.text
    assert "epoch 1/3 · batch 257/844" in bar and "left" not in bar
    table = at.dataframe[-1].value
    assert "None" not in table.to_string() and "nan" not in table.to_string()
    assert set(table["best val"]) == {fmt.pct(0.955), fmt.MISSING}
    assert fmt.duration(14) in set(table["run time"])

    at.session_state["watch_run"] = "failed1"
    at.run()
    (error,) = [e.value for e in at.error if "Failed" in e.value]
    assert error == "Failed: MNIST is not on this machine: put the four files"  # one sentence, no traceback


def test_use_it_now_opens_draw_with_the_run_model_selected(isolated):
    _run(isolated["runs"], "mine1", "succeeded", model=True)
    at = _page(watch="mine1")
    at.button(key="use_live_mine1").click().run()
    assert not at.exception, [e.message for e in at.exception]
    picker = at.selectbox(key="draw_model")
    assert "your run mine1" in picker.format_func(picker.value)


@pytest.mark.parametrize("formats", [["keras"]])
def test_download_the_run_model(isolated, formats):
    _run(isolated["runs"], "mine2", "succeeded", model=True)
    at = _page(watch="mine2")
    at.multiselect(key="fmt_live_mine2").set_value(formats).run()
    at.button(key="prepare_live_mine2").click().run()
    assert not at.exception and not at.error
    data = at.session_state["export_live_mine2"][1]
    names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    assert {"model.keras", "card.json", "labels.txt", "preprocessing.json", "README.md"} <= names
    assert at.get("download_button")
