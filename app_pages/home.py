"""Home: what CNN Studio does and what this machine has right now."""
import streamlit as st

from core import config
from core import machine as system
from ui.common import machine_info

OK = ":green[:material/check_circle:]"
MISSING = ":red[:material/cancel:]"
BROKEN = ":orange[:material/warning:]"

st.title(":material/neurology: CNN Studio")
st.markdown(
    "Try, train and understand **convolutional neural networks**: draw a digit for a "
    "CNN trained from scratch on MNIST, classify photos with a network fine-tuned from "
    "ImageNet, launch your own training runs, and learn the theory with numbers checked "
    "against Keras."
)

info = machine_info()
st.subheader("Status")
col_device, col_data, col_models = st.columns(3)

with col_device:
    st.metric("Device", info.device, help="Where training and prediction run")
    st.caption(info.describe_device())
    if info.mixed_precision:
        st.caption("Mixed precision (float16) available")

data = system.datasets()
with col_data:
    present = [d for d in data if d.present]
    st.metric("Data sets found", f"{len(present)} / {len(data)}")
    for d in data:
        st.markdown(f"{OK if d.present else MISSING} **{d.name}** — {d.detail}")

found = system.models()
with col_models:
    usable = [m for m in found if m.ok]
    st.metric("Models found", len(usable))
    for m in found:
        st.markdown(f"{OK if m.ok else BROKEN} {m.label() if m.ok else m.name}")
        if not m.ok:
            st.caption(m.error)
    if not found:
        st.caption("No model cards yet in assets/models/ or the runs folder.")

root = config.data_root()
if not any(d.present for d in data):
    st.warning(
        f"No data found under **{root}**. Put the data sets there "
        "(`mnist/` with the four IDX `.gz` files, `flowers/` with one folder per class, "
        "`imagenet/` with Keras weight files) or point the app at another folder with "
        f"`{config.DATA_ENV}=/path/to/data`. Without local files the app downloads MNIST "
        "and ImageNet weights when it has internet.",
        icon=":material/folder_off:",
    )
else:
    st.caption(f"Data root: `{root}` (set `{config.DATA_ENV}` to change it)")
st.caption(f"Runs folder: `{config.runs_root()}` (set `{config.RUNS_ENV}` to change it)")
