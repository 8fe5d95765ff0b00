"""Damaged run folders, the queue's order and a stalled queue (issue 15, cases 5, 6 and 10).

The queued "training" here is a tiny Python script, so the real supervisor runs
without TensorFlow and each test takes seconds.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from core import jobs as jobs_module
from core.jobs import Jobs, main, options_to_argv
from core.models.cards import find_models
from core.rundir import RunDir

# Stands in for `python -m core.train ... --out DIR`: sleeps, then records success.
SCRIPT = ("import sys, time; from core.rundir import RunDir; run = RunDir(sys.argv[-1]); "
          "run.update_status(state='running', pid=None, started=time.time()); "
          "time.sleep(float(sys.argv[1])); "
          "run.update_status(state='succeeded', finished=time.time())")


def _queue(root, run_id: str, queued: float, sleep: float = 0.5) -> RunDir:
    run = RunDir(root / run_id).create()
    run.update_status(state="queued", task="mnist", queued=queued)
    (run.path / jobs_module.JOB_FILE).write_text(json.dumps(
        {"task": "mnist", "options": {}, "created": queued, "out": run_id,
         "command": ["python", "-c", SCRIPT, str(sleep)]}))
    return run


def _until(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def _finished(run: RunDir) -> bool:
    return run.read_status().get("state") in ("succeeded", "failed")


def _done(old_id: str, root) -> RunDir:
    run = RunDir(root / old_id).create()
    run.update_status(state="succeeded", task="mnist", started=1.0, finished=2.0)
    (run.path / jobs_module.JOB_FILE).write_text(json.dumps(
        {"task": "mnist", "options": {}, "created": 1.0, "command": ["python", "-c", SCRIPT, "0"]}))
    return run


# --- case 5: a damaged status never relaunches; a copied folder never writes the original --

@pytest.mark.parametrize(("status_bytes", "reason"), [
    (b"\xff\xfe{not utf-8", "status.json is not UTF-8 text"),
    (b"[1, 2]", "status.json holds a list, not a JSON object"),
    (b'{"state": "exploded"}', "unknown state 'exploded'"),
    (b'{"pid": 5}', "status.json names no state"),
    (b"", "status.json is not valid JSON"),
])
def test_damaged_status_is_listed_never_relaunched_and_can_be_deleted(isolated, capsys, status_bytes,
                                                                      reason):
    run = _done("20250101-000000-mnist-aaaa", isolated["runs"])
    run.status_path.write_bytes(status_bytes)
    jobs = Jobs(max_concurrent=2)
    (listed,) = jobs.list()
    assert listed.state == "damaged" and reason in listed.error
    time.sleep(0.5)
    assert run.status_path.read_bytes() == status_bytes  # not launched, not rewritten
    assert main(["list"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{run.name}  damaged") and reason in line
    assert main(["delete", run.name]) == 0
    assert not run.path.exists()


def test_job_json_names_the_run_relative_and_a_copy_writes_only_itself(isolated, monkeypatch):
    monkeypatch.setattr(Jobs, "_launch", lambda self, run: None)  # queue only: no real training
    run_id = Jobs(max_concurrent=1).start("mnist", {"epochs": 1})
    original = RunDir(isolated["runs"] / run_id)
    text = (original.path / jobs_module.JOB_FILE).read_text()
    assert str(isolated["runs"]) not in text and json.loads(text)["out"] == run_id
    assert Jobs().get(run_id).command().endswith(f"--out {original.path}")
    # An old-style job.json with an absolute --out, in a finished run that is copied and run again.
    job = json.loads(text)
    job["command"] = ["python", "-c", SCRIPT, "0", "--out", str(original.path)]
    (original.path / jobs_module.JOB_FILE).write_text(json.dumps(job))
    original.update_status(state="succeeded", finished=time.time())
    before = original.status_path.read_bytes()
    copy = RunDir(shutil.copytree(original.path, isolated["runs"] / "copy"))
    copy.update_status(state="running", launched=time.time())
    monkeypatch.undo()
    assert jobs_module.supervise(copy.path, 1) == 0
    assert copy.read_status()["state"] == "succeeded"
    assert original.status_path.read_bytes() == before


# --- case 6: one bad file never breaks the listing ------------------------------------

def test_bad_config_metrics_and_card_are_reported_per_run(isolated, capsys):
    root = isolated["runs"]
    bad_config = _done("a-config", root)
    bad_config.config_path.write_bytes(b"\xc3\x28")
    bad_metrics = _done("b-metrics", root)
    bad_metrics.metrics_path.write_bytes(
        b"\xff\xfe\n5\n[1]\n"
        b'{"type": "epoch", "epoch": "x", "time": 1}\n'
        b'{"type": "epoch", "epoch": 1, "time": 2, "val_accuracy": "high"}\n'
        b'{"type": "batch", "epoch": 1, "batch": 2, "time": 3, "epochs": "ten", "steps": null}\n')
    ninety = _done("c-card", root)
    ninety.card_path.write_text(json.dumps({"metrics": {"test_accuracy": "ninety"}}))
    null = _done("d-null", root)
    null.card_path.write_text(json.dumps({"metrics": {"test_accuracy": None, "val_accuracy": None}}))
    wrong_types = _done("e-types", root)
    wrong_types.status_path.write_text(json.dumps({"state": "succeeded", "started": "yesterday",
                                                   "finished": None, "error": 42}))
    jobs = Jobs()
    runs = {r.id: r for r in jobs.list()}
    assert "damaged: config.json is not UTF-8 text" in runs["a-config"].error
    assert len(bad_metrics.read_metrics()) == 2
    assert runs["b-metrics"].best_val_accuracy is None
    assert jobs.progress("b-metrics")["epoch"] == 1
    assert "metrics.test_accuracy must be a number" in runs["c-card"].error
    assert runs["c-card"].card == {} and runs["c-card"].test_accuracy is None
    assert runs["d-null"].error is None and runs["d-null"].test_accuracy is None
    assert runs["e-types"].duration_s is None and runs["e-types"].error == "42"
    for run in runs.values():
        assert run.command() and run.state in ("succeeded", "damaged")
    assert main(["list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5
    for run_id in runs:
        jobs.delete(run_id)
    assert not any(root.iterdir()) or [p.name for p in root.iterdir()] == [jobs_module.LOCK_FILE]


# --- case 10: queue order, a stalled queue, cards, option values -----------------------

def test_queue_starts_first_in_first_out_by_queue_time_not_by_id(isolated):
    root = isolated["runs"]
    later = _queue(root, "20250101-000000-mnist-aaaa", queued=200.0)  # sorts first by id
    first = _queue(root, "20250101-000000-mnist-ffff", queued=100.0)
    Jobs(max_concurrent=1).refresh()
    _until(lambda: _finished(first) and _finished(later))
    assert first.read_status()["launched"] < later.read_status()["launched"]


def test_a_stalled_queue_moves_on_with_the_next_job_command(isolated):
    root = isolated["runs"]
    gone = RunDir(root / "a-gone").create()  # its supervisor died: nothing started the queue
    gone.update_status(state="succeeded", task="mnist")
    waiting = _queue(root, "b-waiting", queued=1.0, sleep=0)
    assert main(["stop", "a-gone"]) == 0  # any command, not only a page view
    _until(lambda: _finished(waiting))
    assert waiting.read_status()["state"] == "succeeded"


def test_card_model_file_stays_in_its_folder(isolated):
    run = RunDir(isolated["runs"] / "r").create()
    (run.path / "model.keras").write_bytes(b"x")
    for model_file in ("../../../../etc/passwd", "/etc/passwd", "..", "sub/model.keras"):
        run.card_path.write_text(json.dumps({"name": "r", "task": "image", "model_file": model_file}))
        (entry,) = find_models(isolated["models"], isolated["runs"])
        assert entry.error and "model_file must be a file name" in entry.error
        assert entry.model_path.parent == run.path
    (run.path / "link.keras").symlink_to("/etc/hostname")
    run.card_path.write_text(json.dumps({"name": "r", "task": "image", "model_file": "link.keras"}))
    (entry,) = find_models(isolated["models"], isolated["runs"])
    assert entry.error and "outside" in entry.error


def test_class_names_must_match_the_model_outputs():
    import core

    core.import_tensorflow()
    import keras
    from PIL import Image

    from core.inference import photos
    from core.inference.served import Served

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(5, activation="softmax")])
    img = Image.new("RGB", (8, 8), (10, 20, 30))
    served = lambda classes: Served(Path("m.keras"), model, {"classes": classes})  # noqa: E731
    result = photos.classify_photo(served(["a", "b", "c"]), "x.png", img.tobytes())
    assert not result.ok and "names 3 classes but the model has 5 outputs" in result.error
    buf = __import__("io").BytesIO()
    img.save(buf, "PNG")
    good = photos.classify_photo(served(list("abcde")), "x.png", buf.getvalue(), k=5)
    assert good.ok and len(good.top) == 5


def test_option_values_that_look_like_flags_stay_values():
    assert options_to_argv({"data": "--x", "batch_size": 32}) == ["--data=--x", "--batch-size", "32"]


def test_a_run_larger_than_the_machine_is_refused_saying_by_how_much(tmp_path):
    from core.training import devices

    assert devices.memory_refusal(10e9, None, 24e9) is None
    cpu = devices.memory_refusal(51.5e9, None, 24e9)
    assert "needs about 51.5 GB, 27.5 GB more than the free RAM (24.0 GB)" in cpu
    gpu = devices.memory_refusal(51.5e9, 80e9, 24e9)
    assert gpu is None  # the GPU holds it; host RAM is not the limit
    assert "GPU's memory (16.0 GB)" in devices.memory_refusal(20e9, 16e9, 64e9)
    assert devices.memory_refusal(51.5e9, None, None) is None  # unknown: the page says so instead
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       32000000 kB\nMemAvailable:   24000000 kB\n")
    assert devices.available_ram_bytes(str(meminfo)) == 24000000 * 1024
    assert devices.available_ram_bytes("/nonexistent") and devices.available_ram_bytes() > 0


def test_folder_stamp_sees_images_added_inside_class_folders(tmp_path):
    import os

    from PIL import Image

    from core.data import folders

    (tmp_path / "a").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "a" / "1.png")
    top = os.stat(tmp_path).st_mtime_ns
    before = folders.stamp(tmp_path)
    Image.new("RGB", (4, 4)).save(tmp_path / "a" / "2.png")
    assert os.stat(tmp_path).st_mtime_ns == top  # what the old cache key looked at did not change
    assert folders.stamp(tmp_path) != before


def test_runs_setting_pointing_at_a_file_is_one_sentence(tmp_path):
    import os
    import subprocess
    import sys

    from core import config

    afile = tmp_path / "runs.txt"
    afile.write_text("not a folder")
    env = os.environ | {config.RUNS_ENV: str(afile), "PYTHONPATH": str(config.PROJECT_ROOT)}
    for command in (["core.jobs", "list"], ["core.datasets", "list"]):
        done = subprocess.run([sys.executable, "-m", *command], cwd=config.PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr == f"error: {config.RUNS_ENV} points at {afile}, which is a file, not a folder\n"
    env[config.RUNS_ENV] = "x" * 5000  # (an environment cannot hold a NUL byte; config refuses one too)
    done = subprocess.run([sys.executable, "-m", "core.jobs", "list"], cwd=config.PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "not a usable path" in done.stderr and "Traceback" not in done.stderr
