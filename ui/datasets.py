"""The Train page's uploaded data sets: upload a .zip, pick one, delete one (core.data.uploads).

An upload is imported once per file (the result is kept in the session, so a rerun does
not hash or unpack it again); a refused upload is dropped from the widget at once, so
its bytes do not stay in server memory.
"""
from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from core import config
from core.data import uploads
from core.errors import StudioError
from ui import auth


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB"


def _uploader() -> uploads.Upload | None:
    """The upload widget; returns the data set an accepted upload became."""
    generation = st.session_state.setdefault("zip_generation", 0)
    key = f"image_zip_{generation}"
    upload = st.file_uploader("A .zip with one folder of images per class", type=["zip"], key=key)
    if upload is None:
        return None
    done = st.session_state.setdefault("zip_imported", {})
    if upload.file_id in done:
        try:
            return uploads.get(done[upload.file_id])
        except uploads.UploadError:
            done.pop(upload.file_id)
    visitor = st.session_state.get("visitor", auth.LOCAL)
    try:
        with st.spinner(f"Checking and unpacking {upload.name}…"):
            found, report = uploads.import_zip(upload, upload.name, visitor=visitor,
                                               visitor_cap=auth.visitor_caps(visitor)[1])
    except StudioError as exc:
        st.session_state["zip_refused"] = f"{uploads.slug(upload.name)}.zip: {exc}"
        st.session_state["zip_generation"] = generation + 1  # drop the refused file from memory
        st.rerun()
    done[upload.file_id] = found.name
    if report is not None and report.skipped:
        st.caption(f"{len(report.skipped)} entries of the zip were left out: "
                   + ", ".join(f"{name} ({why})" for name, why in report.skipped[:8]))
    st.session_state["upload_pick"] = found.name
    return found


def _table(found: list[uploads.Upload]) -> None:
    rows = [{"data set": u.name, "images": sum(u.classes.values()) if not u.error else None,
             "classes": ", ".join(f"{c} ({n})" for c, n in u.classes.items()) or u.error,
             "size": _mb(u.size_bytes), "last used": time.strftime("%Y-%m-%d %H:%M",
                                                                   time.localtime(u.last_used))}
            for u in found]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    root = config.uploads_root()
    st.caption(f"{len(found)} uploaded set(s) in `{root}`: {_mb(uploads.usage(root))} of a "
               f"{_mb(config.uploads_quota_bytes())} quota ({config.UPLOADS_QUOTA_ENV}).")


def _delete(found: list[uploads.Upload]) -> None:
    cols = st.columns([3, 1, 1])
    name = cols[0].selectbox("Delete an uploaded set", [u.name for u in found], index=None,
                             key="upload_delete_pick", placeholder="choose a set to delete")
    sure = cols[1].checkbox("Confirm delete", key="upload_delete_confirm", disabled=name is None)
    if cols[2].button("Delete set", icon=":material/delete:", disabled=not (name and sure),
                      key="upload_delete"):
        try:
            visitor = st.session_state.get("visitor", auth.LOCAL)
            uploads.remove(name, visitor=None if visitor == auth.LOCAL else visitor)
            st.toast(f"Deleted {name}")
        except StudioError as exc:
            st.error(str(exc), icon=":material/error:")
        for key in ("upload_delete_pick", "upload_delete_confirm"):
            st.session_state.pop(key, None)
        st.session_state["zip_generation"] = st.session_state.get("zip_generation", 0) + 1  # not re-imported
        if st.session_state.get("upload_pick") == name:
            st.session_state.pop("upload_pick")
        st.rerun()


def uploaded_source() -> str | None:
    """Upload or pick an uploaded data set; the absolute folder to train on, or None."""
    try:
        found = uploads.list_uploads()
    except StudioError as exc:  # the uploads folder setting itself is wrong
        st.error(str(exc), icon=":material/error:")
        return None
    refused = st.session_state.pop("zip_refused", None)
    if refused:
        st.error(refused, icon=":material/error:")
    new = _uploader()
    if new is not None and new.name not in {u.name for u in found}:
        found.append(new)
    usable = [u for u in found if not u.error]
    if not found:
        return None
    _table(found)
    names = [u.name for u in usable]
    chosen = None
    if names:
        pick = st.session_state.get("upload_pick")
        index = names.index(pick) if pick in names else len(names) - 1
        chosen = st.selectbox("Train on", names, index=index, key="upload_choice")
    with st.expander("Delete uploaded sets"):
        _delete(found)
    by_name = {u.name: u for u in usable}
    return str(by_name[chosen].root) if chosen else None
