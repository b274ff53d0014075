"""Sidebar: how to answer (RAG, model, compare, sampling), quick prompts, and what is loaded."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from assistant.settings import MAX_DRAFTS, MAX_GUIDANCE, Sampling
from ui.markup import md_escape
from ui.runtime import Artifacts, format_count

MODEL_LABELS = {"tuned": "Fine-tuned", "base": "Base"}
SWITCH_LABELS = {"tuned": "Tuned", "base": "Base"}  # short enough to sit beside the RAG toggle


@dataclass(frozen=True)
class Controls:
    rag: bool
    model: str  # "tuned" | "base"
    compare: bool
    top_k: int
    temperature: float
    max_new_tokens: int
    drafts: int = 1  # >1: sample that many; keep the most critic-like of those that read clearly as asked
    guidance: float = 1.0  # >1: steer each word away from the opposite sentiment


def _defaults(top_k: int, sampling: Sampling) -> None:
    for key, value in (("rag", True), ("model", "tuned"), ("compare", False), ("top_k", top_k),
                       ("temperature", sampling.temperature),
                       ("max_new_tokens", min(max(round(sampling.max_new_tokens / 10) * 10, 20), 200)),  # slider grid
                       ("drafts", sampling.drafts), ("guidance", round(sampling.guidance * 4) / 4)):
        st.session_state.setdefault(key, value)


def render_controls(artifacts: Artifacts, default_top_k: int, sampling: Sampling) -> Controls:
    """The answer settings; RAG and the fine-tuned model are offered only where they exist."""
    _defaults(default_top_k, sampling)
    sb = st.sidebar
    sb.subheader("Answer with")
    row = sb.container(horizontal=True, vertical_alignment="center", gap="small")
    with row:
        if artifacts.has_index:
            rag = st.toggle("RAG", key="rag", persist_state="session")
        else:
            rag = st.toggle("RAG", value=False, disabled=True, key="rag_unavailable")
        if artifacts.has_tuned:
            model = st.segmented_control("Model", ["tuned", "base"], format_func=SWITCH_LABELS.get,
                                         key="model", required=True, persist_state="session",
                                         label_visibility="collapsed")
        else:
            model = st.segmented_control("Model", ["tuned", "base"], format_func=SWITCH_LABELS.get,
                                         default="base", required=True, disabled=True, key="model_unavailable",
                                         label_visibility="collapsed")
    if not artifacts.has_index:
        notes = ["RAG off: no review index yet"]
    else:
        notes = ["RAG: critics' reviews go into the prompt" if rag else "RAG off: the model answers alone"]
    if not artifacts.has_tuned:
        notes.append("base model: not fine-tuned yet")
    else:
        notes.append("fine-tuned on critics' reviews" if model == "tuned" else "base model, before fine-tuning")
    sb.caption(" · ".join(notes))
    compare = sb.toggle("Compare with and without RAG", key="compare", persist_state="session",
                        disabled=not artifacts.has_index,
                        help="Answer each message twice, side by side: with retrieved reviews and without")
    with sb.expander("Sampling", icon=":material/tune:"):
        top_k = st.slider("Reviews retrieved (top-k)", 1, 10, key="top_k", persist_state="session",
                          disabled=not artifacts.has_index)
        temperature = st.slider("Temperature", 0.0, 1.5, step=0.05, key="temperature", persist_state="session",
                                help="0 = always the most likely word; higher = more varied")
        max_new_tokens = st.slider("Length (tokens)", 20, 200, step=10, key="max_new_tokens",
                                   persist_state="session")
        drafts = st.slider("Drafts to choose from", 1, MAX_DRAFTS, key="drafts", persist_state="session",
                           help="1 streams the review live as it is written. More samples that many drafts at "
                                "once and keeps, of those that read clearly as the sentiment asked, the one most "
                                "like a critic's quote: it takes a little longer and shows once it is chosen.")
        guidance = st.slider("Sentiment guidance", 1.0, MAX_GUIDANCE, step=0.25, key="guidance",
                             persist_state="session",
                             help="1 = off. Higher steers each word away from what the opposite review would say: "
                                  "the asked-for sentiment comes through more reliably, still streamed, at about "
                                  "half the speed." + (f" Positive reviews get {sampling.praise_guidance:g} more (at "
                                                       f"most {MAX_GUIDANCE:g}): faint praise is the usual miss."
                                                       if sampling.praise_guidance else ""))
    return Controls(rag=bool(rag) and artifacts.has_index, model=model or "base",
                    compare=bool(compare) and artifacts.has_index, top_k=int(top_k),
                    temperature=float(temperature), max_new_tokens=int(max_new_tokens), drafts=int(drafts),
                    guidance=float(guidance))


def render_quick_prompts() -> str | None:
    """'Positive' / 'Negative' buttons that send a ready-made request (for the movie typed, if any)."""
    sb = st.sidebar
    sb.subheader("Quick request")
    movie = sb.text_input("Movie", key="quick_movie", placeholder="e.g. The Matrix (optional)",
                          label_visibility="collapsed", max_chars=120, persist_state="session")
    pos, neg = sb.columns(2)
    target = f'"{movie.strip()}"' if movie and movie.strip() else "a movie"
    if pos.button("Positive", icon=":material/thumb_up:", width="stretch", key="quick_positive"):
        return f"Write a positive review of {target}."
    if neg.button("Negative", icon=":material/thumb_down:", width="stretch", key="quick_negative"):
        return f"Write a negative review of {target}."
    return None


def render_status(status: dict[str, Any]) -> Any:
    """Names and sizes of what is loaded, so every reply can be read against it; returns the expander."""
    box = st.sidebar.expander("Model and index", icon=":material/memory:")
    models = status.get("models") or {}
    for key in ("tuned", "base"):
        info = models.get(key) or {}
        if not info.get("available"):
            box.markdown(f"**{MODEL_LABELS[key]}**: " + ("not built yet" if key == "tuned" else "unavailable"))
            continue
        name = md_escape(str(info.get("name") or "?").rstrip("/").rsplit("/", 1)[-1])
        if info.get("loaded"):
            box.markdown(f"**{MODEL_LABELS[key]}**: {name} · {format_count(info.get('params'))} params · "
                         f"{md_escape(str(info.get('device') or '?'))}")
        else:
            box.markdown(f"**{MODEL_LABELS[key]}**: {name} · loads on first use")
    store = status.get("store")
    if store:
        box.markdown(f"**Index**: {format_count(store.get('reviews'))} reviews · "
                     f"{format_count(store.get('movies'))} movies · {format_count(store.get('chunks'))} chunks")
        box.caption(md_escape(str(store.get("path") or "")))
    else:
        box.markdown("**Index**: not built yet, so RAG is off")
    for warning in status.get("warnings") or []:
        box.caption(f":material/warning: {md_escape(warning)}")
    return box
