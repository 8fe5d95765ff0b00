"""Serving (issue 15, cases 8 and 9): loopback by default, a password for a network,
per-visitor caps, no error details in the browser."""
from __future__ import annotations

import io
import subprocess
import sys
import tomllib
import zipfile

import pytest
from PIL import Image
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from core import config
from core.data import uploads
from core.jobs import JobError, Jobs
from ui import auth

ROOT = config.PROJECT_ROOT
TIMEOUT = 120


@pytest.fixture
def no_password(monkeypatch, tmp_path):
    monkeypatch.delenv(config.PASSWORD_ENV, raising=False)
    monkeypatch.setattr(auth, "SECRETS_FILES", (tmp_path / "secrets.toml",))
    return tmp_path / "secrets.toml"


def test_streamlit_settings_bind_loopback_and_hide_error_details():
    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert settings["server"]["address"] == "127.0.0.1"
    assert settings["client"]["showErrorDetails"] == "none"


def test_make_run_binds_loopback_unless_told_and_checks_first():
    plain = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "--server.address 127.0.0.1" in plain
    network = subprocess.run(["make", "-n", "run", "HOST=0.0.0.0"], cwd=ROOT, capture_output=True,
                             text=True).stdout
    assert "-m ui.auth 0.0.0.0" in network and "--server.address 0.0.0.0" in network


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("127.0.1.1", True),
    ("0.0.0.0", False), ("", False), (None, False), ("192.168.1.5", False), ("::", False),
])
def test_loopback_addresses(host, loopback):
    assert auth.is_loopback(host) is loopback


def test_network_serving_needs_a_password(no_password, monkeypatch):
    assert auth.refusal("127.0.0.1") is None
    assert config.PASSWORD_ENV in auth.refusal("0.0.0.0")
    assert "every network interface" in auth.refusal("")
    no_password.write_text('password = "from-secrets"\n')
    assert auth.refusal("0.0.0.0") is None and auth.password() == "from-secrets"
    no_password.write_text("not [ toml")
    assert auth.refusal("0.0.0.0") is not None
    monkeypatch.setenv(config.PASSWORD_ENV, "s3cret")
    assert auth.refusal("0.0.0.0") is None


def test_the_start_check_exits_non_zero_with_one_sentence(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    refused = subprocess.run([sys.executable, "-m", "ui.auth", "0.0.0.0"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and refused.stderr.startswith("error: ")
    assert refused.stderr.count("\n") == 1
    ok = subprocess.run([sys.executable, "-m", "ui.auth", "127.0.0.1"], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0


@pytest.fixture
def served_on_network():
    old = st_config.get_option("server.address")
    st_config.set_option("server.address", "0.0.0.0")
    yield
    st_config.set_option("server.address", old)


def test_app_on_a_network_without_a_password_shows_only_the_refusal(isolated, no_password,
                                                                    served_on_network):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert len(at.error) == 1 and "without a password" in at.error[0].value
    assert not at.title  # no page ran


def test_app_on_a_network_asks_for_the_password(isolated, no_password, served_on_network, monkeypatch):
    monkeypatch.setenv(config.PASSWORD_ENV, "s3cret")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception and not at.title
    at.text_input[0].input("wrong")
    at.button[0].click().run()
    assert "Wrong password." in [e.value for e in at.error] and not at.title
    at.text_input[0].input("s3cret")
    at.button[0].click().run()
    assert not at.exception and at.title and at.title[0].value.endswith("CNN Studio")
    assert at.session_state["visitor"] != auth.LOCAL


def test_visitor_caps_on_queued_runs(isolated, monkeypatch):
    monkeypatch.setattr(Jobs, "_launch", lambda self, run: None)  # queue only
    jobs = Jobs(max_concurrent=1)
    for _ in range(2):
        jobs.start("mnist", {"epochs": 1}, visitor="v1", cap=2)
    with pytest.raises(JobError, match="limit is 2 per visitor"):
        jobs.start("mnist", {"epochs": 1}, visitor="v1", cap=2)
    jobs.start("mnist", {"epochs": 1}, visitor="v2", cap=2)  # someone else still may
    assert auth.visitor_caps(auth.LOCAL) == (None, None)
    monkeypatch.setenv(config.VISITOR_RUNS_ENV, "5")
    assert auth.visitor_caps("abc")[0] == 5


def _zip(colour) -> io.BytesIO:
    buf = io.BytesIO()
    png = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(png, "PNG")
    with zipfile.ZipFile(buf, "w") as archive:
        for k in range(2):
            for i in range(100):
                archive.writestr(f"c{k}/{i}.png", png.getvalue())
    buf.seek(0)
    return buf


def test_visitor_caps_on_uploads(isolated):
    uploads.import_zip(_zip((1, 2, 3)), "a.zip", visitor="v1", visitor_cap=1)
    with pytest.raises(uploads.UploadError, match="limit is 1 per visitor"):
        uploads.import_zip(_zip((4, 5, 6)), "b.zip", visitor="v1", visitor_cap=1)
    assert list((config.uploads_root()).glob(".incoming-*")) == []
    other, _ = uploads.import_zip(_zip((4, 5, 6)), "b.zip", visitor="v2", visitor_cap=1)
    assert len(uploads.list_uploads()) == 2
    with pytest.raises(uploads.UploadError, match="not uploaded by you"):
        uploads.remove(other.name, visitor="v1")
    uploads.remove(other.name, visitor="v2")
    assert len(uploads.list_uploads()) == 1


def test_on_a_network_only_the_owner_stops_or_deletes_a_run(isolated, monkeypatch):
    monkeypatch.setattr(Jobs, "_launch", lambda self, run: None)  # queue only
    jobs = Jobs(max_concurrent=1)
    mine = jobs.start("mnist", {"epochs": 1}, visitor="v1", cap=3)
    theirs = jobs.start("mnist", {"epochs": 1})  # queued on 127.0.0.1 or the command line
    for action in (jobs.stop, jobs.delete):
        with pytest.raises(JobError, match="not queued by you"):
            action(theirs, visitor="v1")
    jobs.stop(mine, visitor="v1")
    jobs.delete(mine, visitor="v1")
    jobs.delete(theirs)  # no visitor: the local user may
    assert jobs.list() == []


def test_keras_is_kept_warm_from_the_first_run_of_a_page_that_imports_it(tmp_path):
    """Opened straight at /draw in a fresh process, the page imports Keras; Streamlit's reset after
    that very run must already be the no-op: every later stroke reruns only the page's fragment."""
    script = (
        "from streamlit.testing.v1 import AppTest\n"
        "import sys\n"
        "assert 'keras' not in sys.modules\n"
        f"at = AppTest.from_file({str(ROOT / 'app.py')!r}, default_timeout={TIMEOUT})\n"
        "at.switch_page('app_pages/draw.py').run()\n"
        "import keras\n"
        "print(keras.backend.clear_session.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         timeout=TIMEOUT * 2)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "_skip_clear_session"
