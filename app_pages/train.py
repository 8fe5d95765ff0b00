"""Train: configure a run, launch it as a separate process, watch it live, and use the result."""
from __future__ import annotations

import shlex
import time
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import config, jobs
from core import machine as system
from core.data import folders
from core.data import mnist as mnist_data
from core.models import mnist as mnist_models
from core.models import transfer as transfer_models
from core.rundir import RunDir
from core.training import devices
from ui import auth
from ui.common import machine_info
from ui.datasets import uploaded_source

REFRESH_S = 1.5
STATE_ICONS = {"queued": ":material/schedule:", "running": ":material/autorenew:",
               "succeeded": ":material/check_circle:", "failed": ":material/error:",
               "stopped": ":material/stop_circle:", "damaged": ":material/broken_image:"}
MNIST_SIZES = {"train": 60_000, "test": 10_000}


@st.cache_resource
def get_jobs(runs_root: str) -> jobs.Jobs:
    return jobs.Jobs(runs_root)


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
        return MNIST_SIZES["train"]


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


# --- settings ---------------------------------------------------------------------------

def device_settings(prefix: str) -> dict:
    info = machine_info()
    cols = st.columns(3)
    device = cols[0].selectbox("Device", devices.DEVICES, key=f"{prefix}_device",
                               help="auto: every GPU when there is one (MirroredStrategy over several), "
                                    "else the CPU")
    mixed = cols[1].selectbox("Mixed precision", devices.SWITCHES, key=f"{prefix}_mixed",
                              help="float16 maths with float32 weights: about half the activation memory "
                                   "and faster on GPUs with tensor cores (compute capability 7.0+)")
    xla = cols[2].selectbox("XLA compilation", devices.SWITCHES, key=f"{prefix}_xla",
                            help="auto: Keras decides (on with a GPU)")
    if device == "gpu" and not info.gpus:
        st.error("This machine has no GPU: choose *auto* or *cpu*.", icon=":material/error:")
    elif not info.gpus:
        st.caption(":material/info: No GPU found: the run will train on the CPU.")
    return {"device": device, "mixed_precision": mixed, "xla": xla}


def recipe_defaults() -> None:
    """A new architecture brings its own batch size and learning rate."""
    rec = mnist_models.recipe(st.session_state.mnist_arch)
    st.session_state.mnist_batch, st.session_state.mnist_lr = rec.batch_size, rec.lr


def mnist_settings() -> tuple[dict, dict]:
    archs = list(mnist_models.ARCHS)
    arch = st.selectbox("Architecture", archs, index=archs.index("fast"), key="mnist_arch",
                        format_func=lambda a: f"{a}: {mnist_models.recipe(a).title}",
                        on_change=recipe_defaults)
    rec = mnist_models.recipe(arch)
    st.caption(f"Recipe: {rec.optimizer} optimizer, {rec.schedule} schedule"
               + (f", label smoothing {rec.label_smoothing}" if rec.label_smoothing else "")
               + f"; it trains {rec.epochs} epochs at batch {rec.batch_size}, learning rate {rec.lr}.")
    cols = st.columns(4)
    epochs = cols[0].number_input("Epochs", 0, 200, min(rec.epochs, 3), key="mnist_epochs")
    batch = cols[1].number_input("Batch size", 0, 4096, rec.batch_size, key="mnist_batch")
    lr = cols[2].number_input("Learning rate", 0.0, 1.0, rec.lr, format="%.5f", key="mnist_lr")
    seed = cols[3].number_input("Seed", 0, 2**31 - 1, 0, key="mnist_seed")
    limit = st.number_input("Use only the first N training images (0: all 60,000)", 0, 60_000, 0, step=1000,
                            key="mnist_limit", help="For a quick try: 2,000 images train in seconds.")
    options = {"arch": arch, "epochs": int(epochs), "batch_size": int(batch), "lr": float(lr),
               "seed": int(seed), "limit": int(limit) or None}
    return options, {"optimizer": rec.optimizer}


def image_source() -> tuple[str | None, str]:
    """The data folder (relative to the data root) chosen by the user, and how it was chosen."""
    root = config.data_root()
    source = st.radio("Images", ["Flowers (5 classes)", "A folder under the data root", "An uploaded .zip"],
                      horizontal=True, key="image_source")
    if source.startswith("Flowers"):
        return "flowers", source
    if source.startswith("A folder"):
        typed = st.text_input(f"Folder inside {root}", key="image_folder",
                              placeholder="my_photos (one subfolder per class)")
        if not typed.strip():
            return None, source
        try:
            return str(folders.resolve_inside(typed, root).relative_to(root)), source
        except folders.FolderError as exc:
            st.error(str(exc), icon=":material/error:")
            return None, source
    return uploaded_source(), source


def image_settings() -> tuple[dict, dict]:
    data, _ = image_source()
    names = transfer_models.backbone_names()
    backbone = st.selectbox("Backbone (ImageNet weights)", names, index=names.index("mobilenet_v2_0.5"),
                            key="tl_backbone", format_func=lambda n: transfer_models.BACKBONES[n].title)
    cols = st.columns(4)
    size = cols[0].select_slider("Image size", [96, 128, 160, 192, 224], 224, key="tl_size")
    head = cols[1].number_input("Epochs, head only", 0, 100, 3, key="tl_head")
    fine = cols[2].number_input("Epochs, fine-tuning", 0, 100, 3, key="tl_fine")
    layers = cols[3].number_input("Layers to fine-tune", 0, 300, 40, key="tl_layers")
    cols = st.columns(4)
    batch = cols[0].number_input("Batch size", 0, 512, 32, key="tl_batch")
    lr = cols[1].number_input("Learning rate (head)", 0.0, 1.0, 1e-3, format="%.5f", key="tl_lr")
    fine_lr = cols[2].number_input("Learning rate (fine)", 0.0, 1.0, 1e-4, format="%.6f", key="tl_fine_lr")
    dropout = cols[3].slider("Dropout", 0.0, 0.9, 0.2, 0.05, key="tl_dropout")
    limit = st.number_input("At most N images per class (0: all)", 0, 100_000, 0, key="tl_limit")
    st.caption("Optimizer: Adam in both phases. Augmentation (flip, rotation, zoom, translation, contrast) "
               "is applied to training images only. Early stopping on validation loss.")
    options = {"data": data, "backbone": backbone, "image_size": int(size), "epochs_head": int(head),
               "epochs_fine": int(fine), "fine_tune_layers": int(layers), "batch_size": int(batch),
               "lr": float(lr), "fine_lr": float(fine_lr), "dropout": float(dropout),
               "limit_per_class": int(limit) or None}
    return options, {"optimizer": "adam"}


def data_report(task: str, options: dict) -> tuple[int | None, int]:
    """Show the data set report; return (training images or None when unusable, classes)."""
    if task == "mnist":
        status = next(d for d in system.datasets() if d.name == "mnist")
        where = f"IDX files in `{status.path}`" if status.present else "downloaded by Keras on first use"
        available = MNIST_SIZES["train"]
        labels = status.path / mnist_data.FILES["train_labels"]
        if labels.is_file():
            available = mnist_train_count(str(status.path), labels.stat().st_mtime)
        total = min(options["limit"] or available, available)
        n_train = int(total * 0.9)
        st.markdown(f"**MNIST** ({where}): 10 classes, {n_train:,} training and {total - n_train:,} "
                    f"validation images (10% held out, fixed seed), test images used once for the card.")
        return n_train, 10
    if not options["data"]:
        st.info("Choose the images to train on.", icon=":material/info:")
        return None, 0
    path = config.data_root() / options["data"]
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
    limit = options["limit_per_class"]
    total = sum(min(n, limit) if limit else n for n in counts.values())
    n_train = int(total * 0.7)
    st.caption(f"{total:,} images: about {n_train:,} for training, 15% validation, 15% test (stratified).")
    return n_train, len(counts)


def memory_report(task: str, options: dict, classes: int, device: dict, extra: dict) -> str | None:
    """Show the memory estimate; return why the run cannot start (too big for this machine), or None."""
    info = machine_info()
    choice = device["mixed_precision"]
    mixed = choice == "on" or (choice == "auto" and info.mixed_precision)
    if task == "mnist":
        key = (options["arch"],)
    else:
        key = (options["backbone"], max(classes, 2), options["image_size"])
    batch = max(1, options["batch_size"])
    try:
        est = model_memory(task, key, batch, bool(mixed and info.gpus), extra["optimizer"])
    except Exception as exc:  # noqa: BLE001 - an estimate must never block the page
        st.caption(f"No memory estimate: {exc}")
        return None
    gpu_mb = [g.memory_mb for g in info.gpus if g.memory_mb] if device["device"] != "cpu" else []
    text = (f"Estimated training memory: **{mb(est['total_bytes'])}** at batch {batch} "
            f"({mb(est['activation_bytes'])} activations, {mb(est['weight_bytes'])} weights, gradients and "
            f"optimizer state; {est['params']:,} parameters). A floor: frameworks add workspace.")
    fit = devices.fits(est["total_bytes"], min(gpu_mb) * 1e6 if gpu_mb else None)
    if fit is False:
        st.warning(text + f" **It will not fit the GPU's {min(gpu_mb):,} MB**: lower the batch size, "
                   "the image size, or turn mixed precision on.", icon=":material/warning:")
    else:
        st.markdown(text + (" It fits the GPU." if fit else ""))
    return devices.memory_refusal(est["total_bytes"], min(gpu_mb) * 1e6 if gpu_mb else None,
                                  devices.available_ram_bytes())


# --- live view --------------------------------------------------------------------------

def curves(epochs: list[dict], key: str) -> None:
    if not epochs:
        st.caption("Curves appear after the first epoch.")
        return
    x = list(range(1, len(epochs) + 1))
    labels = [f"{e.get('phase', '')} {e['epoch']}" for e in epochs]
    cols = st.columns(2)
    for col, metric, title in ((cols[0], "loss", "Loss"), (cols[1], "accuracy", "Accuracy")):
        fig = go.Figure()
        for name, field in (("train", metric), ("validation", f"val_{metric}")):
            ys = [e.get(field) for e in epochs]
            if any(y is not None for y in ys):
                fig.add_trace(go.Scatter(x=x, y=ys, mode="lines+markers", name=name, text=labels,
                                         hovertemplate="%{text}: %{y:.4f}<extra>" + name + "</extra>"))
        fig.update_layout(title=title, height=280, margin=dict(l=10, r=10, t=40, b=10),
                          xaxis_title="epoch", legend=dict(orientation="h", y=-0.3))
        col.plotly_chart(fig, width="stretch", key=f"{key}_{metric}")


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return f" · about {minutes} min {secs:02d} s left" if minutes else f" · about {secs} s left"


def watched_run(manager: jobs.Jobs, runs: list[jobs.Run]) -> jobs.Run | None:
    wanted = st.session_state.get("watch_run")
    ids = {r.id: r for r in runs}
    if wanted in ids:
        return ids[wanted]
    active = [r for r in runs if not r.finished]
    return active[-1] if active else (runs[0] if runs else None)


def live_view() -> None:
    manager = get_jobs(str(config.runs_root()))
    runs = manager.list()
    run = watched_run(manager, runs)
    if run is None:
        st.caption("No runs yet: launch one above.")
        return
    progress = manager.progress(run.id)
    icon = STATE_ICONS.get(run.state, "")
    st.markdown(f"{icon} **{run.id}** — {run.state}" + (f" on {run.device}" if run.device else ""))
    if run.state == "queued":
        ahead = sum(1 for r in runs if r.state == "running")
        st.info(f"Waiting for a free slot ({ahead} run(s) running, "
                f"at most {manager.max_concurrent} at a time).", icon=":material/schedule:")
    phase = f"{progress['phase']} · " if progress["phase"] not in (None, "train") else ""
    label = (f"{phase}epoch {progress['epoch']}/{progress['of_epochs']} · batch {progress['batch']}/"
             f"{progress['steps']}{eta_text(progress['eta_s'])}") if progress["of_epochs"] else "starting…"
    if progress["of_epochs"] or not run.finished:
        st.progress(progress["fraction"], text=label)
    for note in run.status.get("device_notes", []):
        st.caption(f":material/info: {note}")
    if run.state == "running":
        if st.button("Stop", icon=":material/stop:", key=f"stop_{run.id}",
                     help="Ends after the current batch; the checkpoint and a model are saved"):
            manager.stop(run.id)
            st.toast("Stop requested: the run saves its checkpoint and ends.")
    if run.error:
        st.error(f"**{run.state}**: {run.error}", icon=":material/error:")
    if run.finished and run.has_model:
        acc = run.test_accuracy
        test = f"test accuracy **{acc:.2%}**" if acc is not None else "model saved"
        target = "app_pages/draw.py" if run.task == "mnist" else "app_pages/classify.py"
        st.success(f"Finished: {test}. Pick **{run.id}** in the model list of the prediction page.",
                   icon=":material/check_circle:")
        st.page_link(target, label="Use it now", icon=":material/arrow_forward:")
    curves(progress["epochs"], key=f"live_{run.id}")
    with st.expander("Log", expanded=run.state == "failed"):
        st.code(RunDir(run.path).log_tail(25) or "(empty)", language=None)
    # A run just ended: rerun the whole page so the table and pickers see it.
    seen = st.session_state.setdefault("seen_states", {})
    if seen.get(run.id) not in (None, run.state) and run.finished:
        seen[run.id] = run.state
        st.rerun(scope="app")
    seen[run.id] = run.state


# --- past runs --------------------------------------------------------------------------

def settings_text(run: jobs.Run) -> str:
    o = run.options | run.config  # the task's resolved settings win over what was asked
    if run.task == "mnist":
        return f"{o.get('arch')} · {o.get('epochs')} ep · batch {o.get('batch_size')} · lr {o.get('lr')}"
    return (f"{o.get('data')} · {o.get('backbone')} {o.get('image_size')}px · "
            f"{o.get('epochs_head')}+{o.get('epochs_fine')} ep · batch {o.get('batch_size')}")


def runs_table(runs: list[jobs.Run]) -> None:
    rows = [{"run": r.id, "status": r.state, "task": r.task, "settings": settings_text(r),
             "best val": r.best_val_accuracy, "test": r.test_accuracy,
             "duration (s)": round(r.duration_s) if r.duration_s else None, "device": r.device}
            for r in runs]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
        "best val": st.column_config.NumberColumn(format="percent"),
        "test": st.column_config.NumberColumn(format="percent")})


def open_run(run: jobs.Run) -> None:
    st.markdown(f"#### {run.id}")
    if run.damaged:
        st.warning(run.damaged, icon=":material/broken_image:")
    st.code(run.command() or "(started by hand)", language="bash")
    if run.card:
        metrics = run.card.get("metrics") or {}  # types checked by core.models.cards.check_values
        cols = st.columns(4)
        test = run.test_accuracy
        cols[0].metric("Test accuracy", "none" if test is None else f"{test:.2%}")
        val = metrics.get("val_accuracy")  # None for a refit on every training image
        cols[1].metric("Validation accuracy", "none held out" if val is None else f"{val:.2%}")
        cols[2].metric("Parameters", f"{run.card.get('params') or 0:,}")
        cols[3].metric("Training time", f"{(run.card.get('training') or {}).get('wall_time_s') or 0:.0f} s")
        with st.expander("Model card"):
            st.json(run.card)
    curves(RunDir(run.path).read_metrics("epoch"), key=f"open_{run.id}")


def compare_runs(chosen: list[jobs.Run]) -> None:
    fig = go.Figure()
    for run in chosen:
        epochs = RunDir(run.path).read_metrics("epoch")
        fig.add_trace(go.Scatter(x=list(range(1, len(epochs) + 1)), y=[e.get("val_accuracy") for e in epochs],
                                 mode="lines+markers", name=run.id))
    fig.update_layout(title="Validation accuracy", height=320, xaxis_title="epoch",
                      margin=dict(l=10, r=10, t=40, b=10))
    st.plotly_chart(fig, width="stretch", key="compare_chart")
    st.dataframe(pd.DataFrame([{"run": r.id, "settings": settings_text(r), "best val": r.best_val_accuracy,
                                "test": r.test_accuracy, "params": r.card.get("params"), "device": r.device}
                               for r in chosen]), hide_index=True, width="stretch")


def past_runs(manager: jobs.Jobs) -> None:
    runs = manager.list()
    if not runs:
        st.caption(f"No runs in {manager.root} yet.")
        return
    runs_table(runs)
    by_id = {r.id: r for r in runs}
    chosen_ids = st.multiselect("Select runs to open, compare or delete", list(by_id), key="runs_chosen",
                                format_func=lambda i: f"{i} ({by_id[i].state})")
    chosen = [by_id[i] for i in chosen_ids if i in by_id]
    cols = st.columns(4)
    action = None
    if cols[0].button("Open", icon=":material/open_in_new:", disabled=len(chosen) != 1):
        action = "open"
    if cols[1].button("Compare", icon=":material/compare_arrows:", disabled=len(chosen) < 2):
        action = "compare"
    if cols[2].button("Watch live", icon=":material/monitoring:", disabled=len(chosen) != 1):
        st.session_state.watch_run = chosen[0].id
        st.rerun()
    confirm = cols[3].checkbox("Confirm delete", key="confirm_delete", disabled=not chosen)
    if st.button("Delete selected", icon=":material/delete:", disabled=not (chosen and confirm)):
        for run in chosen:
            try:
                manager.delete(run.id)
                st.toast(f"Deleted {run.id}")
            except jobs.JobError as exc:
                st.error(str(exc), icon=":material/error:")
        st.session_state.pop("runs_chosen", None)
        st.rerun()
    if action == "open":
        open_run(chosen[0])
    elif action == "compare":
        compare_runs(chosen)
    finished = [r for r in runs if r.has_model]
    if finished:
        st.caption("Finished models appear in the model lists of the prediction pages:")
        cols = st.columns(2)
        cols[0].page_link("app_pages/draw.py", label="Draw a digit (MNIST runs)", icon=":material/draw:")
        cols[1].page_link("app_pages/classify.py", label="Classify a photo (image runs)",
                          icon=":material/photo_camera:")


# --- page -------------------------------------------------------------------------------

st.title(":material/model_training: Train a model")
st.caption("Each run is a separate process with its state on disk (runs folder: "
           f"`{config.runs_root()}`), so it keeps going when you leave this page or reload it.")
manager = get_jobs(str(config.runs_root()))

with st.container(border=True):
    st.subheader("New run")
    task_label = st.radio("Task", ["MNIST digits: a CNN from scratch", "Image classifier on a folder"],
                          horizontal=True, key="train_task")
    task = "mnist" if task_label.startswith("MNIST") else "transfer"
    options, extra = mnist_settings() if task == "mnist" else image_settings()
    device = device_settings(task)
    st.markdown("**Data**")
    n_train, classes = data_report(task, options)
    too_big = memory_report(task, options, classes, device, extra)

    problems = jobs.check_options(task, options, n_train,
                                  transfer_models.backbone_names() if task == "transfer" else None)
    if task == "transfer" and not options.get("data"):
        problems.append("no images chosen")
    elif n_train is None:
        problems.append("the data set above cannot be trained on")
    if too_big:
        problems.append(too_big)
    if device["device"] == "gpu" and not machine_info().gpus:
        problems.append("device 'gpu' chosen but there is no GPU")
    all_options = options | {k: v for k, v in device.items() if v != "auto"}
    command = manager.command(task, all_options, config.runs_root() / "<new run>")
    st.markdown("Equivalent command line (run it on another machine, from the project folder):")
    st.code(shlex.join(["python", *command[1:]]), language="bash")
    for problem in problems:
        st.error(f"Cannot launch: {problem}.", icon=":material/block:")
    if st.button("Launch", type="primary", icon=":material/rocket_launch:", disabled=bool(problems),
                 key="launch"):
        visitor = st.session_state.get("visitor", auth.LOCAL)
        try:
            run_id = manager.start(task, all_options, visitor=visitor, cap=auth.visitor_caps(visitor)[0])
        except jobs.JobError as exc:
            st.error(str(exc), icon=":material/block:")
        else:
            st.session_state.watch_run = run_id
            st.toast(f"Run {run_id} launched")
            time.sleep(0.2)

active = any(not r.finished for r in manager.list())
st.subheader("Current run")
st.caption(f"At most {manager.max_concurrent} run(s) at a time; others wait in the queue "
           f"(set `{jobs.MAX_ENV}` to change it).")
st.fragment(run_every=REFRESH_S if active else None)(live_view)()

st.subheader("Past runs")
past_runs(manager)
