"""Memory and compute of a plain stack of CNN layers, exactly as Keras builds it.

Definitions (stated on the Calculator page too):
- activations: every layer's output, elements = product of its output shape; the input
  counts as activation 0.
- inference peak = largest sum of two consecutive activations (a layer's input and output
  live together) x batch + all parameters.
- training = (input + every layer's output) x batch + parameters + gradients (one per
  trainable parameter) + optimizer state (SGD 0, momentum 1, Adam 2 copies of the
  trainable parameters).
- dtypes: float32 4 bytes everywhere; float16/bfloat16 2 bytes everywhere; mixed precision
  (Keras "mixed_float16"): input and activations 2 bytes, parameters, gradients and
  optimizer state 4 bytes (float32 master weights).
- multiply-adds: conv and dense products only (bias, pooling, batch norm count 0).
- MB = 10^6 bytes.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

KINDS = (
    "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D", "AveragePooling2D",
    "BatchNormalization", "Dense", "Flatten", "GlobalAveragePooling2D", "ReLU", "Activation",
    "Dropout",
)
SPATIAL = {"Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D", "AveragePooling2D"}
DTYPES = ("float32", "float16", "bfloat16", "mixed")
OPTIMIZER_COPIES = {"sgd": 0, "momentum": 1, "adam": 2}
MB = 10**6


@dataclass
class Layer:
    """One row of the layer table. ``filters`` is the unit count for Dense; ``kernel`` is the
    pool size for pooling layers; fields a kind does not use are ignored."""

    kind: str
    filters: int = 0
    kernel: int = 3
    stride: int = 1
    padding: str = "same"
    bias: bool = True
    depth_multiplier: int = 1


@dataclass
class LayerResult:
    index: int
    kind: str
    output_shape: tuple[int, ...]
    params: int
    trainable: int
    activations: int
    macs: int

    @property
    def non_trainable(self) -> int:
        return self.params - self.trainable


@dataclass
class Report:
    input_shape: tuple[int, ...]
    layers: list[LayerResult]
    dtype: str = "float32"
    batch: int = 1
    optimizer: str = "sgd"
    totals: dict = field(default_factory=dict)

    @property
    def params(self) -> int:
        return sum(r.params for r in self.layers)

    @property
    def trainable(self) -> int:
        return sum(r.trainable for r in self.layers)

    def rows(self) -> list[dict]:
        """One dict per layer (input first) for a results table."""
        act = activation_bytes(self.dtype)
        rows = [{"layer": "Input", "output shape": _fmt(self.input_shape), "params": 0,
                 "activations": math.prod(self.input_shape),
                 "activation MB": math.prod(self.input_shape) * act / MB, "MACs": 0}]
        for r in self.layers:
            rows.append({"layer": f"{r.index}. {r.kind}", "output shape": _fmt(r.output_shape),
                         "params": r.params, "activations": r.activations,
                         "activation MB": r.activations * act / MB, "MACs": r.macs})
        return rows


def _fmt(shape) -> str:
    return "x".join(str(d) for d in shape)


def activation_bytes(dtype: str) -> int:
    return 4 if dtype == "float32" else 2


def parameter_bytes(dtype: str) -> int:
    return 2 if dtype in ("float16", "bfloat16") else 4


def _spatial_out(n: int, k: int, s: int, padding: str) -> int:
    # Keras/TensorFlow: "same" gives ceil(n/s); "valid" floor((n-k)/s)+1.
    return -(-n // s) if padding == "same" else (n - k) // s + 1


def _check(layer: Layer, i: int) -> None:
    where = f"Layer {i} ({layer.kind})"
    if layer.kind not in KINDS:
        raise ValueError(f"Layer {i}: unknown type {layer.kind!r}; choose one of {', '.join(KINDS)}")
    if layer.kind in ("Conv2D", "SeparableConv2D", "Dense") and layer.filters < 1:
        raise ValueError(f"{where}: filters/units must be at least 1, got {layer.filters}")
    if layer.kind in SPATIAL:
        if layer.kernel < 1 or layer.stride < 1:
            raise ValueError(f"{where}: kernel and stride must be at least 1")
        if layer.padding not in ("same", "valid"):
            raise ValueError(f"{where}: padding must be 'same' or 'valid', got {layer.padding!r}")
    if layer.kind in ("DepthwiseConv2D", "SeparableConv2D") and layer.depth_multiplier < 1:
        raise ValueError(f"{where}: depth multiplier must be at least 1")


def layer_result(layer: Layer, shape: tuple[int, ...], i: int) -> LayerResult:
    """Output shape, parameters and multiply-adds of one layer on an input ``shape``."""
    _check(layer, i)
    kind, k, s, b = layer.kind, layer.kernel, layer.stride, int(layer.bias)
    if kind in SPATIAL or kind == "GlobalAveragePooling2D":
        if len(shape) != 3:
            raise ValueError(f"Layer {i} ({kind}) needs an image-shaped input (H x W x C), "
                             f"got {_fmt(shape)}: put it before Flatten/GlobalAveragePooling2D")
    params = trainable = macs = 0
    if kind in SPATIAL:
        h, w, c = shape
        oh, ow = _spatial_out(h, k, s, layer.padding), _spatial_out(w, k, s, layer.padding)
        if oh < 1 or ow < 1:
            raise ValueError(f"Layer {i} ({kind}): kernel {k} does not fit the {h}x{w} input "
                             "with 'valid' padding; use 'same' or a smaller kernel")
        m = layer.depth_multiplier
        if kind == "Conv2D":
            out_c = layer.filters
            params = k * k * c * out_c + out_c * b
            macs = oh * ow * out_c * k * k * c
        elif kind == "DepthwiseConv2D":
            out_c = c * m
            params = k * k * c * m + out_c * b
            macs = oh * ow * out_c * k * k
        elif kind == "SeparableConv2D":
            out_c = layer.filters
            params = k * k * c * m + c * m * out_c + out_c * b
            macs = oh * ow * c * m * (k * k + out_c)
        else:  # pooling
            out_c = c
        out = (oh, ow, out_c)
        trainable = params
    elif kind == "BatchNormalization":
        out = shape
        params, trainable = 4 * shape[-1], 2 * shape[-1]  # gamma, beta | moving mean, variance
    elif kind == "Dense":
        out = shape[:-1] + (layer.filters,)
        params = trainable = shape[-1] * layer.filters + layer.filters * b
        macs = math.prod(shape) * layer.filters
    elif kind == "Flatten":
        out = (math.prod(shape),)
    elif kind == "GlobalAveragePooling2D":
        out = (shape[-1],)
    else:  # ReLU, Activation, Dropout: same shape, nothing to learn
        out = shape
    return LayerResult(i, kind, tuple(out), params, trainable, math.prod(out), macs)


def analyze(input_shape, layers: list[Layer], dtype: str = "float32", batch: int = 1,
            optimizer: str = "sgd") -> Report:
    """Per-layer results and memory totals for ``layers`` on ``input_shape`` (H, W, C)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if optimizer not in OPTIMIZER_COPIES:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_COPIES)}, got {optimizer!r}")
    if batch < 1:
        raise ValueError(f"batch size must be at least 1, got {batch}")
    input_shape = tuple(int(d) for d in input_shape)
    if not input_shape or any(d < 1 for d in input_shape):
        raise ValueError(f"input shape must be positive, got {input_shape}")
    results, shape = [], input_shape
    for i, layer in enumerate(layers, start=1):
        result = layer_result(layer, shape, i)
        results.append(result)
        shape = result.output_shape
    report = Report(input_shape, results, dtype, batch, optimizer)
    report.totals = totals(report)
    return report


def totals(report: Report) -> dict:
    """Memory totals in bytes (see the module docstring for the definitions)."""
    act, par = activation_bytes(report.dtype), parameter_bytes(report.dtype)
    sizes = [math.prod(report.input_shape)] + [r.activations for r in report.layers]
    pairs = [a + b for a, b in zip(sizes, sizes[1:], strict=False)] or sizes
    params = report.params * par
    grads = report.trainable * par
    optimizer = OPTIMIZER_COPIES[report.optimizer] * report.trainable * par
    activations = sum(sizes) * act * report.batch
    return {
        "params": report.params,
        "trainable": report.trainable,
        "macs": sum(r.macs for r in report.layers),
        "activations_per_image": sum(sizes) - sizes[0],
        "input_bytes": sizes[0] * act,
        "parameter_bytes": params,
        "peak_pair_elements": max(pairs),
        "inference_bytes_one": max(pairs) * act + params,
        "inference_bytes_batch": max(pairs) * act * report.batch + params,
        "training_activation_bytes": activations,  # inputs included
        "gradient_bytes": grads,
        "optimizer_bytes": optimizer,
        "training_bytes": activations + params + grads + optimizer,
    }


# --- Keras in and out -------------------------------------------------------------------

def _keras_layer(layer: Layer):
    import keras

    k, s, p, b, m = layer.kernel, layer.stride, layer.padding, layer.bias, layer.depth_multiplier
    kind, kl = layer.kind, keras.layers
    if kind == "Conv2D":
        return kl.Conv2D(layer.filters, k, s, p, use_bias=b)
    if kind == "DepthwiseConv2D":
        return kl.DepthwiseConv2D(k, s, p, depth_multiplier=m, use_bias=b)
    if kind == "SeparableConv2D":
        return kl.SeparableConv2D(layer.filters, k, s, p, depth_multiplier=m, use_bias=b)
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return getattr(kl, kind)(k, s, p)
    if kind == "Dense":
        return kl.Dense(layer.filters, use_bias=b)
    if kind == "Activation":
        return kl.Activation("relu")
    if kind == "Dropout":
        return kl.Dropout(0.5)
    return getattr(kl, kind)()  # BatchNormalization, Flatten, GlobalAveragePooling2D, ReLU


def to_keras(input_shape, layers: list[Layer]):
    """The same stack as a keras.Sequential model (weights random, nothing trained)."""
    import keras

    for i, layer in enumerate(layers, start=1):
        _check(layer, i)
    return keras.Sequential([keras.Input(tuple(input_shape))] + [_keras_layer(x) for x in layers])


def _square(value, what: str, name: str) -> int:
    value = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if value[0] != value[1]:
        raise ValueError(f"Layer {name!r}: only square {what} are supported, got {value}")
    return int(value[0])


def from_keras(model) -> tuple[tuple[int, ...], list[Layer]]:
    """Input shape and layer list of a built plain-stack Keras model.

    Raises ValueError naming the first layer the calculator cannot model (e.g. Add,
    Concatenate, dilated convolutions).
    """
    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"The model's input shape {shape} is not fixed; build it with a size")
    layers = []
    for kl in model.layers:
        kind, cfg = type(kl).__name__, kl.get_config()
        if kind == "InputLayer":
            continue
        if kind not in KINDS:
            raise ValueError(f"Layer {kl.name!r} ({kind}) is not supported by the calculator; "
                             f"it handles {', '.join(KINDS)}")
        if kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D"):
            if _square(cfg.get("dilation_rate", 1), "dilations", kl.name) != 1:
                raise ValueError(f"Layer {kl.name!r}: dilated convolutions are not supported")
            if kind == "Conv2D" and cfg.get("groups", 1) != 1:
                raise ValueError(f"Layer {kl.name!r}: grouped convolutions are not supported")
        row = Layer(kind)
        if kind in SPATIAL:
            size = cfg.get("kernel_size", cfg.get("pool_size"))
            row.kernel = _square(size, "kernels", kl.name)
            row.stride = _square(cfg.get("strides") or size, "strides", kl.name)
            row.padding = cfg["padding"]
        if kind in ("Conv2D", "SeparableConv2D"):
            row.filters = cfg["filters"]
        if kind == "Dense":
            row.filters = cfg["units"]
        if "use_bias" in cfg:
            row.bias = bool(cfg["use_bias"])
        if "depth_multiplier" in cfg:
            row.depth_multiplier = cfg["depth_multiplier"]
        if kind == "BatchNormalization" and not (cfg.get("center", True) and cfg.get("scale", True)):
            raise ValueError(f"Layer {kl.name!r}: batch norm without center/scale is not supported")
        layers.append(row)
    return shape, layers


# --- Table <-> layers -------------------------------------------------------------------

COLUMNS = ("kind", "filters", "kernel", "stride", "padding", "bias", "depth_multiplier")


def to_rows(layers: list[Layer]) -> list[dict]:
    return [asdict(layer) for layer in layers]


NUMBER_COLUMNS = ("filters", "kernel", "stride", "depth_multiplier")


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def from_rows(rows: list[dict]) -> list[Layer]:
    """Layers from edited table rows; empty rows are skipped, bad cells named."""
    layers = []
    for n, row in enumerate(rows, start=1):
        kind = row.get("kind")
        if _blank(kind) or str(kind).strip() == "":
            typed = [name for name in NUMBER_COLUMNS if not _blank(row.get(name))]
            if typed:  # a number typed into a new row: never drop it silently
                raise ValueError(f"Row {n} has a {typed[0]} but no layer type: choose one in its "
                                 "first column")
            continue
        values = {}
        for name in NUMBER_COLUMNS:
            value = row.get(name)
            default = getattr(Layer(kind), name)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                value = default
            try:
                values[name] = int(value)
            except (TypeError, ValueError):
                raise ValueError(f"Row {n}: {name} must be a whole number, got {value!r}") from None
            if float(value) != values[name]:
                raise ValueError(f"Row {n}: {name} must be a whole number, got {value!r}")
        padding = row.get("padding") or "same"
        bias = row.get("bias")
        bias = True if bias is None or (isinstance(bias, float) and math.isnan(bias)) else bool(bias)
        layers.append(Layer(str(kind).strip(), padding=str(padding), bias=bias, **values))
    return layers


# --- Presets ----------------------------------------------------------------------------

def _conv(f, k=3, s=1, p="same", b=True):
    return Layer("Conv2D", f, k, s, p, b)


def _pool(k=2, s=2, kind="MaxPooling2D"):
    return Layer(kind, 0, k, s, "valid")


def _mobilenet_v2_start() -> list[Layer]:
    # Keras MobileNetV2 (alpha 1.0) up to block 3, residual additions left out (no params).
    def bn_relu():
        return [Layer("BatchNormalization"), Layer("ReLU")]

    stack = [_conv(32, 3, 2, "same", False), *bn_relu(),
             Layer("DepthwiseConv2D", 0, 3, 1, "same", False), *bn_relu(),
             _conv(16, 1, 1, "same", False), Layer("BatchNormalization")]
    for stride in (2, 1):  # blocks 1 and 2: expand 6x to 96, project to 24
        stack += [_conv(96 if stride == 2 else 144, 1, 1, "same", False), *bn_relu(),
                  Layer("DepthwiseConv2D", 0, 3, stride, "same", False), *bn_relu(),
                  _conv(24, 1, 1, "same", False), Layer("BatchNormalization")]
    return stack


def _vgg16_like() -> list[Layer]:
    stack = []
    for filters, repeat in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        stack += [_conv(filters) for _ in range(repeat)] + [_pool()]
    return stack + [Layer("Flatten"), Layer("Dense", 4096), Layer("Dense", 4096), Layer("Dense", 1000)]


PRESETS = {
    "Exercise: 3 conv layers on 200x300 RGB": (
        (200, 300, 3), [_conv(100, 3, 2), _conv(200, 3, 2), _conv(400, 3, 2)]),
    "MNIST CNN (notebook style)": (
        (28, 28, 1), [_conv(32), _pool(), _conv(64), _pool(), Layer("Flatten"),
                      Layer("Dense", 128), Layer("Dropout"), Layer("Dense", 10)]),
    "VGG-16-like (224x224)": ((224, 224, 3), _vgg16_like()),
    "MobileNetV2 first blocks": ((224, 224, 3), _mobilenet_v2_start()),
}


def preset(name: str) -> tuple[tuple[int, ...], list[Layer]]:
    shape, layers = PRESETS[name]
    return shape, [replace(layer) for layer in layers]


def book_answer(layers: list[Layer]) -> dict:
    """The book's shortcut: k*k weights per filter, no input channels, no biases, float32
    parameters only (no activations). For the exercise: 9 x (100+200+400) = 6,300."""
    weights = sum(layer.kernel**2 * layer.filters for layer in layers if layer.kind == "Conv2D")
    return {"params": weights, "bytes": weights * 4}


# --- Out-of-memory remedies -------------------------------------------------------------

def _narrower(layers: list[Layer], factor: float) -> list[Layer]:
    # A final Dense layer keeps its width: it is the number of classes.
    last = len(layers) - 1 if layers and layers[-1].kind == "Dense" else len(layers)
    return [replace(x, filters=max(1, round(x.filters * factor)))
            if x.filters and i < last else replace(x) for i, x in enumerate(layers)]


OPTIMIZER_NAMES = {"sgd": "SGD", "momentum": "SGD with momentum", "adam": "Adam"}


def remedies(input_shape, layers: list[Layer], dtype="float32", batch=1, optimizer="sgd",
             accumulation: int = 4) -> list[dict]:
    """Each out-of-memory remedy applied to this model, with its training memory in bytes."""
    base = analyze(input_shape, layers, dtype, batch, optimizer).totals["training_bytes"]
    h, w, *rest = input_shape
    options = [
        ("Halve the batch size", f"batch {batch} -> {max(1, batch // 2)}; noisier gradients",
         lambda: analyze(input_shape, layers, dtype, max(1, batch // 2), optimizer)),
        ("Mixed precision", "activations in float16, weights and optimizer in float32",
         lambda: analyze(input_shape, layers, "mixed" if dtype == "float32" else dtype, batch, optimizer)),
        (f"Gradient accumulation x{accumulation}",
         f"{accumulation} micro-batches of {max(1, batch // accumulation)}, same effective batch; "
         "one extra copy of the gradients", None),
        ("Narrower layers (half the filters)", "every conv/dense layer (not the class layer) at half width",
         lambda: analyze(input_shape, _narrower(layers, 0.5), dtype, batch, optimizer)),
        ("Smaller images (half height and width)", f"{h}x{w} -> {max(1, h // 2)}x{max(1, w // 2)}",
         lambda: analyze((max(1, h // 2), max(1, w // 2), *rest), layers, dtype, batch, optimizer)),
        (f"SGD instead of {OPTIMIZER_NAMES.get(optimizer, optimizer)}",
         "no optimizer state (momentum keeps one copy, Adam two)",
         lambda: analyze(input_shape, layers, dtype, batch, "sgd")),
    ]
    found = []
    for name, how, compute in options:
        try:
            if compute is None:  # accumulation: micro-batch memory + one gradient accumulator
                micro = analyze(input_shape, layers, dtype, max(1, batch // accumulation), optimizer).totals
                value = micro["training_bytes"] + micro["gradient_bytes"]
            else:
                value = compute().totals["training_bytes"]
        except ValueError as exc:
            found.append({"remedy": name, "how": f"not possible here: {exc}", "training_bytes": None,
                          "saving": None})
            continue
        if base - value > 0:  # a remedy that saves nothing here (SGD when SGD is chosen) is no remedy
            found.append({"remedy": name, "how": how, "training_bytes": value, "saving": base - value})
    return found


FIT_MARGIN = 0.85  # of a device's memory a run may plan to use; the rest is framework workspace


def fits(total_bytes: float, device_bytes: float | None, margin: float = FIT_MARGIN) -> bool | None:
    """Whether a run fits a device with some room left for the framework (None: size unknown)."""
    if not device_bytes:
        return None
    return total_bytes <= margin * device_bytes


def max_batch(report: Report, memory_bytes: float, margin: float = FIT_MARGIN) -> int:
    """Largest batch whose training memory fits ``memory_bytes`` by the same rule as ``fits`` (0: none)."""
    t = report.totals
    fixed = t["parameter_bytes"] + t["gradient_bytes"] + t["optimizer_bytes"]
    per_image = t["training_activation_bytes"] // report.batch
    return max(0, int((margin * memory_bytes - fixed) // per_image))
