"""The first-run panel: what is missing, buttons to build it, and live progress of the build."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import streamlit as st

from assistant.settings import Settings
from ui.jobs import Builder, get_builder
from ui.markup import md_escape
from ui.runtime import Artifacts, probe

MINUTE_CHOICES = (5, 15, 30, 60)
LABELS = {"index": "Review index", "finetune": "Fine-tuning"}


def render_setup(settings: Settings, artifacts: Artifacts, base_label: str) -> None:
    """What is missing, buttons to build it, and live progress; nothing once everything exists."""
    builder = get_builder()
    if artifacts.has_index and artifacts.has_tuned and not builder.busy() and not _failures(builder):
        return
    st.session_state["_build_seen"] = (artifacts, builder.busy())
    with st.container(border=True, key="setup_panel"):
        if not builder.busy():
            _offers(settings, artifacts, base_label, builder)
        # Polls only while something builds; reruns the whole page when a build changed the disk.
        st.fragment(run_every=1.0 if builder.busy() else None)(_progress)(settings)


def _offers(settings: Settings, artifacts: Artifacts, base_label: str, builder: Builder) -> None:
    data_ok = Path(settings.data_dir).exists()
    kinds: list[str] = []
    if not artifacts.has_index:
        kinds.append("index")
        st.markdown(":material/database: **No review index yet**: RAG is off. Building it takes about a minute "
                    "for a first quick index, then the full one keeps building in the background.")
        if not data_ok:
            st.caption(f"No review data found at {md_escape(str(settings.data_dir))}: set MRA_DATA_DIR, "
                       "or run python ingest.py FILES in a terminal.")
    if not artifacts.has_tuned:
        kinds.append("finetune")
        st.markdown(f":material/model_training: **No fine-tuned model yet**: replies come from the "
                    f"base model ({md_escape(base_label)}), labelled *base*.")
    if not kinds:
        return
    left, mid, right = st.columns([2, 3, 3], vertical_alignment="bottom")
    minutes = left.selectbox("Training minutes", MINUTE_CHOICES, index=1, key="build_minutes",
                             disabled="finetune" not in kinds)
    label = "Build the index and fine-tune" if len(kinds) == 2 else (
        "Build the index" if kinds == ["index"] else f"Fine-tune ({minutes} min)")
    can_start = data_ok or kinds == ["finetune"]
    if mid.button(label, type="primary", icon=":material/build:", disabled=not can_start or
                  (kinds == ["finetune"] and not artifacts.has_index), key="build_start"):
        builder.start(settings, kinds, float(minutes))
        st.rerun()
    if len(kinds) == 2 and right.button("Only the index", key="build_index_only", disabled=not data_ok):
        builder.start(settings, ["index"], float(minutes))
        st.rerun()


def _progress(settings: Settings) -> None:
    builder = get_builder()
    for job in builder.snapshot():
        name = LABELS.get(job.kind, job.kind)
        if job.state == "running":
            elapsed = time.time() - job.started
            took = f"{elapsed:.0f} s" if elapsed < 90 else f"{elapsed / 60:.0f} min"
            st.progress(job.fraction, text=f"{name}: {md_escape(job.stage)} ({took})")
        elif job.state == "done":
            st.progress(1.0, text=f"{name}: done. {md_escape(job.stage)}")
        elif job.state == "failed":
            st.error(f"{name} failed: {md_escape(job.error)}", icon=":material/error:")
        elif job.state in ("cancelled", "skipped"):
            st.caption(f"{name}: {job.state}")
        else:
            st.caption(f"{name}: queued")
    if builder.busy():
        st.button("Cancel", key="build_cancel", on_click=builder.cancel, icon=":material/stop:")
    seen_artifacts, seen_busy = st.session_state.get("_build_seen", (None, False))
    if probe(settings) != seen_artifacts or seen_busy != builder.busy():
        st.rerun()  # a new index or model is on disk (or the build ended): reload the page around it


def render_rebuild(settings: Settings, artifacts: Artifacts, box: Any) -> None:
    """'Update the index' once one exists: finishes an interrupted full ingest, or adds new data files."""
    builder = get_builder()
    if not artifacts.has_index or builder.busy():
        return
    if box.button("Update the index", icon=":material/sync:", key="build_update_index",
                  disabled=not Path(settings.data_dir).exists(),
                  help=f"Add what is new in {settings.data_dir} (only new reviews are embedded)"):
        builder.start(settings, ["index"], 0.0)
        st.rerun()


def _failures(builder: Builder) -> bool:
    return any(j.state == "failed" for j in builder.snapshot())
