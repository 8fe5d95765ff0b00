"""Keep the served models warm between reruns.

After every script run Streamlit 1.67 (``streamlit/runtime/scriptrunner/script_runner.py``,
``_clean_problem_modules``) calls ``keras.backend.clear_session()`` whenever Keras is
imported. That resets Keras' global state, empties TensorFlow's kernel cache (the next
prediction took 280 ms instead of 16 ms) and runs a full ``gc.collect()`` (about 230 ms),
on every stroke. Streamlit has no option for it (``[runner] postScriptGC = false`` in
``.streamlit/config.toml`` turns off only its own second ``gc.collect``).

The app builds no models in its own process (training runs as a separate process, see
core.jobs), so there is no Keras state to clear: ``keep_keras_warm`` makes
``keras.backend.clear_session``, as Streamlit reaches it, do nothing in this process.
The original is kept as ``keras.backend.clear_session_unpatched``.
"""
from __future__ import annotations

import sys


def _skip_clear_session(*_args, **_kwargs) -> None:
    """Left in place of keras.backend.clear_session in the app process (see module note)."""


def keep_keras_warm() -> bool:
    """Install the no-op once Keras is imported; True when it is in place. Cheap: call every run."""
    keras = sys.modules.get("keras")
    # Another session's thread may be importing Keras right now: a half-initialised module
    # has no backend yet, so wait for a later run instead of failing this one.
    backend = getattr(keras, "backend", None)
    if backend is None or not hasattr(backend, "clear_session"):
        return False
    if backend.clear_session is not _skip_clear_session:
        backend.clear_session_unpatched = backend.clear_session
        backend.clear_session = _skip_clear_session
    return True
