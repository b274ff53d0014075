"""The model card beside the tuned weights: model_card.json for programs, model_card.md for people."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assistant.data.locks import write_text_atomic
from assistant.model.prompts import SENTIMENTS

CARD_JSON = "model_card.json"
CARD_MD = "model_card.md"


def write_card(card: dict[str, Any], out: Path) -> None:
    """model_card.json (machine-readable) and model_card.md (for people), beside the weights. Each is replaced
    whole: the evaluation rewrites the card of the live model, which the page may be reading."""
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / CARD_JSON, json.dumps(card, indent=2, default=str))
    write_text_atomic(out / CARD_MD, render_markdown(card))


def _fmt(value: Any) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _acc_table(acc: dict[str, dict[str, float]] | None) -> list[str]:
    if not acc:
        return ["not measured"]
    lines = ["| asked for | with context | without context |", "|---|---|---|"]
    for sentiment in SENTIMENTS:
        cell = acc.get(sentiment, {})
        lines.append(f"| {sentiment} | {_fmt(cell.get('context'))} | {_fmt(cell.get('no_context'))} |")
    return lines


def _best_of_note(run: dict[str, Any] | None) -> list[str]:
    """How many requests the best-of numbers rest on, and the single-sample accuracy on those same requests."""
    if not run:
        return []
    lines = [f"{run['n_per_cell']} requests per cell, {run['drafts']} drafts each, {_fmt(run.get('minutes'))} min. "
             f"Single samples on the same requests, for comparison:", ""]
    for name, acc in (run.get("single_sample_same_requests") or {}).items():
        lines += [f"{name}:", "", *_acc_table(acc), ""]
    return lines


def _warm_start_note(card: dict[str, Any]) -> str:
    earlier = card.get("warm_start")
    if not earlier:
        return ""
    return (f", continuing an earlier adapter ({_fmt(earlier.get('train_minutes'))} min, "
            f"{_fmt(earlier.get('train_tokens'))} tokens): {_fmt(card.get('train_minutes_total'))} min and "
            f"{_fmt(card.get('train_tokens_total'))} tokens in all")


def _label_filter_note(card: dict[str, Any]) -> str:
    kept = card.get("label_filter") or {}
    if not kept.get("threshold"):
        return ""
    return (f" Training reviews: the {_fmt(kept.get('kept'))} of {_fmt(kept.get('of'))} whose label a cross-fitted "
            f"embedding probe reads with confidence >= {kept['threshold']} ({_fmt(kept.get('kept_positive'))} "
            f"positive, {_fmt(kept.get('kept_negative'))} negative), sampled half and half.")


def _how(guidance: Any) -> str:
    scale = float(guidance or 1.0)
    if scale == 1.0:
        return "plain sampling, no sentiment guidance"
    return f"sentiment guidance {scale:g}: each token steered away from the opposite request's"


def render_markdown(card: dict[str, Any]) -> str:
    lines = [f"# Model card: movie-review voice ({card.get('base')} + {card.get('method', '?')})", "",
             f"Base `{card.get('base')}` from `{card.get('base_source')}`, {_fmt(card.get('params'))} parameters; "
             f"trained {_fmt(card.get('train_minutes'))} min on {_fmt(card.get('train_tokens'))} tokens "
             f"({_fmt(card.get('train_examples'))} examples, {_fmt(card.get('train_steps'))} steps)"
             f"{_warm_start_note(card)}.{_label_filter_note(card)}", "",
             "| metric | value |", "|---|---|"]
    for key in ("val_ppl_context", "val_ppl_no_context", "base_val_ppl_context", "base_val_ppl_no_context",
                "judge_acc", "distinct_1", "distinct_2", "copy_rate_8gram", "base_copy_rate_8gram",
                "train_tokens_per_s", "gen_tokens_per_s", "gen_tokens_per_s_batched"):
        lines.append(f"| {key} | {_fmt(card.get(key))} |")
    lines += ["", f"## Sentiment control, tuned model ({_how(card.get('guidance'))})",
              *_acc_table(card.get("sentiment_acc")),
              "", f"## Sentiment control, base model before fine-tuning ({_how(card.get('base_guidance'))})",
              *_acc_table(card.get("base_sentiment_acc"))]
    if card.get("sentiment_acc_unguided"):
        lines += ["", "## Sentiment control, tuned model, without guidance (same requests and seed)",
                  *_acc_table(card.get("sentiment_acc_unguided"))]
    if card.get("base_numbers_from") not in (None, "this evaluation"):
        lines += ["", f"Base numbers from the card evaluated at {card['base_numbers_from']}: the same base, requests "
                      f"and seeds, so the same computation (`--reuse-base`), sampled "
                      f"{'as' if card.get('base_guidance') == card.get('guidance') else 'unlike'} the tuned model's "
                      f"numbers above ({_how(card.get('base_guidance'))})."]
    if card.get("best_of_n"):
        n = card["best_of_n"]
        lines += ["", f"## Best of {n} drafts, ranked by the embedding probe (what the chat does with drafts={n})",
                  "", "Tuned model:", "", *_acc_table(card.get("sentiment_acc_best_of")),
                  "", "Base model:", "", *_acc_table(card.get("base_sentiment_acc_best_of")), "",
                  *_best_of_note(card.get("best_of_eval")),
                  f"The probe reads MiniLM vectors and the judge reads words (TF-IDF); both are trained on the "
                  f"training split only. Drafts generated on: {card.get('generated_on')}."]
    if card.get("samples"):
        lines += ["", "## Samples (held-out movies)"]
        for s in card["samples"]:
            lines += [f"- **{s['sentiment']}, {s['mode']}**, {s['movie'] or 'untitled'}",
                      f"  - tuned: {s['tuned'] or '(empty)'}", f"  - base: {s['base'] or '(empty)'}"]
    lines += ["", "Judge: TF-IDF + logistic regression trained on the training split only; accuracy on the "
              "held-out movies above. Validation movies are disjoint from training movies.", ""]
    return "\n".join(lines)


