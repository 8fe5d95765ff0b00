"""Home: where to start. One card per page with what it does; machine details folded away."""
import streamlit as st

from core import config
from core import machine as system
from ui.common import machine_summary

OK = ":green[:material/check_circle:]"
MISSING = ":red[:material/cancel:]"
BROKEN = ":orange[:material/warning:]"

# (page file, title, icon, what it does): the page list's titles and icons live in app.py.
CARDS = [
    ("app_pages/draw.py", "Draw a digit", ":material/draw:",
     "Draw a digit with the mouse and watch a CNN trained on MNIST read it, layer by layer."),
    ("app_pages/classify.py", "Classify a photo", ":material/photo_camera:",
     "Upload flower photos; a network fine-tuned from ImageNet names them and shows where it looked."),
    ("app_pages/train.py", "Train", ":material/model_training:",
     "Train your own model on MNIST or a folder of photos, watch it learn, then use it or download it."),
    ("app_pages/theory.py", "Theory", ":material/school:",
     "Why convolutions work, shown with real numbers: parameters, receptive fields, pooling, strides."),
    ("app_pages/calculator.py", "Calculator", ":material/calculate:",
     "Count a network's parameters, memory and compute before training it, checked against Keras."),
]

st.title(":material/neurology: CNN Studio")
st.markdown("Try, train and understand **convolutional neural networks**. **Start here:** draw a digit, "
            "then train a model of your own and take it home.")

for row in range(0, len(CARDS), 3):
    for column, (page, title, icon, what) in zip(st.columns(3), CARDS[row:row + 3], strict=False):
        with column.container(border=True):
            st.markdown(f"#### {icon} {title}")
            st.markdown(what)
            st.page_link(page, label=f"Open {title}", icon=":material/arrow_forward:")

info = machine_summary()  # no TensorFlow import: Home opens fast
data = system.datasets()
found = system.models()
usable = [m for m in found if m.ok]
root = config.data_root()
if not any(d.present for d in data):
    st.warning(
        f"No data found under **{root}**. Put the data sets there "
        "(`mnist/` with the four IDX `.gz` files, `flowers/` with one folder per class, "
        "`imagenet/` with Keras weight files) or point the app at another folder with "
        f"`{config.DATA_ENV}=/path/to/data`. Drawing and classifying with the shipped models "
        "works without data.",
        icon=":material/folder_off:",
    )

with st.expander(f"This machine: {info.describe_device()} · {sum(d.present for d in data)} of "
                 f"{len(data)} data sets · {len(usable)} models"):
    col_device, col_data, col_models = st.columns(3)
    with col_device:
        st.metric("Device", info.device, help="Where training and prediction run")
        if info.mixed_precision:
            st.caption("Mixed precision (float16) available")
    with col_data:
        st.metric("Data sets found", f"{sum(d.present for d in data)} / {len(data)}")
        for d in data:
            st.markdown(f"{OK if d.present else MISSING} **{d.name}** — {d.detail}")
    with col_models:
        st.metric("Models found", len(usable))
        for m in found:
            st.markdown(f"{OK if m.ok else BROKEN} {m.label() if m.ok else m.name}")
            if not m.ok:
                st.caption(m.error)
        if not found:
            st.caption("No model cards yet in assets/models/ or the runs folder.")
    st.caption(f"Data root: `{root}` (set `{config.DATA_ENV}` to change it) · "
               f"Runs folder: `{config.runs_root()}` (set `{config.RUNS_ENV}` to change it)")
