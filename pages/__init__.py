"""The app's pages. ``app.py`` lists them with ``st.navigation``.

Streamlit also knows an older multipage mode in which a ``pages/`` folder beside
the main script is itself the navigation. On a fresh server that mode is on until
the first ``st.navigation`` call, so a page opened by its URL would run alone,
without the app's shell. Switching it off here, once, and rerunning sends that
first run through ``app.py``. (Pinned to streamlit 1.67.0; tested in
tests/test_e2e_home.py.)
"""
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

if PagesManager.uses_pages_directory:
    PagesManager.uses_pages_directory = False
    st.rerun()
