"""The time estimate before launch: a measured probe, scaled to the run's steps, shown on the form."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.config import PROJECT_ROOT
from core.training.estimate import estimate, held_out
from core.training.settings import MnistSettings, TransferSettings


def test_the_probe_scales_with_epochs_and_images():
    one = estimate(MnistSettings(arch="seed", epochs=1, batch_size=32), 320, 10)
    (phase,) = one.phases
    assert phase["steps"] == 10 and phase["train_step_s"] > 0 and phase["eval_step_s"] > 0
    assert one.seconds >= phase["tracing_s"] + phase["steps"] * phase["train_step_s"]
    ten = estimate(MnistSettings(arch="seed", epochs=10, batch_size=32), 3200, 10)
    assert ten.seconds > 20 * (ten.phases[0]["train_step_s"] * 10)  # 10 epochs of 100 steps, at least


def test_held_out_counts_follow_the_settings():
    assert held_out(MnistSettings(val_split=0.1, limit=400), 360) == (40, 400)
    assert held_out(TransferSettings(val_frac=0.15, test_frac=0.15), 700) == (150, 150)


def test_transfer_probe_times_both_phases():
    cfg = TransferSettings(backbone="tiny_cnn", image_size=32, epochs_head=2, epochs_fine=1, batch_size=8)
    est = estimate(cfg, 40, 3)
    assert [p["phase"] for p in est.phases] == ["head", "fine"]
    assert [p["epochs"] for p in est.phases] == [2, 1]


def test_the_form_shows_the_estimate_on_request(mnist_like):
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("app_pages/train.py").run()
    at.selectbox(key="mnist_arch").set_value("seed").run()
    at.button(key="estimate_time").click().run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "Estimated run time on this machine: **about" in text and "probe" in text
    at.number_input(key="mnist_epochs").set_value(1).run()
    assert any("settings changed" in c.value for c in at.caption)
