"""CNN Studio's brain: data, models, training, jobs, prediction and the calculator.

Plain Python, never streamlit, so tests, the CLI and the pages share one API.
"""
import os

# TensorFlow prints C++ banners and oneDNN notes on import; the app and CLI want a
# quiet terminal. Set before anything imports TensorFlow; an explicit setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
