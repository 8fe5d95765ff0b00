"""The home page through Streamlit's AppTest (no browser)."""
import json

from streamlit.testing.v1 import AppTest

from core import config

TIMEOUT = 120  # TensorFlow's first import is slow


def _markdown(at):
    return "\n".join(m.value for m in at.markdown)


def test_home_page_shows_device_data_and_models(isolated):
    (isolated["models"] / "demo.card.json").write_text(json.dumps(
        {"name": "demo", "task": "mnist", "model_file": "demo.keras", "title": "Demo CNN",
         "metrics": {"test_accuracy": 0.9912}}))
    (isolated["models"] / "demo.keras").write_bytes(b"m")
    (isolated["models"] / "broken.card.json").write_text("{oops")
    at = AppTest.from_file(str(config.PROJECT_ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.title[0].value.endswith("CNN Studio")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Device"] in ("CPU", "GPU")
    assert metrics["Models found"] == "1"
    assert metrics["Data sets found"] == "0 / 3"
    text = _markdown(at)
    assert "Demo CNN · test 99.12% (shipped)" in text
    assert any("not valid JSON" in c.value for c in at.caption)
    # Missing data is explained: where it was looked for and which variable to set.
    (warning,) = at.warning
    assert str(isolated["data"]) in warning.value and config.DATA_ENV in warning.value
    # One card per page, each with a link; the machine details sit in one expander.
    links = at.get("page_link")
    assert [link.proto.page for link in links] == ["draw", "classify", "train", "theory", "calculator"]
    assert "Start here" in text
    (details,) = at.expander
    assert "data sets" in details.label and "Data sets found" in [m.label for m in details.metric]
    # The sidebar names the device and the versions.
    sidebar = "\n".join(m.value for m in at.sidebar.markdown) + "\n".join(c.value for c in at.sidebar.caption)
    assert "Device:" in sidebar and "TensorFlow 2." in sidebar


def test_home_page_lists_data_that_is_present(isolated):
    for cls in ("a", "b"):
        (isolated["data"] / "flowers" / cls).mkdir(parents=True)
        (isolated["data"] / "flowers" / cls / "1.png").write_bytes(b"x")
    at = AppTest.from_file(str(config.PROJECT_ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Data sets found"] == "1 / 3"
    assert "**flowers** — 2 classes, 2 images" in _markdown(at)
    assert not at.warning


def test_home_imports_neither_tensorflow_nor_keras():
    """Home trains and predicts nothing: importing TensorFlow (about 2.6 s) made it open slowly."""
    import subprocess
    import sys

    from core.config import PROJECT_ROOT

    code = ("import sys\n"
            "from streamlit.testing.v1 import AppTest\n"
            "at = AppTest.from_file('app.py', default_timeout=120).run()\n"
            "assert not at.exception, [e.message for e in at.exception]\n"
            "assert any('Device' in m.value for m in at.sidebar.markdown)\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
