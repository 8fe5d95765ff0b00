"""core.jobs with real training processes on a few hundred generated MNIST-like digits."""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from core import machine as system
from core.jobs import JobError, Jobs, _proc_alive, options_to_argv
from core.rundir import RunDir

pytestmark = pytest.mark.slow  # trains real models or runs real training processes

QUICK = {"arch": "seed", "epochs": 1, "batch_size": 32, "limit": 400}
LONG = {"arch": "seed", "epochs": 200, "batch_size": 8, "limit": 400}


def _until(predicate, timeout=120, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _state(runs, run_id):
    return RunDir(runs / run_id).read_status().get("state")


def test_options_become_command_line_flags():
    assert options_to_argv({"batch_size": 32, "resume": True, "name": None, "xla": False,
                            "arch": "best"}) == ["--batch-size", "32", "--resume", "--arch", "best"]


def test_pid_check_refuses_a_reused_pid():
    # This pytest process is alive but is not a training process.
    assert not _proc_alive(os.getpid(), "core.train")
    assert not _proc_alive(None, "core.train")


def test_queue_runs_one_at_a_time_to_success_and_survives_a_restart(mnist_like):
    runs = mnist_like["runs"]
    jobs = Jobs(max_concurrent=1)
    first = jobs.start("mnist", QUICK)
    second = jobs.start("mnist", QUICK | {"seed": 1})
    assert _state(runs, first) == "running" and _state(runs, second) == "queued"

    # No refresh from here on: the first run's supervisor must start the second.
    _until(lambda: _state(runs, second) == "running", what="the queued run to start")
    assert _state(runs, first) == "succeeded"
    _until(lambda: _state(runs, second) == "succeeded", what="the second run to end")

    run = RunDir(runs / first)
    epochs = run.read_metrics("epoch")
    assert [e["epoch"] for e in epochs] == [1] and "val_accuracy" in epochs[0]
    assert run.read_metrics("batch") and run.read_status()["device"] == "CPU"

    import keras
    model = keras.models.load_model(run.model_path)
    assert model.predict(np.zeros((3, 28, 28, 1), "float32"), verbose=0).shape == (3, 10)
    assert {e.name for e in system.models("mnist") if e.ok} == {first, second}

    listed = {r.id: r for r in Jobs().list()}  # a new instance: an app restart
    assert {r: listed[r].state for r in (first, second)} == {first: "succeeded", second: "succeeded"}
    done = listed[first]
    assert done.has_model and done.test_accuracy is not None and done.duration_s > 0
    assert done.options == QUICK and "--batch-size 32" in done.command()
    assert jobs.progress(first)["fraction"] == 1.0

    jobs.delete(first)
    assert not (runs / first).exists() and [r.id for r in jobs.list()] == [second]
    with pytest.raises(JobError, match="no run"):
        jobs.delete(first)


def test_killed_runs_are_marked_failed_with_their_log_tail(mnist_like):
    runs = mnist_like["runs"]
    jobs = Jobs(max_concurrent=2)

    # The training process alone dies: its supervisor reports how.
    victim = jobs.start("mnist", LONG)
    pid = _until(lambda: RunDir(runs / victim).read_metrics("batch")
                 and RunDir(runs / victim).read_status().get("pid"), what="training to start")
    os.kill(pid, signal.SIGKILL)
    _until(lambda: _state(runs, victim) == "failed", what="the killed run to be marked failed")
    error = RunDir(runs / victim).read_status()["error"]
    assert "SIGKILL" in error and "device: CPU" in error  # the reason, then the log's last lines

    # Training and supervisor both die (e.g. the machine's OOM killer): the next listing notices.
    victim2 = jobs.start("mnist", LONG)
    status = _until(lambda: RunDir(runs / victim2).read_metrics("batch")
                    and RunDir(runs / victim2).read_status(), what="the second run to start")
    os.killpg(status["supervisor_pid"], signal.SIGKILL)
    # SIGKILL lands asynchronously: wait until neither process is alive, not only the trainer.
    _until(lambda: not _proc_alive(status["pid"], "core.train")
           and not _proc_alive(status["supervisor_pid"], "core.jobs"), what="the processes to die")
    assert _state(runs, victim2) == "running"  # nobody has looked yet
    listed = {r.id: r for r in Jobs().list()}
    assert listed[victim2].state == "failed"
    assert "gone" in listed[victim2].error and "device: CPU" in listed[victim2].error


def test_stop_ends_the_run_as_stopped_with_a_usable_checkpoint(mnist_like):
    runs = mnist_like["runs"]
    jobs = Jobs()
    run_id = jobs.start("mnist", LONG)
    queued = jobs.start("mnist", QUICK)
    _until(lambda: RunDir(runs / run_id).read_metrics("epoch"), what="a first epoch")
    progress = jobs.progress(run_id)
    assert progress["state"] == "running" and progress["of_epochs"] == 200 and 0 < progress["fraction"] < 1

    jobs.stop(queued)  # a queued run simply never starts
    assert _state(runs, queued) == "stopped"
    jobs.stop(run_id)
    with pytest.raises(JobError, match="still running"):
        jobs.delete(run_id)
    run = jobs.wait(run_id, timeout=120)
    assert run.state == "stopped", run.error
    assert len(run.path.joinpath("metrics.jsonl").read_text().splitlines()) > 1
    epochs_done = RunDir(run.path).checkpoint_state()["epoch"]
    assert 1 <= epochs_done < 200

    import keras
    model = keras.models.load_model(RunDir(run.path).checkpoint_path)
    assert model.optimizer is not None  # resumable: optimizer state saved with the model
    assert model.predict(np.zeros((1, 28, 28, 1), "float32"), verbose=0).shape == (1, 10)
    assert _state(runs, queued) == "stopped"  # the queue did not resurrect it


def test_bad_settings_fail_with_a_clear_error(mnist_like):
    jobs = Jobs()
    run = jobs.wait(jobs.start("mnist", QUICK | {"epochs": 0}), timeout=120)
    assert run.state == "failed" and run.error == "epochs must be at least 1, got 0"
    run = jobs.wait(jobs.start("mnist", QUICK | {"batch_size": 5000}), timeout=120)
    assert run.state == "failed" and "larger than the" in run.error
    with pytest.raises(JobError, match="no run"):
        jobs.get("../escape")


def test_list_command_prints_each_runs_state_and_scores(isolated, capsys):
    import json

    from core.jobs import main

    done = RunDir(isolated["runs"] / "done").create()
    done.update_status(state="succeeded", task="mnist", device="CPU")
    (done.path / "card.json").write_text(json.dumps(
        {"metrics": {"val_accuracy": 0.995, "test_accuracy": 0.994, "test_errors": 60}}))
    refit = RunDir(isolated["runs"] / "refit").create()  # --val-split 0: no validation figure
    refit.update_status(state="succeeded", task="mnist", device="CPU")
    (refit.path / "card.json").write_text(json.dumps(
        {"metrics": {"val_accuracy": None, "test_accuracy": 0.996, "test_errors": 40}}))
    RunDir(isolated["runs"] / "broken").create().update_status(state="failed", task="mnist",
                                                               error="out of memory")
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "done  succeeded  CPU  val 99.50%  test 99.40% (60 errors)" in lines
    assert "refit  succeeded  CPU  test 99.60% (40 errors)" in lines
    assert any(line.startswith("broken  failed") and line.endswith("out of memory") for line in lines)
