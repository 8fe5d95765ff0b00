"""Training: typed settings, one runner, the two tasks (MNIST, transfer), devices, the monitor.

``python -m core.train`` is its command line; ``core.jobs`` starts that as a process.
"""
from core.errors import StudioError


class TrainingError(StudioError):
    """Bad settings or data for a run: reported as one clear line, exit code 2."""
