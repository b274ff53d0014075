"""About the model: the fine-tuned model's card and the latest evaluation, where they exist.

A card is a file anyone can edit, so every value from it is shown as text: escaped wherever Streamlit would read
Markdown (st.markdown, metric values, captions), and as data in the JSON viewer.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import streamlit as st

from assistant.model.tuned_layout import TUNED_DIRNAME, live_model_dir
from ui.markup import md_escape
from ui.runtime import current_settings, format_count

log = logging.getLogger(__name__)

CARD_FILE = "model_card.json"
EVAL_FILE = "eval.json"
HEADLINE = (("val_ppl_context", "Perplexity, with context"), ("val_ppl_no_context", "Perplexity, no context"),
            ("judge_acc", "Judge accuracy"), ("copy_rate_8gram", "Copied 8-grams"))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        st.warning(f"{md_escape(path.name)} is unreadable: {md_escape(str(exc))}")
        return None


def _metric_value(value: Any) -> str:
    """A card value as inert Markdown text."""
    if isinstance(value, float):
        return f"{value:.3g}"
    return "n/a" if value is None else md_escape(str(value))


def about_page() -> None:
    settings = current_settings()
    st.title("About the model")
    live = live_model_dir(Path(settings.models_dir) / TUNED_DIRNAME)
    card = _read_json(live / CARD_FILE) if live is not None else None
    if card is not None and not isinstance(card, dict):
        st.warning(f"{CARD_FILE} holds no model card (a JSON object)")
        card = None
    if card is None:
        st.info("No fine-tuned model yet: the chat uses the base model. Build one from the Chat page, "
                "or run python -m assistant.finetune in a terminal.", icon=":material/info:")
    else:
        base = str(card.get("base") or "unknown base").rstrip("/").rsplit("/", 1)[-1]
        facts = [f"**{md_escape(base)}** fine-tuned ({md_escape(str(card.get('method') or '?'))})"]
        if card.get("params"):
            facts.append(f"{md_escape(format_count(card['params']))} parameters")
        if card.get("train_minutes") is not None:
            facts.append(f"trained {_metric_value(card['train_minutes'])} min")
        if card.get("train_tokens"):
            facts.append(f"on {md_escape(format_count(card['train_tokens']))} tokens")
        st.markdown(", ".join(facts))
        shown = [(label, card.get(key)) for key, label in HEADLINE if key in card]
        for column, (label, value) in zip(st.columns(len(shown)) if shown else [], shown):
            column.metric(label, _metric_value(value))
        with st.expander("Model card (JSON)", icon=":material/description:"):
            st.json(card, expanded=1)
    reports = Path(settings.reports_dir)
    evaluation = _read_json(reports / EVAL_FILE)
    charts = sorted(reports.glob("*.png")) if reports.is_dir() else []
    st.subheader("Latest evaluation")
    if evaluation is None and not charts:
        st.caption(f"No evaluation yet (it is written to {md_escape(str(reports / EVAL_FILE))}).")
        return
    for chart in charts:
        st.image(str(chart), caption=md_escape(chart.stem.replace("_", " ")))
    if evaluation is not None:
        with st.expander("Evaluation (JSON)", icon=":material/analytics:"):
            st.json(evaluation, expanded=1)
