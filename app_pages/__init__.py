"""The app's pages, listed by app.py with st.navigation.

Not named pages/: that name turns on Streamlit's legacy auto-discovery.
"""
