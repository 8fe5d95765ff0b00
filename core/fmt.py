"""How numbers read everywhere in the app: one owner for percentages, counts, durations, sizes.

Tables, cards and run views all call these, so 0.955 never shows as "0.955" on one page and
"95.5%" on another. A missing value is an en dash, never "None" or "nan".
"""
from __future__ import annotations

import math

MISSING = "–"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def pct(value: float | None, digits: int = 2) -> str:
    """A fraction as a percentage: 0.9958 -> '99.58%'."""
    return MISSING if _missing(value) else f"{value * 100:.{digits}f}%"


def count(value: int | float | None) -> str:
    """A whole number with thousands separators: 93322 -> '93,322'."""
    return MISSING if _missing(value) else f"{round(value):,}"


def duration(seconds: float | None) -> str:
    """Seconds as a person reads them: '9 s', '2 min 05 s', '1 h 03 min'."""
    if _missing(seconds):
        return MISSING
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def size(num_bytes: int | None) -> str:
    """Bytes in the largest unit that keeps a number above 1: '368 kB', '8.4 MB'."""
    if _missing(num_bytes):
        return MISSING
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}" if num_bytes < 10 * scale else \
                f"{num_bytes / scale:.0f} {unit}"
    return f"{num_bytes} B"


def number(value: float | None, digits: int = 3) -> str:
    """A measured quantity that is not a fraction (a loss, a learning rate): 3 significant digits."""
    return MISSING if _missing(value) else f"{value:.{digits}g}"
