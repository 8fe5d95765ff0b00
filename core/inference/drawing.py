"""Read a canvas drawing: the one path the Draw page and ``python -m core.digit`` share.

Preprocess like MNIST, run the model, scale its probabilities by the card's temperature,
check that the drawing looks like a digit at all, and say what to tell the person.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core import fmt
from core.data.canvas import canvas_to_mnist, is_dot
from core.inference import digits, unsure
from core.inference.served import Served

EMPTY, DOT, UNKNOWN, DIGIT = "empty", "dot", "unknown", "digit"


@dataclass
class Reading:
    status: str  # EMPTY, DOT, UNKNOWN or DIGIT
    image: np.ndarray | None = None  # the 28x28 model input
    probabilities: np.ndarray | None = None  # calibrated, (10,)
    known: bool | None = None  # None: the model has no unknown check

    @property
    def digit(self) -> int | None:
        return None if self.probabilities is None else int(np.argmax(self.probabilities))

    @property
    def probability(self) -> float | None:
        return None if self.probabilities is None else float(np.max(self.probabilities))

    @property
    def runner_up(self) -> int | None:
        return None if self.probabilities is None else int(np.argsort(self.probabilities)[-2])

    @property
    def unsure(self) -> bool:
        return self.probability is not None and unsure(self.probability)


def read(served: Served, image: np.ndarray) -> Reading:
    """A canvas image (RGBA, RGB or grey; white ink on black; any size) read by ``served``."""
    x = canvas_to_mnist(image)
    if x is None:
        return Reading(EMPTY, known=False)
    if is_dot(image):
        return Reading(DOT, x, known=False)
    batch = digits.as_batch(x)
    raw = digits.probabilities(served.model, batch)
    probs = served.calibrate(raw)[0]
    known = served.known(batch, probs[None])
    known = None if known is None else bool(known[0])
    return Reading(UNKNOWN if known is False else DIGIT, x, probs, known)


@dataclass
class Advice:
    headline: str
    detail: str = ""
    kind: str = "info"  # "info" (a hint) or "result" (a confident answer)


def advise(reading: Reading, strokes: int | None = None) -> Advice:
    """What the page says about a reading; ``strokes`` is how many strokes the drawing has
    (None when unknown).

    A drawing of one stroke that the model is unsure of is probably unfinished (the first
    bar of a 4, the top of a 5): say so gently rather than guess; one unlike any digit is
    called that, with a hint that it may be unfinished. "Draw it larger" is for real dots.
    """
    unfinished = strokes == 1
    if reading.status == EMPTY:
        return Advice("Draw a digit on the black canvas",
                      "The prediction appears as soon as you lift the mouse.")
    if reading.status == DOT:
        return Advice("That looks like a dot, not a digit",
                      "Draw the digit larger (or pick a thinner stroke).")
    if reading.status == UNKNOWN:
        if unfinished:
            return Advice("That doesn't look like a digit", "Still drawing? Finish it and the answer "
                          "updates when you lift the mouse; otherwise try one digit, 0 to 9.")
        return Advice("That doesn't look like a digit",
                      f"It is unlike the digits the model learned from (its closest guess would be "
                      f"{reading.digit}). Try drawing one digit, 0 to 9.")
    if reading.unsure:
        if unfinished:
            return Advice("Still drawing?", f"Best guess so far: {reading.digit} at "
                          f"{fmt.pct(reading.probability, 0)}. Add the next stroke and it updates.")
        return Advice(f"Not sure — maybe {reading.digit} or {reading.runner_up}",
                      f"Top guess {reading.digit} at {fmt.pct(reading.probability, 0)}, "
                      f"then {reading.runner_up} "
                      f"at {fmt.pct(reading.probabilities[reading.runner_up], 0)}. Try a clearer shape.")
    return Advice(f"Prediction: {reading.digit}", f"with probability {fmt.pct(reading.probability, 1)}",
                  "result")
