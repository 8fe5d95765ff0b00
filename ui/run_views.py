"""The Train page's run views: the live run, the runs table, open, compare and delete."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import fmt, jobs
from core.errors import StudioError
from core.models import export
from core.rundir import RunDir
from ui import auth
from ui.common import use_it_now

STATE_ICONS = {"queued": ":material/schedule:", "running": ":material/autorenew:",
               "succeeded": ":material/check_circle:", "failed": ":material/error:",
               "stopped": ":material/stop_circle:", "damaged": ":material/broken_image:"}


@st.cache_resource
def get_jobs(runs_root: str) -> jobs.Jobs:
    return jobs.Jobs(runs_root)


def _owner() -> str | None:
    """The visitor whose runs these are when the app serves a network; None on 127.0.0.1 (anyone)."""
    visitor = st.session_state.get("visitor", auth.LOCAL)
    return None if visitor == auth.LOCAL else visitor


# --- live view --------------------------------------------------------------------------

SMOOTHING = 0.6  # weight of the past in the per-batch curves' moving average
HEADLINES = {"succeeded": (st.success, ":material/check_circle:"),
             "stopped": (st.warning, ":material/stop_circle:"),  # its own colour: not a success
             "stopping": (st.info, ":material/hourglass_top:"),
             "failed": (st.error, ":material/error:")}


def _epoch_x(records: list[dict]) -> list[float]:
    """Each record's place in epochs done so far, phases laid end to end (head, then fine-tune)."""
    offsets, total = {}, 0
    for record in records:
        phase = record.get("phase")
        if phase not in offsets:
            offsets[phase] = total
            total += record.get("epochs", 0)
    xs = []
    for record in records:
        steps = record.get("steps") or 1
        done = record.get("batch", record.get("batches", steps))
        xs.append(offsets[record.get("phase")] + record["epoch"] - 1 + min(1.0, done / steps))
    return xs


def _smooth(values: list) -> list:
    out, level = [], None
    for value in values:
        if value is None:
            out.append(None)
            continue
        level = value if level is None else SMOOTHING * level + (1 - SMOOTHING) * value
        out.append(level)
    return out


def curves(epochs: list[dict], key: str, batches: list[dict] | None = None) -> None:
    """Loss and accuracy: per batch (smoothed, live) and per epoch (train and validation)."""
    batches = batches or []
    if not epochs and not batches:
        st.caption("Curves appear after the first batches.")
        return
    bx, ex = _epoch_x(batches), _epoch_x(epochs)
    last = max(bx + ex) if bx + ex else 1
    cols = st.columns(2)
    for col, metric, title in ((cols[0], "loss", "Loss"), (cols[1], "accuracy", "Accuracy")):
        fig = go.Figure()
        ys = _smooth([b.get(metric) for b in batches])
        if any(y is not None for y in ys):
            fig.add_trace(go.Scatter(x=bx, y=ys, mode="lines", name="train, per batch (smoothed)",
                                     line=dict(width=1.5), opacity=0.6))
        for name, field in (("train, per epoch", metric), ("validation", f"val_{metric}")):
            ys = [e.get(field) for e in epochs]
            if any(y is not None for y in ys):
                fig.add_trace(go.Scatter(x=ex, y=ys, mode="lines+markers", name=name,
                                         hovertemplate="epoch %{x:.2f}: %{y:.4f}<extra>" + name + "</extra>"))
        fig.update_layout(title=title, height=300, margin=dict(l=10, r=10, t=40, b=10),
                          legend=dict(orientation="h", y=-0.35),
                          xaxis=dict(title="epoch", tick0=0, dtick=max(1, round(last / 10)),
                                     rangemode="tozero"))
        col.plotly_chart(fig, width="stretch", key=f"{key}_{metric}")


def progress_text(progress: dict) -> str:
    """What the progress bar says: the real epoch and batch; no time left while stopping."""
    if not progress["of_epochs"]:
        return "starting…"
    phase = f"{progress['phase']} · " if progress["phase"] not in (None, "train") else ""
    text = (f"{phase}epoch {progress['epoch']}/{progress['of_epochs']} · "
            f"batch {fmt.count(progress['batch'])}/{fmt.count(progress['steps'])}")
    if progress.get("stopping"):
        return text + " · stopping…"
    if progress["eta_s"] is not None:
        return text + f" · about {fmt.duration(progress['eta_s'])} left"
    return text


def watched_run(manager: jobs.Jobs, runs: list[jobs.Run]) -> jobs.Run | None:
    wanted = st.session_state.get("watch_run")
    ids = {r.id: r for r in runs}
    if wanted in ids:
        return ids[wanted]
    active = [r for r in runs if not r.finished]
    return active[-1] if active else (runs[0] if runs else None)


def model_task(run: jobs.Run) -> str:
    return "mnist" if run.task == "mnist" else "image"


def take_it_home(run: jobs.Run, key: str) -> None:
    """Use the model on its prediction page, or download it in the formats chosen."""
    cols = st.columns([1, 2, 1])
    if cols[0].button("Use it now", icon=":material/arrow_forward:", type="primary", key=f"use_{key}",
                      help="Opens the prediction page with this run's model selected"):
        use_it_now(run.id, model_task(run))
    formats = cols[1].multiselect("Export formats", export.FORMATS, default=["keras"], key=f"fmt_{key}",
                                  help="Keras with its card, TensorFlow SavedModel, TensorFlow Lite "
                                       "(float32 and int8) and ONNX, each with labels.txt and "
                                       "preprocessing.json; formats other than Keras take a while")
    ready = st.session_state.get(f"export_{key}")
    if cols[2].button("Prepare download", icon=":material/package_2:", key=f"prepare_{key}",
                      disabled=not formats):
        with st.spinner("Exporting…"), tempfile.TemporaryDirectory() as tmp:
            try:
                out = export.export(run.path, Path(tmp) / run.id, formats)
                ready = st.session_state[f"export_{key}"] = (tuple(formats), export.zip_bytes(out))
            except StudioError as exc:
                st.error(str(exc), icon=":material/error:")
    if ready and ready[0] == tuple(formats):
        st.download_button(f"Download {run.id}.zip ({fmt.size(len(ready[1]))})", ready[1],
                           file_name=f"{run.id}.zip", mime="application/zip", icon=":material/download:",
                           key=f"download_{key}")


def live_view(manager: jobs.Jobs) -> None:
    runs = manager.list()  # once per fragment run
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
    kind, sentence = jobs.headline(run, progress)
    if kind in HEADLINES:  # above the bar and the log: the one sentence that matters
        show, headline_icon = HEADLINES[kind]
        show(sentence, icon=headline_icon)
    if progress["of_epochs"] or not run.finished:
        st.progress(progress["fraction"], text=progress_text(progress))
    for note in run.status.get("device_notes", []):
        st.caption(f":material/info: {note}")
    if run.state == "running" and not progress["stopping"]:
        if st.button("Stop", icon=":material/stop:", key=f"stop_{run.id}",
                     help="Ends after the current batch; the checkpoint and a model are saved"):
            try:
                manager.stop(run.id, visitor=_owner())
                st.toast("Stop requested: the run saves its checkpoint and ends.")
            except jobs.JobError as exc:
                st.error(str(exc), icon=":material/block:")
    if run.finished and run.has_model:
        take_it_home(run, key=f"live_{run.id}")
    curves(progress["epochs"], key=f"live_{run.id}", batches=RunDir(run.path).read_metrics("batch"))
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

    def v(name):
        return fmt.MISSING if o.get(name) is None else o[name]

    if run.task == "mnist":
        return f"{v('arch')} · {v('epochs')} ep · batch {v('batch_size')} · lr {v('lr')}"
    return (f"{v('data')} · {v('backbone')} {v('image_size')}px · "
            f"{v('epochs_head')}+{v('epochs_fine')} ep · batch {v('batch_size')}")


def runs_table(runs: list[jobs.Run]) -> None:
    rows = [{"run": r.id, "status": r.state, "task": r.task, "settings": settings_text(r),
             "best val": fmt.pct(r.best_val_accuracy), "test": fmt.pct(r.test_accuracy),
             "run time": fmt.duration(r.duration_s), "device": r.device or fmt.MISSING}
            for r in runs]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def open_run(run: jobs.Run) -> None:
    st.markdown(f"#### {run.id}")
    if run.damaged:
        st.warning(run.damaged, icon=":material/broken_image:")
    st.code(run.command() or "(started by hand)", language="bash")
    if run.card:  # its types are checked (core.models.cards.check_values); values may be None
        metrics = run.card.get("metrics") or {}
        cols = st.columns(4)
        cols[0].metric("Test accuracy", fmt.pct(run.test_accuracy))
        val = metrics.get("val_accuracy")  # None for a refit on every training image
        cols[1].metric("Validation accuracy", "none held out" if val is None else fmt.pct(val))
        cols[2].metric("Parameters", fmt.count(run.card.get("params")))
        fit = (run.card.get("training") or {}).get("wall_time_s")
        cols[3].metric("Run time", fmt.duration(run.duration_s),
                       help=f"Start to end, as in the runs table; training itself: {fmt.duration(fit)}")
        with st.expander("Model card"):
            st.json(run.card)
    if run.has_model:
        take_it_home(run, key=f"open_{run.id}")
    rundir = RunDir(run.path)
    curves(rundir.read_metrics("epoch"), key=f"open_{run.id}", batches=rundir.read_metrics("batch"))


def compare_runs(chosen: list[jobs.Run]) -> None:
    fig = go.Figure()
    for run in chosen:
        epochs = RunDir(run.path).read_metrics("epoch")
        fig.add_trace(go.Scatter(x=_epoch_x(epochs), y=[e.get("val_accuracy") for e in epochs],
                                 mode="lines+markers", name=run.id))
    fig.update_layout(title="Validation accuracy", height=320, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis=dict(title="epoch", tick0=0, dtick=1), yaxis=dict(tickformat=".1%"))
    st.plotly_chart(fig, width="stretch", key="compare_chart")
    rows = [{"run": r.id, "settings": settings_text(r), "best val": fmt.pct(r.best_val_accuracy),
             "test": fmt.pct(r.test_accuracy), "params": fmt.count(r.card.get("params")),
             "run time": fmt.duration(r.duration_s), "device": r.device or fmt.MISSING} for r in chosen]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def past_runs(manager: jobs.Jobs, runs: list[jobs.Run]) -> None:
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
                manager.delete(run.id, visitor=_owner())
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
