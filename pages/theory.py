"""Theory: the chapter's questions, each with a live demonstration."""
import streamlit as st

st.title(":material/school: CNN theory")
