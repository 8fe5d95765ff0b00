"""CNN Studio: navigation and the shared sidebar. Pages live in app_pages/, helpers in ui/."""
import streamlit as st

import core  # noqa: F401 - sets TensorFlow's log level before any page imports it
from core.errors import StudioError
from ui import auth, common, serving

st.set_page_config(page_title="CNN Studio", page_icon="🧠", layout="wide")

PAGES = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/draw.py", title="Draw a digit", icon=":material/draw:"),
    st.Page("app_pages/classify.py", title="Classify a photo", icon=":material/photo_camera:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/theory.py", title="Theory", icon=":material/school:"),
    st.Page("app_pages/calculator.py", title="Calculator", icon=":material/calculate:"),
]

st.session_state["visitor"] = auth.gate()  # 127.0.0.1: everyone; a network: password holders
nav = st.navigation(PAGES)
common.sidebar()
try:
    nav.run()
except StudioError as exc:  # bad input or settings: one sentence; anything else goes to the server log
    st.error(str(exc), icon=":material/error:")
finally:
    # TensorFlow is imported by the pages that need it (Draw, Classify, Train, Theory), not here:
    # Home opens without it. Once a page has brought it in, Streamlit's per-run Keras reset is
    # turned off, before this very run ends: the Draw page's strokes rerun only its fragment,
    # which never comes back here.
    serving.keep_keras_warm()
