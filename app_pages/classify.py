"""Classify a photo: upload photos (or take one), see the top classes and where the network looked."""
import plotly.graph_objects as go
import streamlit as st

from core.data import photo
from core.inference import photos as classify
from core.inference import unsure
from core.inference.digits import ModelLoadError
from ui.common import model_picker

TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif"]
TOP_K = 5


def bar_chart(result: classify.PhotoResult, key: str) -> None:
    names = [name for name, _ in result.top][::-1]
    probs = [p for _, p in result.top][::-1]
    colors = ["#7f8c8d"] * (len(probs) - 1) + ["#4f46e5"]
    fig = go.Figure(go.Bar(x=probs, y=names, orientation="h", marker_color=colors,
                           text=[f"{p:.1%}" for p in probs], textposition="outside"))
    fig.update_layout(height=60 + 36 * len(probs), margin=dict(l=10, r=30, t=10, b=10),
                      xaxis=dict(range=[0, 1.15], title="probability"))
    st.plotly_chart(fig, width="stretch", key=key)


def show(model, result: classify.PhotoResult, index: int) -> None:
    if not result.ok:
        st.error(result.error, icon=":material/broken_image:")
        return
    name, p = result.top[0]
    with st.container(border=True):
        left, right = st.columns([1, 1])
        with right:
            st.markdown(f"#### {name.replace('_', ' ').capitalize()} · {p:.1%}")
            st.caption(result.name)
            if unsure(p):
                st.warning("Not sure: the photo may show none of this model's classes.",
                           icon=":material/help:")
            bar_chart(result, key=f"bars_{index}")
            cam = st.toggle("Show where the network looked (Grad-CAM)", key=f"cam_{index}")
        with left:
            if cam:
                with st.spinner("Computing Grad-CAM…"):
                    st.image(classify.explain(model, result.image), width="stretch",
                             caption=f"Grad-CAM for {name}: red is where the evidence was")
            else:
                st.image(result.image, width="stretch")


st.title(":material/photo_camera: Classify a photo")
st.caption("A small ImageNet network (MobileNetV2) fine-tuned on your classes. Upload one or "
           "several photos, or take one with the camera.")

entry = model_picker("image", key="classify_model")
if entry is None:
    st.stop()
classes = entry.card.get("classes") or []
st.caption(f"Classes: {', '.join(classes)}" if classes else "This model's card lists no class names.")
try:
    with st.spinner("Loading the model…"):
        model = classify.load(entry.model_path)  # cached in core.inference.digits by path and mtime
except (ModelLoadError, OSError) as exc:
    st.error(f"Cannot load {entry.title}: {exc}", icon=":material/error:")
    st.stop()
if not classes:
    classes = [f"class {i}" for i in range(int(model.outputs[0].shape[-1]))]

uploads = st.file_uploader(
    f"Photos ({', '.join(TYPES)}; up to {photo.MAX_BYTES // 2**20} MB each)", type=TYPES,
    accept_multiple_files=True, key="classify_uploads")
if st.toggle("Use the camera", key="classify_camera_on"):
    shot = st.camera_input("Take a photo", key="classify_camera")
    if shot is not None:
        uploads = [*uploads, shot]

if not uploads:
    st.info("Upload a photo to see what the network thinks it shows.", icon=":material/upload:")
for i, upload in enumerate(uploads):
    show(model, classify.classify_photo(model, classes, upload.name, upload.getvalue(), TOP_K), i)
