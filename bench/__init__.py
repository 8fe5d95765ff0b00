"""Scripts that measure accuracy and speed and print the figures the README quotes: `python -m bench.X`."""
