"""The Train page's run views: the live run, the runs table, open, compare and delete."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import jobs
from core.rundir import RunDir

STATE_ICONS = {"queued": ":material/schedule:", "running": ":material/autorenew:",
               "succeeded": ":material/check_circle:", "failed": ":material/error:",
               "stopped": ":material/stop_circle:"}


@st.cache_resource
def get_jobs(runs_root: str) -> jobs.Jobs:
    return jobs.Jobs(runs_root)


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
    st.code(run.command() or "(started by hand)", language="bash")
    if run.card:
        metrics = run.card.get("metrics", {})
        cols = st.columns(4)
        cols[0].metric("Test accuracy", f"{metrics.get('test_accuracy', 0):.2%}")
        val = metrics.get("val_accuracy")  # None for a refit on every training image
        cols[1].metric("Validation accuracy", "none held out" if val is None else f"{val:.2%}")
        cols[2].metric("Parameters", f"{run.card.get('params', 0):,}")
        cols[3].metric("Training time", f"{run.card.get('training', {}).get('wall_time_s', 0):.0f} s")
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
