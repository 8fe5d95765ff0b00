"""Who may use the app: everyone on 127.0.0.1, only password holders on a network.

``make run`` binds 127.0.0.1 (also the default in .streamlit/config.toml). Serving to a
network is the explicit switch ``make run HOST=0.0.0.0``, and it needs a password:
``CNN_STUDIO_PASSWORD`` or ``password = "..."`` in ``.streamlit/secrets.toml``. Without
one, ``python -m ui.auth HOST`` (run by ``make run``) refuses to start the server and
the app itself shows every visitor only the refusal. With a password, each visitor has
a key (``visitor()``) that caps their queued runs and uploaded data sets
(``CNN_STUDIO_VISITOR_RUNS``, ``CNN_STUDIO_VISITOR_UPLOADS``).
"""
from __future__ import annotations

import hashlib
import hmac
import sys
import tomllib
from pathlib import Path

from core import config

SECRETS_FILES = (config.PROJECT_ROOT / ".streamlit" / "secrets.toml",
                 Path.home() / ".streamlit" / "secrets.toml")
LOCAL = "local"


def is_loopback(host: str | None) -> bool:
    """True for addresses only this machine can reach ("" means every interface: not loopback)."""
    host = (host or "").strip().strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def password() -> str | None:
    """The password from the environment, else from a secrets.toml (None when neither sets one)."""
    if config.password():
        return config.password()
    for path in SECRETS_FILES:
        try:
            value = tomllib.loads(path.read_text(encoding="utf-8")).get("password")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        if isinstance(value, str) and value:
            return value
    return None


def refusal(host: str | None) -> str | None:
    """Why the app may not serve on ``host`` (one sentence), or None when it may."""
    if is_loopback(host) or password():
        return None
    where = host or "every network interface"
    return (f"CNN Studio will not serve on {where} without a password: set {config.PASSWORD_ENV} "
            "or password in .streamlit/secrets.toml, or serve on 127.0.0.1 only")


def gate() -> str:
    """Stop the page unless this visitor may use the app; return the visitor's key.

    On 127.0.0.1 every visitor is ``"local"`` and nothing is asked. On a network the
    visitor gives the password once per session; their key is a hash of their address.
    """
    import streamlit as st

    host = st.get_option("server.address")
    if is_loopback(host):
        return LOCAL
    problem = refusal(host)
    if problem:
        st.error(problem, icon=":material/lock:")
        st.stop()
    if not st.session_state.get("auth_ok"):
        with st.form("login"):
            typed = st.text_input("Password", type="password")
            sent = st.form_submit_button("Enter")
        if sent and hmac.compare_digest(typed.encode(), (password() or "").encode()):
            st.session_state["auth_ok"] = True
            st.rerun()
        if sent:
            st.error("Wrong password.", icon=":material/lock:")
        st.stop()
    address = st.context.ip_address
    address = address if isinstance(address, str) and address else "unknown"
    return hashlib.sha256(address.encode()).hexdigest()[:12]


def visitor_caps(visitor: str) -> tuple[int | None, int | None]:
    """(queued runs, uploaded data sets) one visitor may have; None: no cap (127.0.0.1)."""
    if visitor == LOCAL:
        return None, None
    return config.visitor_runs(), config.visitor_uploads()


def main(argv: list[str] | None = None) -> int:
    """``python -m ui.auth HOST``: exit 2 with one sentence when HOST may not serve."""
    args = sys.argv[1:] if argv is None else argv
    problem = refusal(args[0] if args else "")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
