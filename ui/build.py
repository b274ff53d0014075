"""The first-run panel (what is missing, buttons to build it, live progress), and "Fine-tune your own" with the
switch between the user's fine-tune and the shipped one."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import streamlit as st

from assistant.model import shipped
from assistant.settings import Settings
from ui.jobs import Builder, get_builder
from ui.markup import md_escape
from ui.runtime import Artifacts, probe

MINUTE_CHOICES = (5, 15, 30, 60)
LABELS = {"index": "Review index", "finetune": "Fine-tune your own"}
ORIGIN_LABELS = {"shipped": "Shipped", "own": "Yours"}


@st.cache_resource(show_spinner=False)
def _model_choice() -> dict[str, str]:
    """The page's choice of fine-tuned model: one per server, like the model it loads (every browser shares it)."""
    return {}


def with_model_choice(settings: Settings) -> Settings:
    """`settings` with the fine-tuned model chosen on the page, if one was (else `settings.tuned_model`)."""
    chosen = _model_choice().get("tuned_model")
    return settings.model_copy(update={"tuned_model": chosen}) if chosen else settings


def render_setup(settings: Settings, artifacts: Artifacts, base_label: str) -> None:
    """What is missing, buttons to build it, and live progress; then "Fine-tune your own" in the sidebar."""
    builder = get_builder()
    if artifacts.has_index and artifacts.has_tuned and not builder.busy():  # else the panel below offers it
        _own_panel(settings, artifacts, builder)
    if artifacts.has_index and artifacts.has_tuned and not builder.busy() and not _failures(builder):
        return
    st.session_state["_build_seen"] = (artifacts, builder.busy())
    with st.container(border=True, key="setup_panel"):
        if not builder.busy():
            _offers(settings, artifacts, base_label, builder)
        # Polls only while something builds; reruns the whole page when a build changed the disk.
        st.fragment(run_every=1.0 if builder.busy() else None)(_progress)(settings)


def _start(builder: Builder, settings: Settings, kinds: list[str], minutes: float) -> None:
    if "finetune" in kinds:
        _model_choice()["tuned_model"] = "own"  # the user's new model goes live when it is saved
    builder.start(settings, kinds, minutes)
    st.rerun()


def _own_panel(settings: Settings, artifacts: Artifacts, builder: Builder) -> None:
    """Fine-tune a model of one's own on this index (bounded minutes), and switch between it and the shipped one."""
    box = st.sidebar.expander(LABELS["finetune"], icon=":material/model_training:")
    live = {"own": "your fine-tune", "shipped": "the shipped fine-tuned model"}.get(artifacts.tuned_origin or "")
    can_switch = artifacts.has_own and shipped.applies_to(settings)
    box.caption((f"Replies come from {live}. " if live else "") +
                "Train a model of your own on this machine's index: it goes live when it is saved" +
                (", and you can switch back to the shipped one here." if can_switch or not artifacts.has_own else "."))
    minutes = _minutes_box(box, "own_minutes")
    if box.button(f"Fine-tune your own ({minutes} min)", icon=":material/build:", key="own_start"):
        _start(builder, settings, ["finetune"], float(minutes))
    if can_switch:
        # Shows what is live, whoever chose it (another browser, MRA_TUNED_MODEL); a change reloads the model.
        st.session_state["own_or_shipped"] = artifacts.tuned_origin or "own"
        box.segmented_control("Fine-tuned model", list(ORIGIN_LABELS), format_func=ORIGIN_LABELS.get, required=True,
                              key="own_or_shipped", on_change=_switch,
                              help="Which fine-tuned model answers as 'Tuned' (for everyone on this server)")


def _minutes_box(box: Any, key: str, **options: Any) -> int:
    """The "Training minutes" choice, as last chosen in this browser: Streamlit forgets a widget's value on a run
    that does not draw it, and the panel is hidden while a fine-tune runs, so the choice is kept under a key of its
    own."""
    kept = st.session_state.get(f"{key}_kept")
    index = MINUTE_CHOICES.index(kept) if kept in MINUTE_CHOICES else 1
    minutes = box.selectbox("Training minutes", MINUTE_CHOICES, index=index, key=key, **options)
    st.session_state[f"{key}_kept"] = minutes
    return minutes


def _switch() -> None:
    _model_choice()["tuned_model"] = st.session_state["own_or_shipped"]


def _offers(settings: Settings, artifacts: Artifacts, base_label: str, builder: Builder) -> None:
    data_ok = Path(settings.data_dir).exists()
    kinds: list[str] = []
    if not artifacts.has_index:
        kinds.append("index")
        st.markdown(":material/database: **No review index yet**: RAG is off. Building it takes about a minute "
                    "for a first quick index of the most-reviewed films, then the full one keeps building in the "
                    "background.")
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
    minutes = _minutes_box(left, "build_minutes", disabled="finetune" not in kinds)
    label = "Build the index and fine-tune" if len(kinds) == 2 else (
        "Build the index" if kinds == ["index"] else f"Fine-tune ({minutes} min)")
    can_start = data_ok or kinds == ["finetune"]
    if mid.button(label, type="primary", icon=":material/build:", disabled=not can_start or
                  (kinds == ["finetune"] and not artifacts.has_index), key="build_start"):
        _start(builder, settings, kinds, float(minutes))
    if len(kinds) == 2 and right.button("Only the index", key="build_index_only", disabled=not data_ok):
        _start(builder, settings, ["index"], float(minutes))


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
        _start(builder, settings, ["index"], 0.0)


def _failures(builder: Builder) -> bool:
    return any(j.state == "failed" for j in builder.snapshot())
