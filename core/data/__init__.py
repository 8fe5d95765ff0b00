"""Data loading: MNIST IDX files (mnist.py) and image folders (folders.py)."""
