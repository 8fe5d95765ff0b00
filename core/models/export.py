"""Take a model home: the ``.keras`` file with its card, a SavedModel, TensorFlow Lite, ONNX.

``python -m core.export RUN_OR_MODEL --format keras|savedmodel|tflite|onnx|all --out FOLDER``

RUN_OR_MODEL is a run folder (``runs/fast1``), a shipped model's name (``mnist_fast``) or
a ``.keras`` file with its card beside it. The folder written holds, per format::

    keras       model.keras + card.json
    savedmodel  saved_model/             (signature "serving_default": image -> probabilities)
    tflite      model_float32.tflite and model_int8.tflite (dynamic-range quantized weights)
    onnx        model.onnx               (converted by tf2onnx, input "image")

and, whatever the format, ``labels.txt`` (one class a line, in output order),
``preprocessing.json`` (what the input must be) and ``README.md``.

Every non-Keras format is traced from ``model(x, training=False)``, so augmentation layers
are skipped and batch-norm uses its stored statistics, as in the app. Keras 3's own
``model.export`` traces the training branches too, which neither converter accepts.
The folder is built beside ``--out`` and renamed into place, so a failed export leaves nothing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import config
from core.errors import StudioError
from core.io import atomic_write_json, atomic_write_text
from core.models.cards import RUN_CARD, SHIPPED_SUFFIX, CardError, read_card

FORMATS = ("keras", "savedmodel", "tflite", "onnx")
SIGNATURE = "serving_default"
INPUT_NAME = "image"
ONNX_OPSET = 17
FILES = {  # format -> what it writes, relative to the export folder
    "keras": ("model.keras", "card.json"),
    "savedmodel": ("saved_model",),
    "tflite": ("model_float32.tflite", "model_int8.tflite"),
    "onnx": ("model.onnx",),
}


class ExportError(StudioError):
    """A model that cannot be found or exported, said in one sentence."""


@dataclass(frozen=True)
class Source:
    """One model to export: its file and the card that says what it is."""

    name: str
    model_path: Path
    card: dict

    @property
    def labels(self) -> list[str]:
        return [str(label) for label in self.card["classes"]]


def _from_card(card_path: Path) -> Source:
    try:
        card = read_card(card_path)
    except CardError as exc:
        raise ExportError(str(exc)) from None
    if not card.get("classes"):
        raise ExportError(f"{card_path.name} lists no class names, which every export writes down")
    model_path = card_path.parent / card["model_file"]
    if not model_path.is_file():
        raise ExportError(f"model file {model_path.name} is missing next to {card_path.name}")
    return Source(card["name"], model_path, card)


def resolve(what: str | Path) -> Source:
    """A run folder, a ``.keras`` file with its card beside it, or a shipped model's name."""
    path = Path(what).expanduser()
    if path.is_dir():
        if not (path / RUN_CARD).is_file():
            raise ExportError(f"{path} holds no {RUN_CARD}: is it a finished run folder?")
        return _from_card(path / RUN_CARD)
    if path.suffix == ".keras":
        if not path.is_file():
            raise ExportError(f"no such model file: {path}")
        for card_path in (path.with_name(path.stem + SHIPPED_SUFFIX), path.with_name(RUN_CARD)):
            if card_path.is_file():
                source = _from_card(card_path)
                if source.model_path.resolve() == path.resolve():
                    return source
        raise ExportError(f"no card beside {path.name} ({path.stem}{SHIPPED_SUFFIX} or {RUN_CARD}) "
                          "to give its class names and input")
    shipped = config.models_dir() / f"{what}{SHIPPED_SUFFIX}"
    if shipped.is_file():
        return _from_card(shipped)
    names = sorted(p.name[: -len(SHIPPED_SUFFIX)] for p in config.models_dir().glob(f"*{SHIPPED_SUFFIX}"))
    raise ExportError(f"{what!r} is not a run folder, a .keras file or a shipped model "
                      f"(shipped: {', '.join(names) or 'none'})")


def preprocessing(card: dict) -> dict:
    """What a caller must feed the model, from its card (one owner: the card)."""
    shape = [int(side) for side in card.get("input_shape", [])]
    low, high = card.get("input_range", [0.0, 1.0])
    channels = shape[-1] if shape else None
    return {
        "input_name": INPUT_NAME,
        "input_shape": [None, *shape],
        "layout": "NHWC (batch, height, width, channels)",
        "dtype": "float32",
        "color": {1: "grayscale", 3: "RGB"}.get(channels, f"{channels} channels"),
        "value_range": [low, high],
        "resize_to": shape[:2],
        "note": card.get("input_note", ""),
        "output": "probabilities (softmax), one per line of labels.txt, in that order",
    }


def _readme(source: Source, formats: list[str]) -> str:
    pre = preprocessing(source.card)
    h, w = pre["resize_to"]
    lines = [
        f"# {source.card.get('title', source.name)}", "",
        f"Exported by CNN Studio from `{source.name}`.", "",
        f"Input: `{INPUT_NAME}`, float32, shape (N, {h}, {w}, {pre['input_shape'][-1]}), "
        f"{pre['color']}, values from {pre['value_range'][0]} to {pre['value_range'][1]}"
        + (f" ({pre['note']})." if pre["note"] else "."),
        "Output: one probability per class, in the order of `labels.txt`.", "", "Files:",
    ]
    notes = {
        "keras": "`model.keras` + `card.json`: `keras.saving.load_model('model.keras')`",
        "savedmodel": "`saved_model/`: `tf.saved_model.load('saved_model').signatures['serving_default']"
                      "(image=x)`",
        "tflite": "`model_float32.tflite` (same numbers as Keras) and `model_int8.tflite` "
                  "(weights quantized to 8 bits, about 4x smaller): `ai_edge_litert.interpreter.Interpreter`",
        "onnx": "`model.onnx`: `onnxruntime.InferenceSession('model.onnx').run(None, {'image': x})`",
    }
    lines += [f"- {notes[fmt]}" for fmt in formats]
    lines += ["- `labels.txt`: class names, one a line", "- `preprocessing.json`: the input, as data", ""]
    return "\n".join(lines)


def _serving_function(model):
    import tensorflow as tf

    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name=INPUT_NAME)
    return tf.function(lambda image: model(image, training=False), input_signature=[spec])


def _write_savedmodel(model, fn, folder: Path) -> None:
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name=SIGNATURE, fn=fn)
    archive.write_out(str(folder), verbose=False)


def _write_tflite(saved_model: Path, folder: Path) -> None:
    import tensorflow as tf

    variants = (("model_float32.tflite", []), ("model_int8.tflite", [tf.lite.Optimize.DEFAULT]))
    for name, optimizations in variants:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
        converter.optimizations = optimizations  # DEFAULT without data: dynamic-range int8 weights
        (folder / name).write_bytes(converter.convert())


def _write_onnx(fn, folder: Path) -> None:
    import logging

    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=fn.input_signature, opset=ONNX_OPSET)
    _resize_by_size(proto)
    (folder / "model.onnx").write_bytes(proto.SerializeToString())


def _resize_by_size(proto) -> None:
    """Give each Resize its output size instead of a float scale.

    tf2onnx writes 30/28 as the float32 1.0714285, and 28 * 1.0714285 floors to 29, so
    onnxruntime's shape check rejects a graph that concatenates the resized image with the
    original (the ensemble's zoom views). The size, computed from the known input shape, is exact.
    """
    import onnx
    from onnx import numpy_helper

    inferred = onnx.shape_inference.infer_shapes(proto).graph
    shapes = {info.name: [d.dim_value for d in info.type.tensor_type.shape.dim]
              for info in [*inferred.value_info, *proto.graph.input]}
    constants = {init.name: init for init in proto.graph.initializer}
    nodes = []
    for node in proto.graph.node:
        shape = shapes.get(node.input[0]) if node.input else None
        if (node.op_type == "Resize" and len(node.input) == 3 and node.input[2] in constants
                and shape and all(shape[1:])):
            scales = numpy_helper.to_array(constants[node.input[2]])
            sizes = [round(side * scale) for side, scale in zip(shape[1:], scales[1:], strict=True)]
            name = f"{node.name}_sizes"
            proto.graph.initializer.append(numpy_helper.from_array(np.array(sizes, np.int64), f"{name}_hwc"))
            nodes += [  # the batch size is dynamic: take it from the input at run time
                onnx.helper.make_node("Shape", [node.input[0]], [f"{name}_n"], start=0, end=1),
                onnx.helper.make_node("Concat", [f"{name}_n", f"{name}_hwc"], [name], axis=0),
            ]
            node.input[2] = ""
            node.input.append(name)
        nodes.append(node)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    kept = [init for init in proto.graph.initializer if init.name in used]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(kept)
    onnx.checker.check_model(proto)


def export(what: str | Path, out: str | Path, formats: list[str] | tuple[str, ...] = FORMATS) -> Path:
    """Export one model in ``formats`` into the new folder ``out``; return it."""
    import core

    if not formats or set(formats) - set(FORMATS):
        raise ExportError(f"choose formats among {', '.join(FORMATS)}")
    formats = [fmt for fmt in FORMATS if fmt in formats]  # a fixed order, no repeats
    source = resolve(what)
    out = Path(out).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} already exists and is not an empty folder; choose a new one")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        core.import_tensorflow()
        import keras

        try:
            model = keras.saving.load_model(source.model_path, compile=False)
        except Exception as exc:  # Keras raises many types for a bad file
            raise ExportError(f"cannot read {source.model_path.name} as a Keras model: {exc}") from None
        if "keras" in formats:
            shutil.copyfile(source.model_path, work / "model.keras")
            atomic_write_json(work / "card.json", source.card | {"model_file": "model.keras"})
        fn = _serving_function(model) if set(formats) - {"keras"} else None
        if "savedmodel" in formats or "tflite" in formats:
            saved = work / "saved_model" if "savedmodel" in formats else work / ".saved_model"
            _write_savedmodel(model, fn, saved)
            if "tflite" in formats:
                _write_tflite(saved, work)
            if "savedmodel" not in formats:
                shutil.rmtree(saved)
        if "onnx" in formats:
            _write_onnx(fn, work)
        atomic_write_text(work / "labels.txt", "\n".join(source.labels) + "\n")
        atomic_write_json(work / "preprocessing.json", preprocessing(source.card))
        atomic_write_text(work / "README.md", _readme(source, formats))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(work, 0o777 & ~umask)  # mkdtemp makes it private; the export is a normal folder
        if out.exists():
            out.rmdir()
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out


def sizes(folder: str | Path) -> dict[str, int]:
    """Bytes on disk of each model file (a folder counts its contents) in an export folder."""
    folder = Path(folder)
    result = {}
    for fmt in FORMATS:
        for name in FILES[fmt]:
            path = folder / name
            if path.is_dir():
                result[name] = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            elif path.is_file() and name != "card.json":
                result[name] = path.stat().st_size
    return result


def zip_bytes(folder: str | Path) -> bytes:
    """The export folder as one .zip, for a download button."""
    folder = Path(folder)
    with tempfile.TemporaryDirectory() as tmp:
        archive = shutil.make_archive(str(Path(tmp) / folder.name), "zip", root_dir=folder)
        return Path(archive).read_bytes()


def predictor(folder: str | Path, name: str):
    """``predict(x) -> probabilities`` for one exported file, run by its own runtime.

    ``name`` is a file from ``FILES``: Keras for ``model.keras``, TensorFlow for
    ``saved_model``, the LiteRT interpreter (ai-edge-litert) for ``.tflite`` files and
    onnxruntime for ``model.onnx``. The last two are test/bench dependencies.
    """
    path = Path(folder) / name
    if name == "model.keras":
        import keras

        model = keras.saving.load_model(path, compile=False)
        return lambda x: np.asarray(model(np.asarray(x, np.float32), training=False))
    if name == "saved_model":
        import tensorflow as tf

        serve = tf.saved_model.load(str(path)).signatures[SIGNATURE]
        return lambda x: next(iter(serve(**{INPUT_NAME: tf.constant(x, tf.float32)}).values())).numpy()
    if name.endswith(".tflite"):
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path))

        def run_tflite(x):
            x = np.asarray(x, np.float32)
            inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
            interpreter.resize_tensor_input(inp["index"], list(x.shape))
            interpreter.allocate_tensors()
            interpreter.set_tensor(inp["index"], x)
            interpreter.invoke()
            return interpreter.get_tensor(out["index"]).copy()

        return run_tflite
    if name.endswith(".onnx"):
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda x: session.run(None, {INPUT_NAME: np.asarray(x, np.float32)})[0]
    raise ExportError(f"no runtime for {name}")


def compare(folder: str | Path, images: np.ndarray, reference: np.ndarray) -> dict[str, dict]:
    """Each exported file's predictions on ``images`` against the Keras ``reference`` probabilities."""
    result = {}
    for name, size in sizes(folder).items():
        probs = predictor(folder, name)(images)
        result[name] = {
            "bytes": size,
            "top_agreement": float((probs.argmax(axis=1) == reference.argmax(axis=1)).mean()),
            "max_abs_diff": float(np.abs(probs - reference).max()),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a run folder, a shipped model's name (e.g. mnist_fast) "
                                      "or a .keras file with its card")
    parser.add_argument("--format", action="append", choices=(*FORMATS, "all"),
                        help="repeat for several; default: all")
    parser.add_argument("--out", required=True, help="folder to create (new or empty)")
    args = parser.parse_args(argv)
    formats = FORMATS if not args.format or "all" in args.format else args.format
    out = export(args.model, args.out, formats)
    for name, size in sizes(out).items():
        print(f"{out / name}: {size / 1e6:.2f} MB")
    print(f"{out / 'labels.txt'}, {out / 'preprocessing.json'}, {out / 'README.md'}")
    return 0
