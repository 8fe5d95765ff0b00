"""The home page in a real browser against a real `streamlit run`."""
import pytest

from tests.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser


def test_home_page_in_chromium(page, streamlit_server):
    page.goto(streamlit_server["url"])
    wait_for_app(page)
    main = page.locator("[data-testid='stMain']")
    main.get_by_text("Start here").wait_for()
    # One card per page, each with its link.
    for title in ("Draw a digit", "Classify a photo", "Train", "Theory", "Calculator"):
        main.get_by_role("link", name=f"Open {title}").wait_for()
    # The machine details are folded into one expander.
    main.get_by_text("This machine:").click()
    page.get_by_text("Data sets found").wait_for()
    body = main.inner_text()
    assert "CNN Studio" in body
    assert "Device" in body and ("CPU" in body or "GPU" in body)
    assert "mnist" in body and "flowers" in body
    sidebar = page.locator("[data-testid='stSidebar']").inner_text()
    assert "TensorFlow 2." in sidebar
    shot = screenshot(page, "home")
    assert shot.stat().st_size > 10_000


def test_a_page_opened_by_url_on_a_fresh_server_gets_the_app_shell(browser, tmp_path):
    """With pages in app_pages/ (not pages/), Streamlit's legacy auto-discovery never runs a page alone."""
    from tests.conftest import running_streamlit

    with running_streamlit(tmp_path / "runs", tmp_path) as server:
        context = browser.new_context()
        page = context.new_page()
        page.goto(server["url"] + "/calculator", timeout=60_000)
        page.get_by_text("CNN memory calculator").wait_for(timeout=90_000)
        sidebar = page.locator("[data-testid='stSidebar']")
        sidebar.get_by_text("Device:").wait_for(timeout=30_000)
        nav = page.locator("[data-testid='stSidebarNav']").inner_text()
        assert "Draw a digit" in nav and "Calculator" in nav
        assert "common" not in nav  # the legacy mode would list every page file
        context.close()
