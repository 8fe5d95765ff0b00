"""Pieces every page shares: cached machine info and the sidebar."""
import streamlit as st

from core import system


@st.cache_resource(show_spinner="Starting TensorFlow…")
def machine_info() -> system.MachineInfo:
    return system.machine_info()


def sidebar() -> None:
    info = machine_info()
    with st.sidebar:
        icon = ":material/memory:" if info.gpus else ":material/developer_board:"
        st.markdown(f"{icon} **Device:** {info.describe_device()}")
        if not info.gpus:
            st.caption("No GPU found: training and prediction run on the CPU.")
        st.caption(
            f"TensorFlow {info.tensorflow} · Keras {info.keras} · Python {info.python}"
        )
