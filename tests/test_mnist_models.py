"""Each MNIST architecture builds with its known size and can fit a few hundred samples."""
from __future__ import annotations

import pytest

import core

core.import_tensorflow()
import keras
import numpy as np

from core.data.mnist import to_float
from core.models import mnist as models
from tests.fixtures.mnist import patterns

# Parameter counts: seed is the notebook's network (93,322 in the original notebook too).
EXPECTED_PARAMS = {"seed": 93_322, "fast": 75_010, "best": 346_026}
# Epochs to fit 300 generated samples: the augmented models need a few more.
FIT_EPOCHS = {"seed": 8, "fast": 12, "best": 12}


def test_registry_is_complete():
    assert set(models.ARCHS) == set(EXPECTED_PARAMS)
    with pytest.raises(KeyError, match="unknown MNIST architecture 'huge'"):
        models.build("huge")


@pytest.mark.parametrize("arch", list(EXPECTED_PARAMS))
def test_arch_builds_and_fits(arch):
    keras.utils.set_random_seed(0)
    model = models.build(arch)
    assert model.count_params() == EXPECTED_PARAMS[arch]
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)

    images, labels = patterns(300)
    x, y = to_float(images), np.eye(10, dtype=np.float32)[labels]
    rec = models.recipe(arch)
    epochs, batch = FIT_EPOCHS[arch], 32
    models.compile_model(model, rec, rec.lr, epochs * -(-len(x) // batch))
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0)

    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-4)  # softmax over ten digits
    # Plain cross-entropy (no smoothing), augmentation off at inference.
    loss = float(-np.log(probs[np.arange(len(labels)), labels]).mean())
    assert (probs.argmax(1) == labels).all()
    assert loss < 0.25, f"{arch} did not fit: loss {loss:.3f}"
