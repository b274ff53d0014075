"""About the model: which fine-tuned model is live (the shipped one or the user's own), its card, and the latest
evaluation, labelled with the model it measured.

A card is a file anyone can edit, so every value from it is shown as text: escaped wherever Streamlit would read
Markdown (st.markdown, metric values, captions), and as data in the JSON viewer.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import streamlit as st

from assistant.model import shipped
from assistant.model.tuned_layout import TUNED_DIRNAME, live_model_dir
from ui.build import with_model_choice
from ui.markup import md_escape
from ui.runtime import current_settings, format_count, probe

log = logging.getLogger(__name__)

CARD_FILE = "model_card.json"
EVAL_FILE = "eval.json"
HEADLINE = (("val_ppl_context", "Perplexity, with context"), ("val_ppl_no_context", "Perplexity, no context"),
            ("judge_acc", "Judge accuracy"), ("copy_rate_8gram", "Copied 8-grams"))
ORIGIN_NAMES = {"own": "your fine-tune", "shipped": "the shipped fine-tuned model"}
# What an evaluation's summary of its tuned model and a model card must share to be the same model: the card is
# copied whole when an adapter is shipped, so these survive the trip from the training machine.
IDENTITY = ("base", "method", "train_minutes", "train_examples")


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


def _cards(settings: Any) -> dict[str, dict[str, Any] | None]:
    """The user's own model card and the shipped one (None where there is no such model or no readable card)."""
    own_dir = live_model_dir(Path(settings.models_dir) / TUNED_DIRNAME)
    own = _read_json(own_dir / CARD_FILE) if own_dir is not None else None
    ship = _read_json(shipped.shipped_dir() / CARD_FILE) if shipped.applies_to(settings) else None
    return {origin: card if isinstance(card, dict) else None for origin, card in (("own", own), ("shipped", ship))}


def same_model(summary: dict[str, Any] | None, card: dict[str, Any] | None) -> bool:
    """Whether an evaluation's summary of its tuned model describes the model of this card."""
    if not summary or not card:
        return False
    shared = [k for k in IDENTITY if summary.get(k) is not None and card.get(k) is not None]
    return "base" in shared and len(shared) >= 2 and all(summary[k] == card[k] for k in shared)


def _describe(card: dict[str, Any]) -> str:
    base = str(card.get("base") or "unknown base").rstrip("/").rsplit("/", 1)[-1]
    facts = [f"**{md_escape(base)}** fine-tuned ({md_escape(str(card.get('method') or '?'))})"]
    if card.get("params"):
        facts.append(f"{md_escape(format_count(card['params']))} parameters")
    if card.get("train_minutes") is not None:
        facts.append(f"trained {_metric_value(card['train_minutes'])} min")
    if card.get("train_tokens"):
        facts.append(f"on {md_escape(format_count(card['train_tokens']))} tokens")
    return ", ".join(facts)


def _show_card(card: dict[str, Any]) -> None:
    st.markdown(_describe(card))
    shown = [(label, card.get(key)) for key, label in HEADLINE if key in card]
    for column, (label, value) in zip(st.columns(len(shown)) if shown else [], shown):
        column.metric(label, _metric_value(value))
    with st.expander("Model card (JSON)", icon=":material/description:"):
        st.json(card, expanded=1)


def about_page() -> None:
    settings = with_model_choice(current_settings())
    st.title("About the model")
    origin = probe(settings).tuned_origin
    cards = _cards(settings)
    live = cards.get(origin) if origin else None
    if live is None:
        st.info("No fine-tuned model yet: the chat uses the base model. Build one from the Chat page, "
                "or run python -m assistant.finetune in a terminal.", icon=":material/info:")
    else:
        st.subheader(f"Live now: {ORIGIN_NAMES[origin]}")
        _show_card(live)
        other = "shipped" if origin == "own" else "own"
        if cards.get(other) is not None:
            st.caption(f"Also here: {ORIGIN_NAMES[other]} ({_describe(cards[other])}); switch under "
                       "*Fine-tune your own* in the Chat page's sidebar.")
    reports = Path(settings.reports_dir)
    evaluation = _read_json(reports / EVAL_FILE)
    charts = sorted(reports.glob("*.png")) if reports.is_dir() else []
    st.subheader("Latest evaluation")
    if evaluation is None and not charts:
        st.caption(f"No evaluation yet (it is written to {md_escape(str(reports / EVAL_FILE))}).")
        return
    st.caption(_whose(evaluation, cards, origin))
    for chart in charts:
        st.image(str(chart), caption=md_escape(chart.stem.replace("_", " ")))
    if evaluation is not None:
        with st.expander("Evaluation (JSON)", icon=":material/analytics:"):
            st.json(evaluation, expanded=1)


def _whose(evaluation: dict[str, Any] | None, cards: dict[str, dict[str, Any] | None], live: str | None) -> str:
    """One line above the evaluation's charts and numbers: which fine-tuned model they measured."""
    models = (evaluation or {}).get("models") if isinstance(evaluation, dict) else None
    summary = models.get("tuned") if isinstance(models, dict) else None
    if not isinstance(summary, dict) or not summary.get("available", True) or not summary.get("base"):
        return "These charts and numbers measured no fine-tuned model (only the base model, if any)."
    matches = [origin for origin, card in cards.items() if same_model(summary, card)]
    what = f"{md_escape(str(summary.get('base')))}, {md_escape(str(summary.get('method') or '?'))}, " \
           f"trained {_metric_value(summary.get('train_minutes'))} min"
    if live in matches:
        return f"These charts and numbers measured the live model, {ORIGIN_NAMES[live]} ({what})."
    if matches:
        return f"These charts and numbers measured {ORIGIN_NAMES[matches[0]]} ({what}), not the live model."
    return f"These charts and numbers measured another fine-tuned model ({what}), neither the live one nor the " \
           "other one here: run python -m assistant.evaluate to measure the live one."
