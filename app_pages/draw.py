"""Draw a digit: a live MNIST prediction for a canvas drawing, and what the network sees."""
import numpy as np
import plotly.graph_objects as go
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from core.data.canvas import canvas_to_mnist, ink_extent
from core.inference import digits as predict
from ui.common import model_picker

CANVAS_KEY = "draw_canvas"  # the canvas widget's key is CANVAS_KEY_<n>; a new n clears it
MAPS_PER_LAYER = 16
DOT = 2.5  # ink no longer than this many stroke widths is a dot, not a digit


def canvas_key() -> str:
    return f"{CANVAS_KEY}_{st.session_state.setdefault('draw_canvas_n', 0)}"


def clear_canvas() -> None:
    st.session_state.draw_canvas_n = st.session_state.get("draw_canvas_n", 0) + 1


def show_prediction(explanation: predict.Explanation) -> None:
    probs = explanation.probabilities
    digit, p = explanation.top, explanation.confidence
    if explanation.unsure:
        second = int(np.argsort(probs)[-2])
        st.markdown(f"### Not sure — maybe **{digit}** or **{second}**")
        st.caption(f"Top guess {digit} at {p:.0%}, then {second} at {probs[second]:.0%}. "
                   "Try drawing it larger and clearer.")
    else:
        st.markdown(f"<div style='font-size:6rem;font-weight:700;line-height:1'>{digit}</div>",
                    unsafe_allow_html=True)
        st.markdown(f"**Prediction: {digit}** with probability {p:.1%}")
    colors = ["#e4572e" if i == digit else "#7f8c8d" for i in range(len(probs))]
    fig = go.Figure(go.Bar(x=[str(i) for i in range(len(probs))], y=probs.tolist(), marker_color=colors,
                           text=[f"{v:.0%}" for v in probs], textposition="outside"))
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=10, b=10), yaxis=dict(range=[0, 1.15]),
                      xaxis=dict(type="category"), xaxis_title="digit", yaxis_title="probability")
    st.plotly_chart(fig, width="stretch", key="draw_probs")


def feature_maps(maps: np.ndarray) -> go.Figure:
    """The most active channels of one conv layer as a grid of heatmaps (one trace, fast)."""
    grid, channels = predict.mosaic(maps, MAPS_PER_LAYER, columns=8)
    fig = go.Figure(go.Heatmap(z=grid, colorscale="Viridis", showscale=False, hoverongaps=False,
                               hovertemplate="%{z:.2f}<extra></extra>"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    rows = -(-len(channels) // 8)
    fig.update_layout(height=110 * rows + 10, margin=dict(l=0, r=0, t=0, b=0))
    return fig


st.title(":material/draw: Draw a digit")
st.caption("Draw a digit from 0 to 9 with the mouse (or a finger). The network was trained on "
           "MNIST: your drawing is cropped, shrunk to 20 px and centred first, just like MNIST's digits.")

entry = model_picker("mnist", key="draw_model")
if entry is None:
    st.stop()
try:
    model = predict.load_model(entry.model_path)
except predict.ModelLoadError as exc:
    st.error(f"{exc}\n\nRestore the shipped models with `git checkout assets/models`, "
             "or train an MNIST model on the **Train** page.", icon=":material/error:")
    st.stop()

col_draw, col_seen, col_result = st.columns([1.2, 0.8, 1.4])
with col_draw:
    stroke = st.slider("Stroke width", 8, 40, 20, key="draw_stroke")
    drawing = st_canvas(stroke_width=stroke, stroke_color="#FFFFFF", background_color="#000000",
                        drawing_mode="freedraw", width=280, height=280, return_image_data=True,
                        key=canvas_key())
    st.button("Clear", icon=":material/delete:", on_click=clear_canvas)

image = canvas_to_mnist(drawing.image_data) if drawing.image_data is not None else None
if image is None:
    with col_result:
        st.info("Draw a digit on the black canvas: the prediction appears as soon as you lift the mouse.",
                icon=":material/gesture:")
    st.stop()
st.session_state["last_drawing"] = image  # the Theory page can convolve it
if ink_extent(drawing.image_data) < DOT * stroke:
    with col_result:
        st.info("That looks like a dot, not a digit: draw the digit larger (or pick a thinner stroke).",
                icon=":material/zoom_in:")
    st.stop()

explanation = predict.explain(model, image)
with col_seen:
    st.markdown("**What the model receives**")
    st.image(image, caption="28 × 28, centred", width="stretch", clamp=True)
with col_result:
    show_prediction(explanation)

with st.expander("What the network sees: feature maps and saliency", icon=":material/visibility:"):
    where = "" if explanation.source == model.name else f" (from ensemble member `{explanation.source}`)"
    st.caption(f"The {MAPS_PER_LAYER} most active channels of each convolutional layer{where}, "
               "each scaled on its own: brighter means a stronger response.")
    for name, maps in explanation.activations:
        st.markdown(f"**{name}** — {maps.shape[2]} channels of {maps.shape[0]}×{maps.shape[1]}")
        st.plotly_chart(feature_maps(maps), width="stretch", key=f"draw_maps_{name}")
    if not explanation.activations:
        st.caption("This model has no convolutional layers to show.")
    st.markdown(f"**Saliency** — the pixels that most change the score of {explanation.top} (in red)")
    overlay = predict.saliency_overlay(image, explanation.saliency)
    st.image(overlay, width=280)
