"""Classify a photo: upload photos (or take one), see the top classes and where the network looked."""
import plotly.graph_objects as go
import streamlit as st

from core import fmt
from core.data import photo
from core.inference import gradcam
from core.inference import photos as classify
from ui.common import load_picked

TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif"]
TOP_K = 5


def bar_chart(result: classify.PhotoResult, key: str) -> None:
    names = [name for name, _ in result.top][::-1]
    probs = [p for _, p in result.top][::-1]
    top_colour = "#4f46e5" if result.known is not False else "#b0b4c0"
    colors = ["#b0b4c0"] * (len(probs) - 1) + [top_colour]
    fig = go.Figure(go.Bar(x=probs, y=names, orientation="h", marker_color=colors,
                           text=[fmt.pct(p, 1) for p in probs], textposition="outside"))
    fig.update_layout(height=60 + 36 * len(probs), margin=dict(l=10, r=30, t=10, b=10),
                      xaxis=dict(range=[0, 1.15], title="probability (calibrated)"))
    st.plotly_chart(fig, width="stretch", key=key)


def show(result: classify.PhotoResult, classes: list[str], index: int) -> None:
    if not result.ok:
        st.error(result.error, icon=":material/broken_image:")
        return
    name, p = result.top[0]
    with st.container(border=True):
        left, right = st.columns([1, 1])
        with right:
            if result.known is False:
                st.markdown(f"#### This doesn't look like any of: {', '.join(classes)}")
                st.caption(f"{result.name} · it is unlike the photos the model learned from; "
                           f"its closest class would be {name.replace('_', ' ')} ({fmt.pct(p, 0)}).")
            else:
                st.markdown(f"#### {name.replace('_', ' ').capitalize()} · {fmt.pct(p, 1)}")
                st.caption(result.name)
                if result.unsure:
                    st.warning("Not sure: two or more classes look alike here.", icon=":material/help:")
            bar_chart(result, key=f"bars_{index}")
            cam = st.toggle("Show where the network looked (Grad-CAM)", key=f"cam_{index}")
        with left:
            st.image(result.image, width="stretch")
    if cam:
        show_gradcam(result, name, index)


def show_gradcam(result: classify.PhotoResult, name: str, index: int) -> None:
    photo_col, cam_col = st.columns(2)
    with photo_col:
        st.image(result.image, width="stretch", caption="the photo")
    with cam_col:
        with st.spinner("Computing Grad-CAM…"):
            st.image(classify.explain(served.model, result.image), width="stretch",
                     caption=f"Grad-CAM for {name.replace('_', ' ')}")
        st.image(gradcam.legend(), width="stretch")
        st.caption("blue: no evidence for this class · red: the strongest evidence")


st.title(":material/photo_camera: Classify a photo")
st.caption("A small ImageNet network (MobileNetV2) fine-tuned on your classes. Upload one or "
           "several photos, or take one with the camera.")

served = load_picked("image", "classify_model", classify.load)  # cached by path and mtime
st.caption(f"Classes: {', '.join(served.classes)}")

uploads = st.file_uploader(
    f"Photos ({', '.join(TYPES)}; up to {photo.MAX_BYTES // 2**20} MB each)", type=TYPES,
    accept_multiple_files=True, key="classify_uploads")
if st.toggle("Use the camera", key="classify_camera_on"):
    shot = st.camera_input("Take a photo", key="classify_camera")
    if shot is not None:
        uploads = [*uploads, shot]


@st.cache_data(max_entries=64, show_spinner=False)
def classify_upload(model_key: str, name: str, data: bytes) -> classify.PhotoResult:
    """Each upload is decoded and classified once per model, not again on every toggle."""
    return classify.classify_photo(served, name, data, TOP_K)


if not uploads:
    st.info("Upload a photo to see what the network thinks it shows.", icon=":material/upload:")
model_key = str(id(served))  # a new Served whenever the model or its card changes
for i, upload in enumerate(uploads):
    show(classify_upload(model_key, upload.name, upload.getvalue()), served.classes, i)
