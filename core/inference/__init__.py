"""Inference: digits from the canvas, photos, their explanations (saliency, Grad-CAM), ensembles.

Never imports core.training: a trained model is a file and its card.
"""

UNSURE_BELOW = 0.6  # below this top probability a page says the model is not sure (Draw and Classify)


def unsure(probability: float) -> bool:
    """Whether a top probability is too low to state the label plainly."""
    return probability < UNSURE_BELOW
