"""The "Add reviews" page: upload a review file, see what would be read (the dry run), add it to the index.

The preview is `ingest.py FILE --dry-run` (assistant.data.readers.preview_file); adding runs in the background
(ui/add_job.py) through the same ingest code as the CLI. Nothing from the file is rendered as Markdown or HTML
unescaped: names and quotes go through md_escape, example rows into a data frame.
"""
from __future__ import annotations

import time
from typing import Any

import pandas as pd
import streamlit as st

from assistant.data.readers import ColumnMapping, Preview, ReaderError, preview_file
from ui.add_job import Staged, get_adder, stage
from ui.jobs import get_builder
from ui.markup import md_escape
from ui.runtime import current_settings

MAX_UPLOAD_MB = 200  # Streamlit holds an upload in memory until it is written to disk
UPLOAD_TYPES = ["csv", "tsv", "gz", "jsonl", "ndjson", "parquet", "pq"]
FORMATS_HELP = ("CSV, TSV, JSON Lines (.jsonl, .ndjson) or Parquet; CSV, TSV and JSON Lines may be gzipped (.gz). "
                "Any column names: the review text, sentiment (fresh/rotten, positive/negative, 0/1, 0/2 or scores "
                "like 3.5/5, B+), movie, critic, publication and date are recognised from names and values.")
MAPPING_HELP = ("As ingest.py --map takes it: text=COLUMN,sentiment=COLUMN,movie=COLUMN,critic=COLUMN,"
                "publication=COLUMN,score=COLUMN,date=COLUMN,labels=words|freshness|binary|scores. "
                "Empty: the mapping inferred from the file.")


def add_reviews_page() -> None:
    st.title("Add reviews")
    st.caption(f"Bring your own critic reviews, up to {MAX_UPLOAD_MB} MB a file. You see what would be read "
               "before anything is added; the films in the file are known to the chat as soon as it is added. "
               "Reviews without a label are kept as *unknown*: they are found by movie, but not when "
               "asking for a positive or negative one.")
    adder = get_adder()
    upload = st.file_uploader("Review file", type=UPLOAD_TYPES, max_upload_size=MAX_UPLOAD_MB, key="add_upload",
                              help=FORMATS_HELP, disabled=adder.busy())
    staged = _staged(upload)
    if staged is not None:
        spec = st.text_input("Column mapping (optional)", key="add_mapping", help=MAPPING_HELP,
                             placeholder="inferred from the file").strip()
        preview, mapping, error = _preview(staged, spec)
        if error:
            st.error(md_escape(error), icon=":material/error:")
        elif preview is not None:
            render_preview(preview, staged.name)
        blocked = adder.busy() or get_builder().busy()
        ready = preview is not None and preview.ok and preview.kept > 0
        if st.button("Add to the index", type="primary", icon=":material/library_add:", key="add_start",
                     disabled=blocked or not ready):
            reason = adder.start(current_settings(), staged, mapping)
            if reason:
                st.error(md_escape(reason), icon=":material/error:")
            else:
                st.session_state.pop("add_staged", None)  # the job owns the file now and deletes it
                st.rerun()
        if blocked:
            st.caption("Another file is being added or the index is being built; this one can go in after that.")
    st.fragment(run_every=1.0 if adder.busy() else None)(_progress)()


def _staged(upload: Any) -> Staged | None:
    """The upload on disk, written once per uploaded file; a replaced or removed upload's file is deleted."""
    staged: Staged | None = st.session_state.get("add_staged")
    if staged is not None and (upload is None or upload.file_id != staged.file_id):
        staged.discard()
        staged = None
        st.session_state.pop("add_staged", None)
        st.session_state.pop("add_preview", None)
    if upload is not None and staged is None:
        staged = stage(upload.file_id, upload.name, upload.getbuffer())
        st.session_state["add_staged"] = staged
    return staged


def _preview(staged: Staged, spec: str) -> tuple[Preview | None, ColumnMapping | None, str | None]:
    """(preview, mapping to add with, one-line error), computed once per file and mapping."""
    cached = st.session_state.get("add_preview")
    if cached and cached[0] == (staged.file_id, spec):
        return cached[1]
    try:
        mapping = ColumnMapping.parse(spec) if spec else None
        result = (preview_file(staged.path, mapping), mapping, None)
    except (ReaderError, ValueError) as exc:
        result = (None, None, " ".join(str(exc).replace(str(staged.path), staged.name).split()))
    st.session_state["add_preview"] = ((staged.file_id, spec), result)
    return result


def _use_mapping(spec: str) -> None:
    st.session_state["add_mapping"] = spec


def render_preview(preview: Preview, name: str) -> None:
    """The dry run as the page shows it."""
    with st.container(border=True, key="add_preview_box"):
        st.markdown(f"**{md_escape(name)}**: {md_escape(preview.container)}, {md_escape(preview.reader)}")
        if preview.mapping:
            st.code(preview.mapping, language=None)
        if preview.columns:
            st.markdown("\n".join(f"- {md_escape(line)}" for line in preview.columns))
        elif preview.labels:
            st.caption(f"Labels: {md_escape(preview.labels)}")
        read, kept, skipped = st.columns(3)
        read.metric("Rows read", f"{preview.rows:,}", help="The dry run reads the first rows only")
        kept.metric("Kept", f"{preview.kept:,}")
        skipped.metric("Skipped", f"{sum(preview.skipped.values()):,}")
        details = [f"{k}: {v:,}" for k, v in sorted(preview.sentiments.items())]
        details += [f"skipped, {k}: {v:,}" for k, v in sorted(preview.skipped.items())]
        details += [f"{k}: {v:,}" for k, v in sorted(preview.notes.items())]
        if details:
            st.caption(md_escape(" · ".join(details)))
        if preview.movie_count:
            more = ", …" if preview.movie_count > len(preview.movies) else ""
            st.caption(f"Movies ({preview.movie_count:,}): {md_escape(', '.join(preview.movies))}{more}")
        if preview.examples:
            st.dataframe(pd.DataFrame(preview.examples), hide_index=True, width="stretch")
        if preview.error:
            st.warning(md_escape(preview.error), icon=":material/help:")
            if preview.mapping:
                st.button("Use this mapping", key="add_use_mapping", on_click=_use_mapping, args=(preview.mapping,),
                          help="Copies the mapping above into the mapping field; check it against the examples")


def _progress() -> None:
    adder = get_adder()
    job, summary = adder.snapshot()
    if job is not None:
        name = md_escape(adder.file_name)
        if job.state == "running":
            elapsed = time.time() - job.started
            st.progress(job.fraction, text=f"Adding {name}: {md_escape(job.stage)} ({elapsed:.0f} s)")
            st.button("Cancel", key="add_cancel", on_click=adder.cancel, icon=":material/stop:")
        elif job.state == "done":
            st.success(f"Added {name}: {md_escape(job.stage)}. Its films are known to the chat now.",
                       icon=":material/check_circle:")
            for line in summary:
                st.caption(md_escape(line))
        elif job.state == "failed":
            st.error(f"Adding {name} failed: {md_escape(job.error)}", icon=":material/error:")
        else:
            st.caption(f"Adding {name}: {md_escape(job.stage)}")
    if st.session_state.get("_add_busy", False) != adder.busy():
        st.session_state["_add_busy"] = adder.busy()
        st.rerun()  # the job started or ended: redraw the whole page around it
