"""Computations behind the Theory page: every number it shows comes from here.

TensorFlow is imported inside the functions that need it, so importing this module is cheap.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import core
from core import config
from core.learn import calculator as memory
from core.learn.calculator import Layer

ARCH_JSON = config.PROJECT_ROOT / "assets" / "theory" / "architecture_params.json"


# The Theory page's questions, in order (the page and its tests read them here).
SECTIONS = [
    "1. Why CNNs beat dense nets on images",
    "2. Convolution: kernels, stride, padding",
    "3. Max pooling and small shifts",
    "4. Local response normalization",
    "5. Landmark architectures",
    "6. Fully convolutional networks",
    "7. Semantic segmentation",
]


def _tf():
    return core.import_tensorflow()


# --- 1. Dense against convolution ---------------------------------------------------------

def dense_vs_conv(h: int, w: int, c: int, filters: int, kernel: int) -> dict:
    """Parameters of a conv layer and of a dense layer with as many outputs (h*w*filters)."""
    conv = memory.analyze((h, w, c), [Layer("Conv2D", filters, kernel, 1, "same")])
    dense = memory.analyze((h, w, c), [Layer("Flatten"), Layer("Dense", h * w * filters)])
    return {"conv": conv.params, "dense": dense.params, "outputs": h * w * filters,
            "ratio": dense.params / conv.params}


# --- Sample images ------------------------------------------------------------------------

def synthetic_image(size: int = 64) -> np.ndarray:
    """A grey image with a square, a disc and a bar: edges in every direction."""
    y, x = np.mgrid[:size, :size] / size
    image = np.full((size, size), 0.2, np.float32)
    image[(x > 0.1) & (x < 0.45) & (y > 0.1) & (y < 0.45)] = 0.9
    image[(x - 0.7) ** 2 + (y - 0.65) ** 2 < 0.04] = 0.6
    image[(y > 0.75) & (y < 0.82) & (x > 0.05) & (x < 0.5)] = 1.0
    return image


def sample_digits(n: int = 8) -> np.ndarray:
    """``n`` MNIST validation digits (float32, 28x28 in [0, 1]); synthetic when MNIST is absent."""
    return digits_with_source(n)[0]


def digits_with_source(n: int = 8) -> tuple[np.ndarray, str | None]:
    """``n`` digits and why they are stand-ins: (MNIST digits, None) or (shapes, the sentence why).

    Only the local IDX files are read: a page never starts an 11 MB download by itself.
    """
    from core.data import mnist

    why = mnist.missing_files()
    if why is None:
        try:
            return mnist.load(limit=2000).x_val[:n, :, :, 0], None
        except mnist.MnistDataError as exc:
            why = f"MNIST cannot be read: {exc}"
    return np.stack([synthetic_image(28)] * n), why


def flower_image(size: int = 128) -> np.ndarray | None:
    """The first flower photo under the data root as RGB uint8, or None without data."""
    from PIL import Image

    folder = config.dataset_dir("flowers")
    files = sorted(folder.rglob("*.jpg")) if folder.is_dir() else []
    if not files:
        return None
    with Image.open(files[0]) as img:
        return np.asarray(img.convert("RGB").resize((size, size)))


# --- 2. Convolution -----------------------------------------------------------------------

KERNELS = {
    "Identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "Vertical edges (Sobel x)": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "Horizontal edges (Sobel y)": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "Outline (Laplacian)": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "Box blur": [[1 / 9] * 3] * 3,
    "Gaussian blur": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
    "Sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
}


def output_size(n: int, kernel: int, stride: int, padding: str) -> int:
    """Keras's rule: 'same' gives ceil(n/stride), 'valid' floor((n-kernel)/stride)+1."""
    return memory._spatial_out(n, kernel, stride, padding)


def convolve(image: np.ndarray, kernel, stride: int = 1, padding: str = "same") -> np.ndarray:
    """2-D cross-correlation of a grey image, as a Conv2D layer computes it."""
    tf = _tf()
    k = np.asarray(kernel, np.float32)
    if k.ndim != 2 or min(k.shape) < 1:
        raise ValueError("the kernel must be a non-empty 2-D grid of numbers")
    if padding == "valid" and (k.shape[0] > image.shape[0] or k.shape[1] > image.shape[1]):
        raise ValueError(f"a {k.shape[0]}x{k.shape[1]} kernel does not fit a "
                         f"{image.shape[0]}x{image.shape[1]} image without padding")
    x = tf.constant(image[None, :, :, None], tf.float32)
    out = tf.nn.conv2d(x, k[:, :, None, None], strides=stride, padding=padding.upper())
    return out.numpy()[0, :, :, 0]


# --- 3. Max pooling against a strided convolution ------------------------------------------

def shift(image: np.ndarray, dx: int, dy: int = 0) -> np.ndarray:
    """Move the image right by dx and down by dy pixels, filling with zeros."""
    out = np.zeros_like(image)
    h, w = image.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        image[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def max_pool(image: np.ndarray, size: int = 2) -> np.ndarray:
    tf = _tf()
    out = tf.nn.max_pool2d(image[None, :, :, None].astype(np.float32), size, size, "VALID")
    return out.numpy()[0, :, :, 0]


def pooled(image: np.ndarray, kernel) -> np.ndarray:
    """Conv (stride 1) + ReLU, then 2x2 max pooling with stride 2."""
    return max_pool(np.maximum(convolve(image, kernel, 1, "same"), 0), 2)


def strided(image: np.ndarray, kernel) -> np.ndarray:
    """Conv with stride 2 + ReLU: the same kernel, the same down-sampling, no pooling."""
    return np.maximum(convolve(image, kernel, 2, "same"), 0)


def shift_experiment(images: np.ndarray, kernel, shifts=(1, 2)) -> list[dict]:
    """Move each image right by a few pixels; how much do the down-sampled outputs change?

    Relative change = mean |f(shifted) - f(original)| / mean |f(original)|, averaged over images.
    """
    ops = {"conv + max pool (stride 2)": pooled, "conv with stride 2": strided}
    rows = []
    for name, op in ops.items():
        for dx in shifts:
            changes = []
            for image in images:
                base = op(image, kernel)
                moved = op(shift(image, dx), kernel)
                changes.append(np.abs(moved - base).mean() / max(np.abs(base).mean(), 1e-12))
            rows.append({"down-sampling": name, "shift (px)": dx,
                         "relative change": float(np.mean(changes))})
    return rows


# --- 4. Local response normalization ----------------------------------------------------

def lrn(maps: np.ndarray, depth_radius: int = 2, bias: float = 2.0, alpha: float = 1e-4,
        beta: float = 0.75) -> np.ndarray:
    """tf.nn.local_response_normalization over the channels of (H, W, C) maps."""
    tf = _tf()
    out = tf.nn.local_response_normalization(maps[None].astype(np.float32), depth_radius, bias,
                                             alpha, beta)
    return out.numpy()[0]


def lrn_formula(maps: np.ndarray, depth_radius: int, bias: float, alpha: float, beta: float):
    """b_i = a_i / (k + alpha * sum_{j=i-r..i+r} a_j^2)^beta, written out in numpy."""
    sq = np.square(maps.astype(np.float64))
    c = maps.shape[-1]
    sums = np.stack([sq[..., max(0, i - depth_radius):min(c, i + depth_radius + 1)].sum(-1)
                     for i in range(c)], axis=-1)
    return maps / (bias + alpha * sums) ** beta


LRN_WEIGHTS = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"


def lrn_weights_missing() -> str | None:
    """One sentence saying where the MobileNetV2 weights go; None when they are there."""
    folder = config.dataset_dir("imagenet")
    if (folder / LRN_WEIGHTS).is_file():
        return None
    return f"This section runs ImageNet-trained MobileNetV2: put {LRN_WEIGHTS} in {folder}"


def mobilenet_feature_maps(rgb: np.ndarray) -> tuple[np.ndarray, str]:
    """The first layer's feature maps (after ReLU6) of ImageNet-trained MobileNetV2 (alpha 0.35)."""
    _tf()
    import keras

    local = config.dataset_dir("imagenet") / LRN_WEIGHTS
    weights = str(local) if local.is_file() else "imagenet"
    base = keras.applications.MobileNetV2(input_shape=rgb.shape, alpha=0.35, include_top=False,
                                          weights=weights)
    head = keras.Model(base.input, base.get_layer("Conv1_relu").output)
    x = keras.applications.mobilenet_v2.preprocess_input(rgb[None].astype(np.float32))
    return head.predict(x, verbose=0)[0], weights if weights == "imagenet" else local.name


# --- 5. Architectures -------------------------------------------------------------------

ARCHITECTURES = [
    {"name": "AlexNet", "year": 2012, "top5": "15.3%", "keras": None,
     "idea": "Deep conv net on GPUs: ReLU, dropout, data augmentation, LRN"},
    {"name": "GoogLeNet", "year": 2014, "top5": "6.67%", "keras": "InceptionV3",
     "idea": "Inception modules: 1x1, 3x3, 5x5 and pooling branches in parallel, 1x1 bottlenecks"},
    {"name": "ResNet", "year": 2015, "top5": "3.57%", "keras": "ResNet152",
     "idea": "Residual (skip) connections let very deep nets train"},
    {"name": "Xception", "year": 2016, "top5": "5.5%", "keras": "Xception",
     "idea": "Depthwise separable convolutions throughout"},
    {"name": "SENet", "year": 2017, "top5": "2.25%", "keras": None,
     "idea": "Squeeze-and-excitation: recalibrate channels from global context"},
]
TOP5_NOTE = ("Top-5 error on ImageNet: ILSVRC test results of the winners (AlexNet, GoogLeNet, ResNet, "
             "SENet); Xception's single-model validation figure from its paper (it did not compete).")
# Models whose count bench/architecture_params.py caches (building them takes seconds each).
KERAS_MODELS = ("ResNet50", "ResNet152", "InceptionV3", "Xception", "MobileNetV2", "VGG16")


def alexnet_layers() -> tuple[tuple[int, ...], list[Layer]]:
    """AlexNet as one tower (no GPU split), 227x227 input."""
    pool = Layer("MaxPooling2D", 0, 3, 2, "valid")
    return (227, 227, 3), [
        Layer("Conv2D", 96, 11, 4, "valid"), pool, Layer("Conv2D", 256, 5, 1, "same"), pool,
        Layer("Conv2D", 384), Layer("Conv2D", 384), Layer("Conv2D", 256), pool,
        Layer("Flatten"), Layer("Dense", 4096), Layer("Dense", 4096), Layer("Dense", 1000)]


def se_block_params(channels: int, ratio: int = 16) -> int:
    """Squeeze-and-excitation: Dense(C/r) then Dense(C), both with biases."""
    squeeze = channels // ratio
    return channels * squeeze + squeeze + squeeze * channels + channels


RESNET50_BLOCKS = [(256, 3), (512, 4), (1024, 6), (2048, 3)]  # (output channels, blocks) per stage


def keras_params(name: str) -> int:
    """Parameter count of keras.applications.NAME built with random weights (slow: seconds)."""
    _tf()
    import keras

    return getattr(keras.applications, name)(weights=None).count_params()


def cached_params(path: Path = ARCH_JSON) -> dict:
    return json.loads(path.read_text())["params"]


def architecture_table(cached: dict | None = None) -> list[dict]:
    """One row per architecture, parameter counts from Keras (cached) or the calculator."""
    cached = cached or cached_params()
    alexnet = memory.analyze(*alexnet_layers()).params
    se = sum(se_block_params(c) * n for c, n in RESNET50_BLOCKS)
    rows = []
    for arch in ARCHITECTURES:
        if arch["name"] == "AlexNet":
            params, source = alexnet, "AlexNet, one tower (this app's calculator)"
        elif arch["name"] == "SENet":
            params = cached["ResNet50"] + se
            source = f"SE-ResNet-50: Keras ResNet50 + {se:,} SE-block params (r=16)"
        else:
            params, source = cached[arch["keras"]], f"{arch['keras']} (keras.applications)"
        rows.append({**{k: arch[k] for k in ("name", "year", "top5", "idea")},
                     "params": params, "counted model": source})
    return rows


DIAGRAMS = {
    "Inception module": """digraph { rankdir=TB; node [shape=box, style=rounded, fontsize=11];
      in [label="input"]; c1 [label="1x1 conv"]; r3 [label="1x1 conv"]; c3 [label="3x3 conv"];
      r5 [label="1x1 conv"]; c5 [label="5x5 conv"]; p [label="3x3 max pool"]; pp [label="1x1 conv"];
      cat [label="concatenate (depth)"];
      in -> c1 -> cat; in -> r3 -> c3 -> cat; in -> r5 -> c5 -> cat; in -> p -> pp -> cat; }""",
    "Residual block": """digraph { rankdir=TB; node [shape=box, style=rounded, fontsize=11];
      x [label="x"]; a [label="3x3 conv, BN, ReLU"]; b [label="3x3 conv, BN"];
      add [label="+", shape=circle]; out [label="ReLU"];
      x -> a -> b -> add -> out; x -> add [label="identity (skip)", style=dashed]; }""",
    "SE block": """digraph { rankdir=TB; node [shape=box, style=rounded, fontsize=11];
      x [label="feature maps H x W x C"]; gap [label="global average pool -> C"];
      d1 [label="Dense C/16, ReLU"]; d2 [label="Dense C, sigmoid"];
      mul [label="x  (scale each channel)", shape=ellipse];
      x -> gap -> d1 -> d2 -> mul; x -> mul [style=dashed]; }""",
    "Depthwise separable conv": """digraph { rankdir=LR; node [shape=box, style=rounded, fontsize=11];
      x [label="H x W x C"]; dw [label="depthwise 3x3\\n(one filter per channel)"];
      pw [label="pointwise 1x1\\n(mixes channels)"]; y [label="H x W x F"]; x -> dw -> pw -> y; }""",
}


# --- 6. Fully convolutional networks ------------------------------------------------------

def small_classifier(input_shape=(28, 28, 1), classes: int = 10, seed: int = 0):
    """A small CNN with a dense head (Flatten -> Dense -> Dense), the one FCN conversion needs."""
    _tf()
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input(input_shape),
        keras.layers.Conv2D(8, 3, activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(), keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(classes, activation="softmax"),
    ])


def train_digit_classifier(samples: int = 3000, epochs: int = 2, seed: int = 0):
    """The small classifier trained briefly on MNIST; returns (model, validation accuracy)."""
    from core.data import mnist

    data = mnist.load(limit=samples + samples // 9)
    model = small_classifier(seed=seed)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=64, verbose=0)
    return model, float(model.evaluate(data.x_val, data.y_val, verbose=0)[1])


def dense_to_conv(model):
    """The same network with its Flatten+Dense head turned into convolutions, same weights.

    The first Dense after Flatten becomes a conv whose kernel covers the whole feature map it
    used to flatten; later Dense layers become 1x1 convs. The result takes any image size.
    """
    _tf()
    import keras

    layers = [kl for kl in model.layers if type(kl).__name__ != "InputLayer"]
    kinds = [type(kl).__name__ for kl in layers]
    if "Flatten" not in kinds or any(k != "Dense" for k in kinds[kinds.index("Flatten") + 1:]):
        raise ValueError("the model must end with Flatten followed only by Dense layers")
    cut = kinds.index("Flatten")
    channels = model.inputs[0].shape[-1]
    x = inputs = keras.Input((None, None, channels))
    for kl in layers[:cut]:
        clone = type(kl).from_config(kl.get_config())
        x = clone(x)
        clone.set_weights(kl.get_weights())
    h, w, c = layers[cut].input.shape[1:]
    for i, dense in enumerate(layers[cut + 1:]):
        kernel, bias = dense.get_weights()
        size = (h, w) if i == 0 else (1, 1)
        conv = keras.layers.Conv2D(dense.units, size, activation=dense.get_config()["activation"])
        x = conv(x)
        conv.set_weights([kernel.reshape(*size, -1, dense.units), bias])
    return keras.Model(inputs, x)


def compare_dense_conv(model, conv_model, images: np.ndarray) -> float:
    """Largest absolute difference between the two models' outputs on the same images."""
    dense = model.predict(images, verbose=0)
    conv = conv_model.predict(images, verbose=0)[:, 0, 0, :]
    return float(np.abs(dense - conv).max())


def digit_strip(digits: np.ndarray, gap: int = 0) -> np.ndarray:
    """Digits side by side on one canvas, 28 pixels high."""
    parts = []
    for d in digits:
        parts += [d, np.zeros((28, gap), np.float32)]
    return np.concatenate(parts[:-1] if gap else parts[::2], axis=1)


# --- 7. Segmentation ----------------------------------------------------------------------

def coarse_mask(mask: np.ndarray, stride: int) -> np.ndarray:
    """What a net whose output has ``stride`` can give: average-pool the mask by ``stride``, upsample
    back bilinearly, threshold at 0.5."""
    tf = _tf()
    h, w = mask.shape
    x = mask[None, :, :, None].astype(np.float32)
    small = tf.nn.avg_pool2d(x, stride, stride, "SAME")
    up = tf.image.resize(small, (h, w), method="bilinear")
    return up.numpy()[0, :, :, 0] >= 0.5


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def receptive_field(dilations: list[int], kernel: int = 3) -> int:
    """Receptive field of stacked stride-1 convs: 1 + sum of (kernel-1) * dilation."""
    return 1 + sum((kernel - 1) * d for d in dilations)


def measured_receptive_field(dilations: list[int], kernel: int = 3) -> int:
    """The same, measured: push an impulse through all-ones dilated convs and count the
    width of the pixels it reaches."""
    tf = _tf()
    size = receptive_field(dilations, kernel) + 8
    x = np.zeros((1, size, size, 1), np.float32)
    x[0, size // 2, size // 2, 0] = 1
    y = tf.constant(x)
    ones = tf.ones((kernel, kernel, 1, 1))
    for d in dilations:
        y = tf.nn.conv2d(y, ones, 1, "SAME", dilations=d)
    reached = np.nonzero(y.numpy()[0, size // 2, :, 0])[0]
    return int(reached.max() - reached.min() + 1)


def upsample_factor_rows(mask: np.ndarray, strides=(1, 2, 4, 8, 16, 32)) -> list[dict]:
    return [{"output stride": s, "IoU with the true mask": iou(coarse_mask(mask, s), mask)}
            for s in strides if s <= min(mask.shape)]


def digit_mask(digit: np.ndarray, scale: int = 8) -> np.ndarray:
    """A 28x28 digit enlarged ``scale`` times and thresholded: a fine-grained object mask."""
    big = np.kron(digit, np.ones((scale, scale), np.float32))
    return big >= 0.5
