"""Transfer learning: an ImageNet backbone with a small classification head.

The model takes raw 0-255 RGB: each backbone's own ``preprocess_input`` is written
as built-in Keras layers inside the model. Photo augmentation is the model's first
layer too (``core.models.augment.RandomAffine``: flip, rotation, zoom, shift, contrast
in one batched resampling), so it runs on the training device on any Keras backend and
is the identity at inference. A saved ``.keras`` file reloads with
``keras.saving.load_model`` once ``core.models.augment`` is imported (no Lambda).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core import config


@dataclass(frozen=True)
class Backbone:
    title: str
    application: str  # name in keras.applications
    kwargs: dict = field(default_factory=dict)
    weights_file: str | None = None  # no-top weights file looked for under <data root>/imagenet/
    preprocess: str = "tf"  # "tf": x/127.5 - 1; "none": the backbone rescales by itself
    default_size: int = 224


def _mobilenet_v2(alpha: str) -> Backbone:
    return Backbone(f"MobileNetV2 (alpha {alpha})", "MobileNetV2", {"alpha": float(alpha)},
                    f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_224_no_top.h5")


BACKBONES: dict[str, Backbone] = {
    "mobilenet_v2_0.35": _mobilenet_v2("0.35"),
    "mobilenet_v2_0.5": _mobilenet_v2("0.5"),
    "mobilenet_v2_0.75": _mobilenet_v2("0.75"),
    "mobilenet_v2_1.0": _mobilenet_v2("1.0"),
    # These include their own rescaling layers, so they take 0-255 as they are.
    "mobilenet_v3_small": Backbone("MobileNetV3 Small", "MobileNetV3Small",
                                   {"include_preprocessing": True}, preprocess="none"),
    "mobilenet_v3_large": Backbone("MobileNetV3 Large", "MobileNetV3Large",
                                   {"include_preprocessing": True}, preprocess="none"),
    "efficientnet_b0": Backbone("EfficientNetB0", "EfficientNetB0", preprocess="none"),
    "efficientnet_v2_b0": Backbone("EfficientNetV2B0", "EfficientNetV2B0",
                                   {"include_preprocessing": True}, preprocess="none"),
    # Three random conv blocks, no pretrained weights: for tests and smoke runs only.
    "tiny_cnn": Backbone("Tiny CNN (no pretraining)", "tiny_cnn"),
}
BACKBONE_LAYER = "backbone"
# Training-time photo augmentation on 0-255 RGB: left-right flip, +-36 degrees, +-15% zoom,
# +-10% shift with mirrored borders, +-20% contrast (the settings of the earlier tf.data layers).
PHOTO_AUGMENTATION = {"flip": True, "rotation": 36.0, "zoom": 0.15, "shift": 0.1, "contrast": 0.2,
                      "fill_mode": "reflect", "value_range": (0.0, 255.0)}


def backbone_names() -> list[str]:
    return list(BACKBONES)


def weights_source(name: str) -> str | None:
    """The local weights file when present under the data root, else "imagenet" (download)."""
    spec = BACKBONES[name]
    if spec.application == "tiny_cnn":
        return None
    if spec.weights_file:
        local = config.data_root() / config.DATASETS["imagenet"] / spec.weights_file
        if local.is_file():
            return str(local)
    return "imagenet"


def build_backbone(name: str, image_size: int, weights: str | None = "auto"):
    """The backbone without its top; ``weights=None`` gives random weights (tests)."""
    import keras

    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    spec = BACKBONES[name]
    if weights == "auto":
        weights = weights_source(name)
    if spec.application == "tiny_cnn":
        return _tiny_cnn(image_size)
    factory = getattr(keras.applications, spec.application)
    model = factory(include_top=False, weights=weights, input_shape=(image_size, image_size, 3),
                    **spec.kwargs)
    model.name = BACKBONE_LAYER  # a fixed name lets fine-tuning and Grad-CAM find it
    return model


def _tiny_cnn(image_size: int):
    import keras

    inputs = keras.Input((image_size, image_size, 3))
    x = inputs
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    return keras.Model(inputs, x, name=BACKBONE_LAYER)


def preprocess_layers(name: str) -> list:
    import keras

    if BACKBONES[name].preprocess == "tf":  # mobilenet_v2.preprocess_input: [-1, 1]
        return [keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")]
    return []


def build_model(name: str, num_classes: int, image_size: int = 224, dropout: float = 0.2,
                weights: str | None = "auto", augment: bool = True):
    """Raw RGB in, class probabilities out: augment, preprocess, backbone, pooling, dropout, softmax."""
    import keras

    from core.models.augment import RandomAffine

    backbone = build_backbone(name, image_size, weights)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = RandomAffine(**PHOTO_AUGMENTATION, name="augment")(inputs) if augment else inputs
    for layer in preprocess_layers(name):
        x = layer(x)
    # training=False keeps batch-norm in inference mode even when layers are unfrozen,
    # so fine-tuning on a small set does not wreck the ImageNet statistics.
    x = backbone(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    # float32 output keeps softmax stable under a mixed_float16 policy.
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="classes")(x)
    return keras.Model(inputs, outputs, name=f"transfer_{name}")


def get_backbone(model):
    return model.get_layer(BACKBONE_LAYER)


def set_trainable(model, fine_tune_layers: int) -> int:
    """Freeze the backbone except its top ``fine_tune_layers`` layers; return how many train.

    Batch-norm layers stay frozen: their statistics are ImageNet's.
    """
    backbone = get_backbone(model)
    backbone.trainable = fine_tune_layers > 0
    count = 0
    if fine_tune_layers > 0:
        cut = max(0, len(backbone.layers) - fine_tune_layers)
        for index, layer in enumerate(backbone.layers):
            is_bn = layer.__class__.__name__ == "BatchNormalization"
            layer.trainable = index >= cut and not is_bn
            count += int(layer.trainable and bool(layer.weights))
    return count


def calibrate_batchnorm(model, images) -> None:
    """For random-weight backbones: set batch-norm statistics from a batch of real images.

    Freshly initialised statistics (mean 0, variance 1) in inference mode let the signal
    fade to ~1e-11 through MobileNetV2's 50-odd layers, leaving nothing to learn from.
    One training-mode pass with momentum 0 makes the stored statistics the batch's own.
    """
    import keras

    backbone = get_backbone(model)
    norms = [layer for layer in backbone._flatten_layers()
             if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    x = images
    for layer in model.layers:
        if layer.name == "preprocess":
            x = layer(x)
    try:
        for layer in norms:
            layer.momentum = 0.0
        backbone(x, training=True)
    finally:
        for layer, momentum in zip(norms, momenta, strict=True):
            layer.momentum = momentum
