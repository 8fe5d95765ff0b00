"""Draw a digit: a live MNIST prediction for a canvas drawing, and what the network sees."""
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from core.inference import digits, drawing
from core.inference import served as serving
from ui import draw as ui
from ui.common import load_picked

CANVAS_KEY = "draw_canvas"  # one key for good: Clear and Undo act inside the canvas, it never remounts
MAPS_PER_LAYER = 16

st.title(":material/draw: Draw a digit")
st.caption("Draw a digit from 0 to 9 with the mouse (or a finger). The network was trained on "
           "MNIST: your drawing is cropped, shrunk to 20 px and centred first, just like MNIST's digits.")

model = load_picked("mnist", "draw_model", serving.load)


def show_answer(reading: drawing.Reading, advice: drawing.Advice) -> None:
    if advice.kind == "result":
        st.markdown(f"<div style='font-size:6rem;font-weight:700;line-height:1'>{reading.digit}</div>",
                    unsafe_allow_html=True)
        st.markdown(f"**{advice.headline}** {advice.detail}")
    else:
        st.markdown(f"### {advice.headline}")
        st.caption(advice.detail)
    if reading.probabilities is not None:
        highlight = reading.digit if reading.status == drawing.DIGIT else None
        st.plotly_chart(ui.probability_chart(reading.probabilities, highlight), width="stretch",
                        key="draw_probs")
        if model.temperature != 1.0:
            st.caption(f"Probabilities are calibrated (temperature {model.temperature:.2f}, fitted on "
                       "held-out digits): of the answers given at 90%, about 90% are right.")


def show_insides(reading: drawing.Reading) -> None:
    explanation = digits.explain(model.model, reading.image)
    member = explanation.source
    where = "" if member == model.model.name else f" (from ensemble member `{member}`)"
    st.caption(f"The {MAPS_PER_LAYER} most active filters of each convolutional layer{where}, each scaled "
               "on its own: brighter means a stronger response.")
    count = len(explanation.activations)
    for i, (_, maps) in enumerate(explanation.activations):
        st.markdown(f"**{digits.layer_title(i, count, maps)}**")
        grid, channels = digits.mosaic(maps, MAPS_PER_LAYER, columns=8)
        st.plotly_chart(ui.feature_map_figure(grid, 8, len(channels)), width="stretch", key=f"draw_maps_{i}")
    if not count:
        st.caption("This model has no convolutional layers to show.")
    st.markdown(f"**Saliency** — which pixels most change the score of {explanation.top}")
    st.plotly_chart(ui.saliency_figure(reading.image, explanation.saliency), width="content",
                    key="draw_saliency")


@st.fragment
def draw_and_read() -> None:
    """Only this part reruns on each stroke: the canvas, the answer and the insides."""
    col_draw, col_seen, col_result = st.columns([1.2, 0.8, 1.4])
    with col_draw:
        stroke = ui.stroke_width()
        canvas = st_canvas(stroke_width=stroke, stroke_color="#FFFFFF", background_color="#000000",
                           drawing_mode="freedraw", width=280, height=280, return_image_data=True,
                           max_display_height=ui.width_tag(stroke), key=CANVAS_KEY)
        ui.canvas_tools(stroke)
    image = canvas.image_data
    strokes = len((canvas.json_data or {}).get("objects", [])) or None  # None: not known
    reading = drawing.read(model, image) if image is not None else drawing.Reading(drawing.EMPTY)
    advice = drawing.advise(reading, strokes)
    with col_result:
        show_answer(reading, advice)
    if reading.image is None:
        return
    st.session_state["last_drawing"] = reading.image  # the Theory page can convolve it
    with col_seen:
        st.markdown("**What the model receives**")
        st.image(reading.image, caption="28 × 28, centred", width="stretch", clamp=True)
    if reading.probabilities is None:
        return
    if st.toggle("Show what the network sees: feature maps and saliency", key="draw_insides"):
        show_insides(reading)


draw_and_read()
