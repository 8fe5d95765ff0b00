"""The home page in a real browser against a real `streamlit run`."""
import pytest

from tests.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser


def test_home_page_in_chromium(page, streamlit_server):
    page.goto(streamlit_server["url"])
    wait_for_app(page)
    page.get_by_text("Data sets found").wait_for()
    body = page.locator("[data-testid='stMain']").inner_text()
    assert "CNN Studio" in body
    assert "Device" in body and ("CPU" in body or "GPU" in body)
    assert "mnist" in body and "flowers" in body
    sidebar = page.locator("[data-testid='stSidebar']").inner_text()
    assert "TensorFlow 2." in sidebar
    shot = screenshot(page, "home")
    assert shot.stat().st_size > 10_000
