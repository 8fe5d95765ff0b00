"""CNN Studio's brain: data, models, training, jobs, prediction and the calculator.

Plain Python, never streamlit, so tests, the CLI and the pages share one API.
"""
import contextlib
import os
import sys
import threading

# TensorFlow prints C++ banners on import; the app and the CLI want a quiet terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def _stderr_silenced():
    """Silence file descriptor 2 (C++ logging ignores sys.stderr) for a moment."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_import_lock = threading.Lock()
_imported = False


def import_tensorflow():
    """Import TensorFlow and Keras without absl's pre-init banners (oneDNN, CUDA stubs).

    Call this before anything else imports them; later imports reuse the module.
    Python exceptions still surface, since only the C-level stream is muted.
    """
    global _imported
    # Streamlit runs each session's script in its own thread: a page opened while another is
    # still importing would get a half-initialised module ("partially initialized module
    # 'keras'"), so the first import finishes under a lock before anyone else gets it.
    with _import_lock:
        if not _imported:
            with _stderr_silenced():
                import keras  # noqa: F401
                import tensorflow  # noqa: F401
            _imported = True
    return sys.modules["tensorflow"]


def configured_keras_backend() -> str | None:
    """The backend set by ``KERAS_BACKEND`` or ``~/.keras/keras.json``, read the way Keras reads
    them (None when neither says)."""
    name = os.environ.get("KERAS_BACKEND")
    if not name:
        import json
        from pathlib import Path

        conf = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras.json"
        try:
            name = json.loads(conf.read_text()).get("backend")
        except (OSError, ValueError, AttributeError):
            name = None
    return name or None


def keras_backend_name() -> str:
    """The backend Keras will pick, read the way Keras reads it, without importing Keras.

    Unset, it is TensorFlow, or JAX where only JAX is installed (e.g. a GPU machine set up
    with ``make run GPU=1 BACKEND=jax`` or one that came with JAX alone).
    """
    name = configured_keras_backend()
    if not name:
        from importlib.util import find_spec

        name = "jax" if find_spec("tensorflow") is None and find_spec("jax") is not None else "tensorflow"
    return name


def import_keras():
    """Keras on its configured backend; TensorFlow is imported (quietly) only when it is that backend."""
    backend = keras_backend_name()
    if backend == "tensorflow":
        import_tensorflow()
    else:  # Keras reads it on import; runs started from here inherit it
        os.environ.setdefault("KERAS_BACKEND", backend)
    import keras

    return keras
