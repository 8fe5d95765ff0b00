"""Train: configure a run, launch it as a separate process, watch it live, and use the result."""
import shlex
import time

import streamlit as st

import core

core.import_keras()  # whole, before the settings import Keras (another session may be importing it)
from core import config, jobs
from ui import auth
from ui import train_form as form
from ui.estimate import time_estimate
from ui.run_views import get_jobs, live_view, past_runs

REFRESH_S = 1.5

st.title(":material/model_training: Train a model")
st.caption("Each run is a separate process with its state on disk (runs folder: "
           f"`{config.runs_root()}`), so it keeps going when you leave this page or reload it.")
manager = get_jobs(str(config.runs_root()))

with st.container(border=True):
    st.subheader("New run")
    task_label = st.radio("Task", ["MNIST digits: a CNN from scratch", "Image classifier on a folder"],
                          horizontal=True, key="train_task")
    task = "mnist" if task_label.startswith("MNIST") else "transfer"
    cfg, extra = form.mnist_settings() if task == "mnist" else form.image_settings()
    cfg = cfg.with_changes(**form.device_settings(task))
    st.markdown("**Data**")
    n_train, classes = form.data_report(cfg)
    too_big = form.memory_report(cfg, classes, extra)  # over the free RAM or the GPU's memory
    time_estimate(cfg, n_train, classes)

    problems = form.launch_problems(cfg, n_train) + ([too_big] if too_big else [])
    command = manager.command(task, cfg.to_options(), config.runs_root() / "<new run>")
    st.markdown("Equivalent command line (run it on another machine, from the project folder):")
    st.code(shlex.join(["python", *command[1:]]), language="bash")
    for problem in problems:
        st.error(f"Cannot launch: {problem}.", icon=":material/block:")
    if st.button("Launch", type="primary", icon=":material/rocket_launch:", disabled=bool(problems),
                 key="launch"):
        visitor = st.session_state.get("visitor", auth.LOCAL)
        try:
            run_id = manager.start(task, cfg.to_options(), visitor=visitor, cap=auth.visitor_caps(visitor)[0])
        except jobs.JobError as exc:  # this visitor's cap on queued runs (network serving only)
            st.error(str(exc), icon=":material/block:")
        else:
            st.session_state.watch_run = run_id
            st.toast(f"Run {run_id} launched")
            time.sleep(0.2)

runs = manager.list()  # once per page render; the live view lists again on its own timer
st.subheader("Current run")
st.caption(f"At most {manager.max_concurrent} run(s) at a time; others wait in the queue "
           f"(set `{jobs.MAX_ENV}` to change it).")
active = any(not r.finished for r in runs)
st.fragment(run_every=REFRESH_S if active else None)(live_view)(manager)

st.subheader("Past runs")
past_runs(manager, runs)
