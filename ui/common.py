"""Pieces every page shares: cached machine info and the sidebar."""
import streamlit as st

from core import machine as system
from core.errors import StudioError


@st.cache_resource(show_spinner="Starting Keras…")
def machine_info() -> system.MachineInfo:
    return system.machine_info()


@st.cache_resource
def machine_summary() -> system.MachineInfo:
    """The same facts without importing TensorFlow: for the sidebar and Home, which train nothing."""
    return system.summary()


def sidebar() -> None:
    info = machine_summary()
    with st.sidebar:
        icon = ":material/memory:" if info.gpus else ":material/developer_board:"
        st.markdown(f"{icon} **Device:** {info.describe_device()}")
        if not info.gpus:
            st.caption("No GPU found: training and prediction run on the CPU.")
        st.caption(info.describe_libraries())


def model_picker(task: str, key: str, label: str = "Model"):
    """Pick a shipped or user-trained model of one task; returns its ModelEntry or None.

    Broken cards and missing model files are shown with the reason, never raised.
    """
    entries = system.models(task=task)
    usable = [e for e in entries if e.ok]
    for bad in (e for e in entries if not e.ok):
        st.warning(f"Model **{bad.name}** cannot be used: {bad.error}", icon=":material/error:")
    if not usable:
        st.error(
            f"No {task} model found. Shipped models live in `assets/models/` (restore them with "
            "`git checkout assets/models`), or train one on the **Train** page.",
            icon=":material/error:",
        )
        return None
    wanted = st.session_state.get(USE_MODEL)
    if wanted and wanted["task"] == task:  # "Use it now" on the Train page picked this run's model
        del st.session_state[USE_MODEL]
        for i, entry in enumerate(usable):
            if entry.source == "run" and entry.card_path.parent.name == wanted["run"]:
                st.session_state[key] = i
    index = st.selectbox(label, range(len(usable)), format_func=lambda i: usable[i].label(), key=key)
    return usable[index]


def load_picked(task: str, key: str, load):
    """The page's model: picked (``model_picker``) and loaded with ``load(path)``, or the page
    stops with one sentence saying what to do."""
    entry = model_picker(task, key=key)
    if entry is None:
        st.stop()
    try:
        with st.spinner("Loading the model…"):
            return load(entry.model_path)
    except (StudioError, OSError) as exc:
        st.error(f"Cannot load {entry.title}: {exc}\n\nRestore the shipped models with "
                 "`git checkout assets/models`, or train one on the **Train** page.", icon=":material/error:")
        st.stop()


USE_MODEL = "use_model"
PREDICTION_PAGES = {"mnist": "app_pages/draw.py", "image": "app_pages/classify.py"}


def use_it_now(run_id: str, model_task: str) -> None:
    """Open the page that uses ``model_task`` models with run ``run_id``'s model selected."""
    st.session_state[USE_MODEL] = {"task": model_task, "run": run_id}
    st.switch_page(PREDICTION_PAGES[model_task])
