"""The Train form's time estimate: a short probe measured on this machine, on request."""
from __future__ import annotations

import streamlit as st

from core import fmt
from core.training.estimate import PROBE_STEPS, estimate
from core.training.settings import Settings


def time_estimate(cfg: Settings, n_train: int | None, classes: int) -> None:
    """A button that measures a few steps of this run's model and predicts the run's duration."""
    if not n_train:
        return
    key = ("time_estimate", repr(sorted(cfg.to_options().items())), n_train, classes)
    found = st.session_state.get("time_estimate")
    cols = st.columns([1, 3])
    if cols[0].button("Estimate time", icon=":material/timer:", key="estimate_time",
                      help=f"Times {PROBE_STEPS} training and {PROBE_STEPS} evaluation steps of this model "
                           "on this machine, then scales them to the whole run"):
        with st.spinner("Timing a few steps…"):
            found = st.session_state["time_estimate"] = (key, estimate(cfg, n_train, classes))
    if found and found[0] == key:
        est = found[1]
        per_step = " and ".join(f"{fmt.duration(p['train_step_s'] * p['steps'])} per {p['phase']} epoch"
                                for p in est.phases)
        cols[1].markdown(f"Estimated run time on this machine: **about {fmt.duration(est.seconds)}** "
                         f"({per_step}; measured by a {fmt.duration(est.probe_seconds)} probe). Starting "
                         "the process, reading the data and saving the model come on top.")
    elif found:
        cols[1].caption("The settings changed since the last estimate: estimate again.")
