"""core.training.settings: one owner for every default and rule, and the command line made from it."""
from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import fields

import pytest

from core import machine
from core.config import PROJECT_ROOT
from core.training import TrainingError, runner
from core.training.settings import TASKS, MnistSettings, TransferSettings


@pytest.mark.parametrize("cls", list(TASKS.values()))
def test_the_parser_defaults_are_the_dataclass_defaults(cls):
    args = runner.build_parser().parse_args([cls.TASK, "--out", "x"])
    assert cls.from_args(args) == cls()
    for f in fields(cls):
        assert getattr(args, f.name) == f.default


@pytest.mark.parametrize("cfg", [
    MnistSettings(arch="best", epochs=2, batch_size=64, lr=0.01, seed=3, val_split=0.2, limit=500,
                  device="cpu", backend="jax"),
    TransferSettings(data="flowers", backbone="mobilenet_v2_0.35", image_size=96, epochs_head=1,
                     epochs_fine=0, limit_per_class=20, weights="none", xla="off"),
])
def test_settings_survive_the_trip_through_the_command_line(cfg):
    """What the page and core.jobs write as flags is read back as the same settings."""
    args = runner.build_parser().parse_args([cfg.TASK, *cfg.to_argv(), "--out", "x"])
    assert type(cfg).from_args(args) == cfg


def test_recipe_defaults_are_resolved_from_the_architecture():
    from core.models import mnist as models

    cfg = MnistSettings(arch="seed").resolved()
    rec = models.recipe("seed")
    assert (cfg.epochs, cfg.batch_size, cfg.lr) == (rec.epochs, rec.batch_size, rec.lr)
    assert MnistSettings(arch="seed", epochs=1).resolved().epochs == 1


@pytest.mark.parametrize("cfg, message", [
    (MnistSettings(lr=float("inf")), "learning rate must be positive and finite, got inf"),
    (MnistSettings(lr=float("nan")), "learning rate must be positive and finite, got nan"),
    (MnistSettings(seed=-5), "seed must be a whole number from 0"),
    (MnistSettings(seed=2**40), "seed must be a whole number from 0"),
    (MnistSettings(arch="huge"), "unknown architecture 'huge'"),
    (MnistSettings(device="tpu"), "device must be one of auto, cpu, gpu"),
    (MnistSettings(backend="torch"), "backend must be one of auto, tensorflow, jax"),
    (TransferSettings(fine_lr=float("inf")), "fine-tuning learning rate must be positive and finite"),
    (TransferSettings(seed=-1), "seed must be a whole number from 0"),
    (TransferSettings(data="--x"), "a data folder name cannot start with '-'"),
    (TransferSettings(val_frac=0.7), "val frac must be above 0 and below 0.5"),
    (TransferSettings(limit_per_class=3), "limit per class must be at least 10 images"),
])
def test_problems_name_each_invalid_setting(cfg, message):
    assert any(message in p for p in cfg.problems()), cfg.problems()


def test_valid_defaults_have_no_problems():
    assert MnistSettings().problems() == [] and TransferSettings().problems() == []
    assert MnistSettings(batch_size=500).problems(n_train=100) == [
        "batch size 500 is larger than the 100 training images"]


def _train_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.train", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_cli_refuses_an_infinite_rate_and_a_negative_seed_in_one_sentence(tmp_path):
    """`--lr inf` trained to NaN and reported "succeeded"; `--seed -5` gave a traceback."""
    for flags, message in ((["--lr", "inf"], "learning rate must be positive and finite"),
                           (["--seed", "-5"], "seed must be a whole number from 0")):
        out = tmp_path / flags[0].strip("-")
        proc = _train_cli("mnist", *flags, "--out", str(out))
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr


def test_cli_refuses_an_out_folder_that_is_not_a_run(tmp_path):
    """`--out /` or any folder with other files in it was accepted and written into."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"precious")
    for out in (folder, PROJECT_ROOT / "core"):
        proc = _train_cli("mnist", "--out", str(out))
        assert proc.returncode == 2 and "is not empty and is not a run folder" in proc.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["holiday.jpg"]  # nothing written


def test_an_empty_folder_or_a_run_folder_is_accepted(tmp_path):
    (tmp_path / "empty").mkdir()
    assert runner.check_out(tmp_path / "empty") == tmp_path / "empty"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "status.json").write_text("{}")
    assert runner.check_out(tmp_path / "run") == tmp_path / "run"
    (tmp_path / "file").write_text("x")
    with pytest.raises(runner.TrainingError, match="is a file"):
        runner.check_out(tmp_path / "file")


def test_help_lists_every_visible_setting():
    parser = runner.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    text = sub.choices["transfer"].format_help()
    assert "--epochs-head" in text and "--fine-lr" in text and "--weights" not in text


def test_a_run_asks_for_its_backend_and_an_uninstalled_one_is_refused_in_one_sentence(tmp_path, monkeypatch):
    argv = MnistSettings(backend="jax").to_argv()
    assert argv[argv.index("--backend") + 1] == "jax"
    assert "--backend" not in MnistSettings().to_argv()  # auto: left to the machine
    monkeypatch.setattr(machine, "installed_backends", lambda: ["tensorflow"])
    with pytest.raises(machine.MachineError, match="the jax backend is not installed here: pip install -r "
                                                   "requirements-jax.txt"):
        machine.backend_for_run("jax")


def test_auto_picks_the_configured_backend_else_the_one_with_cuda_on_a_gpu_machine(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no keras.json
    monkeypatch.setattr(machine, "installed_backends", lambda: ["tensorflow", "jax"])
    monkeypatch.setattr(machine, "has_cuda", lambda name: name == "jax")  # a lent GPU machine
    monkeypatch.setattr(machine, "_nvidia_gpus", lambda: [machine.GPU("NVIDIA H100", 81559, "9.0")])
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert machine.backend_for_run("auto") == "jax"
    assert machine.backend_for_run("tensorflow") == "tensorflow"
    monkeypatch.setattr(machine, "_nvidia_gpus", lambda: [])
    assert machine.backend_for_run("auto") == "tensorflow"  # no GPU: the default backend
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert machine.backend_for_run("auto") == "jax"  # the user's own setting wins


def test_a_run_in_a_process_on_another_backend_says_how_to_start_it(tmp_path):
    other = "jax" if machine.keras_backend() == "tensorflow" else "tensorflow"
    with pytest.raises(TrainingError, match=f"start the run with python -m core.train ... --backend {other}"):
        runner.execute("mnist", MnistSettings(backend=other), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before anything was written
