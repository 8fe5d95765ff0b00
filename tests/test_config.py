import subprocess
import sys

from core import config


def test_defaults_are_inside_the_project(monkeypatch):
    for env in (config.DATA_ENV, config.RUNS_ENV, config.MODELS_ENV):
        monkeypatch.delenv(env, raising=False)
    assert config.data_root() == config.PROJECT_ROOT / "data"
    assert config.runs_root() == config.PROJECT_ROOT / "runs"
    assert config.models_dir() == config.PROJECT_ROOT / "assets" / "models"


def test_environment_overrides_are_read_at_call_time(tmp_path, monkeypatch):
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path / "d"))
    monkeypatch.setenv(config.RUNS_ENV, str(tmp_path / "r"))
    assert config.data_root() == tmp_path / "d"
    assert config.runs_root() == tmp_path / "r"
    assert config.dataset_dir("mnist") == tmp_path / "d" / "mnist"
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path / "other"))
    assert config.data_root() == tmp_path / "other"


def test_relative_setting_is_relative_to_the_project(monkeypatch):
    monkeypatch.setenv(config.DATA_ENV, "somewhere/data")
    assert config.data_root() == config.PROJECT_ROOT / "somewhere" / "data"


def test_blank_setting_falls_back_to_default(monkeypatch):
    monkeypatch.setenv(config.RUNS_ENV, "  ")
    assert config.runs_root() == config.PROJECT_ROOT / "runs"


def test_core_never_imports_streamlit():
    """Import every module under core/ (CLI entries included) in a fresh Python: no streamlit loads."""
    code = (
        "import importlib, pkgutil, sys, core\n"
        "names = [m.name for m in pkgutil.walk_packages(core.__path__, 'core.')\n"
        "         if not m.name.endswith('__main__')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "assert 'streamlit' not in sys.modules, 'streamlit imported'\n"
        "print(len(names))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=config.PROJECT_ROOT,
                         capture_output=True, text=True).stdout
    assert int(out) >= 25  # every feature package was walked, not just the top level
