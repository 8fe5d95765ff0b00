"""The Calculator page through AppTest: presets, table edits, bad input, GPU fit."""
from streamlit.testing.v1 import AppTest

from core import config
from core.learn import calculator as memory

TIMEOUT = 120
EXERCISE = "Exercise: 3 conv layers on 200x300 RGB"


def _page():
    at = AppTest.from_file(str(config.PROJECT_ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/calculator.py").run()
    assert not at.exception
    return at


def _metrics(at):
    return {m.label: m.value for m in at.metric}


def test_exercise_preset_shows_the_right_answer_and_the_book_one(isolated):
    at = _page()
    metrics = _metrics(at)
    assert metrics["Parameters"] == "903,400"  # the complete answer's metric comes last
    assert metrics["Inference, 1 image"] == "12.61 MB"
    assert metrics["Training, batch 50"] == "569.23 MB"
    book = [m.value for m in at.metric if m.label in ("Parameters", "RAM")]
    assert book[:3] == ["903,400", "6,300", "25.2 KB"]
    text = "\n".join(m.value for m in at.markdown)
    assert "100x150x100 = 6 MB, 50x75x200 = 3 MB, 25x38x400 = 1.52 MB" in text
    assert any("2,800 + 180,200 + 720,400" in c.value for c in at.caption)
    breakdown = at.dataframe[1].value
    assert list(breakdown["bytes"]) == [562_000_000, 3_613_600, 3_613_600, 0, 569_227_200]
    rows = at.dataframe[2].value
    assert list(rows["output shape"]) == ["200x300x3", "100x150x100", "50x75x200", "25x38x400"]


def test_editing_the_table_updates_the_totals(isolated):
    at = _page()
    # Halve the second layer's filters and add a fourth conv layer.
    at.session_state["calc_table_0"] = {
        "edited_rows": {1: {"filters": 100}},
        "added_rows": [{"kind": "Conv2D", "filters": 10, "kernel": 1, "stride": 1, "padding": "same",
                        "bias": True, "depth_multiplier": 1}],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception
    layers = [memory.Layer("Conv2D", 100, 3, 2), memory.Layer("Conv2D", 100, 3, 2),
              memory.Layer("Conv2D", 400, 3, 2), memory.Layer("Conv2D", 10, 1, 1)]
    expected = memory.analyze((200, 300, 3), layers, batch=50)
    assert expected.params == 2_800 + 90_100 + 360_400 + 4_010
    assert _metrics(at)["Parameters"] == f"{expected.params:,}"
    assert _metrics(at)["Training, batch 50"] == f"{expected.totals['training_bytes'] / 1e6:,.2f} MB"
    # Changing batch and optimizer changes the training total accordingly.
    at.number_input(key="calc_b_0").set_value(10)
    at.selectbox(key="calc_opt").set_value("adam")
    at.run()
    again = memory.analyze((200, 300, 3), layers, batch=10, optimizer="adam").totals["training_bytes"]
    assert _metrics(at)["Training, batch 10"] == f"{again / 1e6:,.2f} MB"


def test_a_bad_table_gets_a_message_and_keeps_the_edits(isolated):
    at = _page()
    at.session_state["calc_table_0"] = {
        "edited_rows": {0: {"kernel": 500, "padding": "valid"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception
    (error,) = at.error
    assert "Layer 1 (Conv2D): kernel 500 does not fit the 200x300 input" in error.value
    assert "edits are kept" in error.value
    # The fix is one cell away: the other edits are still there.
    at.session_state["calc_table_0"] = {
        "edited_rows": {0: {"kernel": 5, "padding": "valid"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.error
    assert at.dataframe[2].value["output shape"][1] == "98x148x100"


def test_gpu_fit_and_remedies_follow_the_model(isolated):
    at = _page()
    at.selectbox(key="calc_gpu").set_value("Type a size")
    at.run()
    at.number_input(key="calc_gpu_gb").set_value(0.5)
    at.run()
    (error,) = at.error
    assert "569.23 MB of 500.00 MB: it does not fit" in error.value
    shape, layers = memory.preset(EXERCISE)
    report = memory.analyze(shape, layers, batch=50)
    assert f"largest batch that fits is {memory.max_batch(report, 5e8):,}" in error.value
    remedies = at.dataframe[3].value
    expected = memory.remedies(shape, layers, batch=50)
    assert list(remedies["training MB"]) == [r["training_bytes"] / 1e6 for r in expected]
    assert remedies["fits"].tolist() == [r["training_bytes"] <= 5e8 for r in expected]


def test_other_presets_match_the_core(isolated):
    at = _page()
    at.selectbox(key="calc_preset").set_value("VGG-16-like (224x224)").run()
    assert not at.exception
    assert _metrics(at)["Parameters"] == "138,357,544"


def test_a_typed_row_without_a_layer_type_is_named_not_ignored(isolated):
    at = _page()
    at.session_state["calc_table_0"] = {"edited_rows": {}, "added_rows": [{"filters": 64}],
                                        "deleted_rows": []}
    at.run()
    assert not at.exception
    (error,) = at.error
    assert "Row 4 has a filters but no layer type" in error.value


def test_remedies_that_cannot_apply_are_left_out():
    shape, layers = memory.preset("Exercise: 3 conv layers on 200x300 RGB")
    names = {opt: [r["remedy"] for r in memory.remedies(shape, layers, batch=50, optimizer=opt)]
             for opt in ("sgd", "momentum", "adam")}
    assert not any(name.startswith("SGD instead") for name in names["sgd"])
    assert "SGD instead of Adam" in names["adam"] and "SGD instead of SGD with momentum" in names["momentum"]
    mixed = memory.remedies(shape, layers, dtype="mixed", batch=50)
    assert "Mixed precision" not in [r["remedy"] for r in mixed]  # already in use: it saves nothing
    assert all(r["saving"] is None or r["saving"] > 0 for opt in names for r in
               memory.remedies(shape, layers, batch=50, optimizer=opt))
