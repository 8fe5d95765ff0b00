"""CNN Studio: navigation, shared sidebar and state. Each page lives in pages/."""
import streamlit as st

import core

core.import_tensorflow()  # quiet, once, before any page imports it
from pages import common

st.set_page_config(page_title="CNN Studio", page_icon="🧠", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/draw.py", title="Draw a digit", icon=":material/draw:"),
    st.Page("pages/classify.py", title="Classify a photo", icon=":material/photo_camera:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/theory.py", title="Theory", icon=":material/school:"),
    st.Page("pages/calculator.py", title="Calculator", icon=":material/calculate:"),
]

nav = st.navigation(PAGES)
common.sidebar()
nav.run()
