"""The Train page's "New run" form: widgets built from the typed settings, the data and memory reports.

Every default, label and rule comes from core.training.settings; this module only draws them.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import streamlit as st

from core import config, fmt
from core import machine as system
from core.data import folders
from core.data import mnist as mnist_data
from core.learn import calculator
from core.models import mnist as mnist_models
from core.models import transfer as transfer_models
from core.training import devices
from core.training.settings import (
    BACKENDS,
    DEVICES,
    SWITCHES,
    MnistSettings,
    Settings,
    TransferSettings,
    default,
    help_text,
    label,
)
from ui.common import machine_info, machine_summary
from ui.datasets import uploaded_source


@st.cache_resource(show_spinner="Building the model to estimate its memory…")
def model_memory(task: str, key: tuple, batch: int, mixed: bool, optimizer: str) -> dict:
    if task == "mnist":
        model = mnist_models.build(key[0])
    else:
        backbone, classes, size = key
        model = transfer_models.build_model(backbone, classes, size, weights=None)
    return devices.training_memory(model, batch, mixed, optimizer)


@st.cache_data
def mnist_train_count(folder: str, stamp: float) -> int:
    """Training images in the IDX files (the labels file is small: read it whole)."""
    try:
        return len(mnist_data.read_idx(Path(folder) / mnist_data.FILES["train_labels"]))
    except mnist_data.MnistDataError:
        return mnist_data.TRAIN_IMAGES


@st.cache_data(show_spinner="Scanning the images…")
def scan_folder(path: str, stamp: tuple) -> tuple[dict, list, str | None]:
    """Counts per class, skipped files and the scan's complaint (None when trainable)."""
    try:
        found = folders.scan(path)
        return found.counts, found.skipped, None
    except folders.FolderError as exc:
        try:  # still show what is there
            found = folders.scan(path, min_per_class=0)
            return found.counts, found.skipped, str(exc)
        except folders.FolderError:
            return {}, [], str(exc)


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB" if n < 1e9 else f"{n / 1e9:,.2f} GB"


def _number(col, cls: type[Settings], name: str, low, high, value=None, **kw):
    """A number input labelled, explained and defaulted by the settings class.

    The default goes into session state once (never also as ``value=``), so a callback that
    changes it (a new architecture's recipe) raises no Session State warning.
    """
    key = f"{cls.TASK}_{name}"
    st.session_state.setdefault(key, default(cls, name) if value is None else value)
    return col.number_input(label(cls, name), low, high, help=help_text(cls, name) or None, key=key, **kw)


# --- settings -----------------------------------------------------------------------

def run_machine(backend: str) -> system.MachineInfo:
    """The machine as a run on ``backend`` (a Settings value) will see it: this page's own view when
    the run uses the page's backend, else nvidia-smi's GPUs if that backend came with CUDA."""
    info = machine_info()
    listed = machine_summary().gpus  # nvidia-smi's, read once per process
    chosen = system.backend_for_run(backend, listed)
    if chosen == info.backend:
        return info
    gpus = listed if system.has_cuda(chosen) else []
    return dataclasses.replace(info, gpus=gpus, mixed_precision=system.mixed_capable(gpus), backend=chosen,
                               backend_version=None)


def device_settings(task: str) -> dict:
    cols = st.columns(4)
    device = cols[0].selectbox("Device", DEVICES, key=f"{task}_device",
                               help="auto: every GPU when there is one (MirroredStrategy on TensorFlow, "
                                    "DataParallel on JAX, over several), else the CPU")
    installed = system.installed_backends()
    backend = cols[1].selectbox("Keras backend", [b for b in BACKENDS if b == "auto" or b in installed],
                                key=f"{task}_backend",
                                help="The run is its own process, so it may use another backend than this "
                                     "page. auto: KERAS_BACKEND or keras.json when set, else the one that "
                                     "can use this machine's GPU (JAX where only JAX has CUDA), else "
                                     "TensorFlow.")
    mixed = cols[2].selectbox("Mixed precision", SWITCHES, key=f"{task}_mixed",
                              help="float16 maths with float32 weights: about half the activation memory "
                                   "and faster on GPUs with tensor cores (compute capability 7.0+)")
    xla = cols[3].selectbox("XLA compilation", SWITCHES, key=f"{task}_xla",
                            help="auto: Keras decides (on with a GPU)")
    run = run_machine(backend)
    gpus = run.gpus
    where = "the CPU" if not gpus or device == "cpu" else "the GPU" if len(gpus) == 1 else f"{len(gpus)} GPUs"
    label = system.backend_label(run.backend)
    st.caption(f":material/info: This run will train on {where} with Keras on {label}"
               + (" (auto)." if backend == "auto" else "."))
    return {"device": device, "backend": backend, "mixed_precision": mixed, "xla": xla}


def _recipe_defaults() -> None:
    """A new architecture brings its own epochs, batch size and learning rate."""
    rec = mnist_models.recipe(st.session_state.mnist_arch)
    st.session_state.mnist_epochs = rec.epochs
    st.session_state.mnist_batch_size, st.session_state.mnist_lr = rec.batch_size, rec.lr


def mnist_settings() -> tuple[MnistSettings, dict]:
    cls = MnistSettings
    archs = list(mnist_models.ARCHS)
    arch = st.selectbox(label(cls, "arch"), archs, index=archs.index(default(cls, "arch")), key="mnist_arch",
                        format_func=lambda a: f"{a}: {mnist_models.recipe(a).title}",
                        on_change=_recipe_defaults)
    rec = mnist_models.recipe(arch)
    st.caption(f"Recipe: {rec.optimizer} optimizer, {rec.schedule} schedule"
               + (f", label smoothing {rec.label_smoothing}" if rec.label_smoothing else "")
               + f"; it trains {rec.epochs} epochs at batch {rec.batch_size}, learning rate {rec.lr}.")
    cols = st.columns(4)
    epochs = _number(cols[0], cls, "epochs", 0, 200, rec.epochs)
    batch = _number(cols[1], cls, "batch_size", 0, 4096, rec.batch_size)
    lr = _number(cols[2], cls, "lr", 0.0, 1.0, rec.lr, format="%.5f")
    seed = _number(cols[3], cls, "seed", 0, 2**31 - 1)
    limit = _number(st, cls, "limit", 0, mnist_data.TRAIN_IMAGES, 0, step=1000)
    st.caption("0 uses all 60,000 images; 2,000 train in seconds.")
    chosen = cls(arch=arch, epochs=int(epochs), batch_size=int(batch), lr=float(lr), seed=int(seed),
                 limit=int(limit) or None)
    return chosen, {"optimizer": rec.optimizer}


def image_source() -> str | None:
    """The data folder chosen by the user: relative to the data root, or an uploaded set's folder."""
    root = config.data_root()
    source = st.radio("Images", ["Flowers (5 classes)", "A folder under the data root", "An uploaded .zip"],
                      horizontal=True, key="image_source")
    if source.startswith("Flowers"):
        return default(TransferSettings, "data")
    if source.startswith("A folder"):
        typed = st.text_input(f"Folder inside {root}", key="image_folder",
                              placeholder="my_photos (one subfolder per class)")
        if not typed.strip():
            return None
        try:
            return str(folders.resolve_inside(typed, root).relative_to(root))
        except folders.FolderError as exc:
            st.error(str(exc), icon=":material/error:")
            return None
    return uploaded_source()


def image_settings() -> tuple[TransferSettings, dict]:
    cls = TransferSettings
    data = image_source()
    names = transfer_models.backbone_names()
    backbone = st.selectbox(label(cls, "backbone"), names, index=names.index(default(cls, "backbone")),
                            key="transfer_backbone", format_func=lambda n: transfer_models.BACKBONES[n].title)
    cols = st.columns(4)
    size = cols[0].select_slider(label(cls, "image_size"), cls.IMAGE_SIZES, default(cls, "image_size"),
                                 key="transfer_image_size")
    head = _number(cols[1], cls, "epochs_head", 0, 100)
    fine = _number(cols[2], cls, "epochs_fine", 0, 100)
    layers = _number(cols[3], cls, "fine_tune_layers", 0, 300)
    cols = st.columns(4)
    batch = _number(cols[0], cls, "batch_size", 0, 512)
    lr = _number(cols[1], cls, "lr", 0.0, 1.0, format="%.5f")
    fine_lr = _number(cols[2], cls, "fine_lr", 0.0, 1.0, format="%.6f")
    dropout = cols[3].slider(label(cls, "dropout"), 0.0, 0.9, default(cls, "dropout"), 0.05,
                             key="transfer_dropout")
    limit = _number(st, cls, "limit_per_class", 0, 100_000, 0)
    st.caption("0 uses every image. Optimizer: Adam in both phases. Augmentation (flip, rotation, zoom, "
               "translation, contrast) is applied to training images only. Early stopping on validation "
               "loss.")
    chosen = cls(data=data or "", backbone=backbone, image_size=int(size), epochs_head=int(head),
                 epochs_fine=int(fine), fine_tune_layers=int(layers), batch_size=int(batch), lr=float(lr),
                 fine_lr=float(fine_lr), dropout=float(dropout), limit_per_class=int(limit) or None)
    return chosen, {"optimizer": "adam"}


# --- reports ------------------------------------------------------------------------

def data_report(cfg: Settings) -> tuple[int | None, int]:
    """Show the data set report; return (training images or None when unusable, classes)."""
    if isinstance(cfg, MnistSettings):
        status = next(d for d in system.datasets() if d.name == "mnist")
        where = f"IDX files in `{status.path}`" if status.present else "downloaded by Keras on first use"
        available = mnist_data.TRAIN_IMAGES
        labels = status.path / mnist_data.FILES["train_labels"]
        if labels.is_file():
            available = mnist_train_count(str(status.path), labels.stat().st_mtime)
        n_train, n_val = mnist_data.split_sizes(available, cfg.val_split, cfg.limit)
        st.markdown(f"**MNIST** ({where}): 10 classes, {n_train:,} training and {n_val:,} "
                    f"validation images ({fmt.pct(cfg.val_split, 0)} held out, fixed seed), test images "
                    "used once for the card.")
        download = mnist_data.needs_download(status.path)
        if download:
            st.warning(f"{download}. Otherwise the run first downloads them from the internet, which fails "
                       "on a machine without it.", icon=":material/cloud_off:")
        return n_train, 10
    if not cfg.data:
        st.info("Choose the images to train on.", icon=":material/info:")
        return None, 0
    path = config.data_root() / cfg.data
    if not path.is_dir():
        st.error(f"No folder {path}: the flowers set belongs in the data root ({config.data_root()}).",
                 icon=":material/error:")
        return None, 0
    counts, skipped, problem = scan_folder(str(path), folders.stamp(path))  # sees images added anywhere
    if counts:
        frame = pd.DataFrame({"class": list(counts), "images": list(counts.values())})
        st.dataframe(frame, hide_index=True, width="content")
    if skipped:
        with st.expander(f"{len(skipped)} file(s) skipped"):
            st.dataframe(pd.DataFrame(skipped, columns=["file", "reason"]), hide_index=True)
    if problem:
        st.error(problem, icon=":material/error:")
        return None, len(counts)
    sizes = folders.split_sizes(counts, cfg.val_frac, cfg.test_frac, cfg.limit_per_class)
    few = folders.advice(counts, cfg.limit_per_class)
    if few:
        st.warning(f"{few}.", icon=":material/warning:")
    st.caption(f"{sum(sizes.values()):,} images: {sizes['train']:,} for training, {sizes['val']:,} "
               f"validation, {sizes['test']:,} test (stratified by class).")
    return sizes["train"], len(counts)


def memory_report(cfg: Settings, classes: int, extra: dict) -> str | None:
    """Show the memory estimate; return why the run cannot start on this machine (too big), or None."""
    info = run_machine(cfg.backend)
    mixed = devices.resolve_mixed(cfg.mixed_precision, info)
    key = (cfg.arch,) if isinstance(cfg, MnistSettings) else (cfg.backbone, max(classes, 2), cfg.image_size)
    batch = max(1, cfg.resolved().batch_size or 1)
    try:
        est = model_memory(cfg.TASK, key, batch, mixed, extra["optimizer"])
    except Exception as exc:  # noqa: BLE001 - an estimate must never block the page
        st.caption(f"No memory estimate: {exc}")
        return None
    text = (f"Estimated training memory: **{mb(est['total_bytes'])}** at batch {batch} "
            f"({mb(est['activation_bytes'])} activations, {mb(est['weight_bytes'])} weights, gradients and "
            f"optimizer state; {est['params']:,} parameters). A floor: frameworks add workspace.")
    gpu_bytes = info.smallest_gpu_bytes() if cfg.device != "cpu" else None
    fit = calculator.fits(est["total_bytes"], gpu_bytes)
    if fit is False:
        st.warning(text + f" **It will not fit the GPU's {mb(gpu_bytes)}**: lower the batch size, "
                   "the image size, or turn mixed precision on.", icon=":material/warning:")
    else:
        st.markdown(text + (" It fits the GPU." if fit else ""))
    return devices.memory_refusal(est["total_bytes"], gpu_bytes, devices.available_ram_bytes())


def launch_problems(cfg: Settings, n_train: int | None) -> list[str]:
    """Why this run cannot launch now: the settings' own rules plus what only the page knows."""
    problems = cfg.problems(n_train)
    if n_train is None and not (isinstance(cfg, TransferSettings) and not cfg.data):
        problems.append("the data set above cannot be trained on")
    if cfg.device == "gpu" and not run_machine(cfg.backend).gpus:
        problems.append("device 'gpu' chosen but this machine has no GPU: choose auto or cpu")
    return problems
