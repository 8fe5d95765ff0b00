"""Streamlit-only helpers the pages share: sidebar, model picker, charts, the Train form and run views."""
