"""Evaluate a tuned model and write `model_card.json` (+ `model_card.md`) beside its weights.

Numbers: validation perplexity with and without retrieved context, sentiment-control accuracy
(judged by a classifier trained on the training split) for the tuned and the base model,
diversity, verbatim copying, and training/generation speed on this machine.

    python -m assistant.model_card [--dir models_dir/tuned] [--n 200]   # re-run on a saved model
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from assistant.prompts import SENTIMENTS, ReviewRequest
from assistant.training_data import DataConfig, Example, Split, context_for, make_example, sample_balanced

log = logging.getLogger(__name__)

CARD_JSON = "model_card.json"
CARD_MD = "model_card.md"
JUDGE_BASENAME = "judge"
MODES = ("context", "no_context")
REQUIRED_KEYS = ("base", "params", "train_tokens", "val_ppl_context", "val_ppl_no_context", "sentiment_acc",
                 "base_sentiment_acc", "judge_acc", "distinct_1", "distinct_2", "copy_rate_8gram",
                 "train_tokens_per_s", "gen_tokens_per_s")


@dataclass(frozen=True)
class EvalConfig:
    n_per_cell: int = 200  # generations per sentiment and mode
    n_ppl: int = 200  # validation reviews scored for perplexity
    max_new_tokens: int = 64  # critic quotes run 20-60 tokens
    batch_size: int = 16
    stream_samples: int = 3  # single-stream generations timed for gen_tokens_per_s
    seed: int = 7
    max_len: int = 384
    guidance: float = 1.0  # sentiment guidance scale the generations use (1 = plain sampling)
    unguided: bool = True  # with guidance on, also measure the tuned model without it, for comparison


# ---- pieces ----------------------------------------------------------------------------------

@torch.inference_mode()
def perplexity(model: Any, tokenizer: Any, examples: Sequence[Example], *, max_len: int = 384,
               batch_tokens: int = 4096) -> float:
    """exp(mean NLL) over completion tokens (review + end marker) of the examples."""
    from assistant.finetune import collate, encode_example, lm_loss, make_batches

    encoded = [e for e in (encode_example(x, tokenizer, max_len) for x in examples) if e is not None]
    if not encoded:
        return float("nan")
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    total_nll, total_tokens = 0.0, 0
    model.eval()
    for batch_ids in make_batches([len(e.input_ids) for e in encoded], batch_tokens, seed=0):
        batch = {k: v.to(device) for k, v in collate([encoded[i] for i in batch_ids], pad_id).items()}
        total_nll += float(lm_loss(model, batch, reduction="sum"))
        total_tokens += int((batch["labels"][:, 1:] != -100).sum())
    return math.exp(total_nll / total_tokens)


def validation_pairs(split: Split, neighbours: Any, data: DataConfig, n: int, seed: int) -> tuple[list[Example], list[Example]]:
    """The same held-out reviews with and without retrieved context (only those that get some context)."""
    docs = sample_balanced(split.val, min(n * 2, len(split.val)), titled_share=0.8, seed=seed)
    with_ctx, without = [], []
    for doc in docs:
        context = context_for(doc, neighbours, data.context_k) if neighbours else []
        if context:
            with_ctx.append(make_example(doc, context))
            without.append(make_example(doc, []))
        if len(with_ctx) == n:
            break
    return with_ctx, without


def eval_requests(split: Split, neighbours: Any, data: DataConfig, n: int, seed: int) -> dict[tuple[str, str], list[ReviewRequest]]:
    """For n held-out movies: ask for each sentiment, with and without their retrieved context."""
    docs = sample_balanced(split.val, min(n, len(split.val)), titled_share=0.8, seed=seed + 1)
    cells: dict[tuple[str, str], list[ReviewRequest]] = {(s, m): [] for s in SENTIMENTS for m in MODES}
    for doc in docs:
        context = context_for(doc, neighbours, data.context_k) if neighbours else []
        movie = doc.metadata.get("movie") or None
        for sentiment in SENTIMENTS:
            cells[(sentiment, "context")].append(ReviewRequest(sentiment, movie, None, context))
            cells[(sentiment, "no_context")].append(ReviewRequest(sentiment, movie, None, []))
    return cells


Cells = dict[tuple[str, str], list[ReviewRequest]]
Drafts = dict[tuple[str, str], list[list[str]]]  # per cell, per request: the sampled drafts


def generate_drafts(generator: Any, cells: Cells, config: EvalConfig, drafts: int = 1,
                    guidance: float | None = None) -> Drafts:
    """`drafts` samples per request, all cells in one batched pass (draft 0 alone is a plain single sample).
    `guidance` overrides config.guidance."""
    keys = list(cells)
    flat = [r for key in keys for r in cells[key] for _ in range(drafts)]
    texts = generator.generate_many(flat, max_new_tokens=config.max_new_tokens, seed=config.seed,
                                    batch_size=config.batch_size, progress=True,
                                    guidance=config.guidance if guidance is None else guidance)
    out: Drafts = {}
    start = 0
    for key in keys:
        out[key] = [texts[start + i * drafts:start + (i + 1) * drafts] for i in range(len(cells[key]))]
        start += len(cells[key]) * drafts
    return out


def accuracy(judge: Any, texts: dict[tuple[str, str], list[str]]) -> dict[str, dict[str, float]]:
    """Per sentiment and mode: the share of texts the judge reads as the asked-for sentiment (empty = miss)."""
    acc: dict[str, dict[str, float]] = {s: {} for s in SENTIMENTS}
    for (sentiment, mode), generated in texts.items():
        predicted = judge.predict(generated) if generated else []
        hits = [bool(t.strip()) and p == sentiment for t, p in zip(generated, predicted)]
        acc[sentiment][mode] = round(sum(hits) / len(hits), 4) if hits else 0.0
    return acc


def first_drafts(drafts: Drafts) -> dict[tuple[str, str], list[str]]:
    return {key: [d[0] for d in per_request] for key, per_request in drafts.items()}


def reranked(drafts: Drafts, positive_probability: Any) -> dict[tuple[str, str], list[str]]:
    """Per request, the draft a scorer finds most on-target (as the chat's best-of-n does); empty drafts last."""
    out: dict[tuple[str, str], list[str]] = {}
    for (sentiment, mode), per_request in drafts.items():
        flat = [t for d in per_request for t in d]
        scores = list(positive_probability(flat)) if flat else []
        chosen, i = [], 0
        for d in per_request:
            own = [s if sentiment == "positive" else 1.0 - s for s in scores[i:i + len(d)]]
            i += len(d)
            best = max(range(len(d)), key=lambda j: (bool(d[j].strip()), own[j]))
            chosen.append(d[best])
        out[(sentiment, mode)] = chosen
    return out


def sentiment_control(generator: Any, judge: Any, cells: Cells,
                      config: EvalConfig) -> tuple[dict[str, dict[str, float]], dict[tuple[str, str], list[str]]]:
    """Generate for every cell in one batched pass; accuracy = share the judge reads as the asked sentiment."""
    texts = first_drafts(generate_drafts(generator, cells, config))
    return accuracy(judge, texts), texts


# ---- generations made on another machine (a GPU) ---------------------------------------------------

def _key(key: tuple[str, str]) -> str:
    return "|".join(key)


def write_requests(cells: Cells, path: Path, config: EvalConfig) -> None:
    """The evaluation requests (held-out movies, their retrieved context) as JSON, to generate elsewhere."""
    payload = {"config": asdict(config), "cells": {_key(k): [asdict(r) for r in v] for k, v in cells.items()}}
    path.write_text(json.dumps(payload))


def read_requests(path: Path) -> tuple[Cells, EvalConfig]:
    payload = json.loads(path.read_text())
    cells = {tuple(k.split("|")): [ReviewRequest(**r) for r in v] for k, v in payload["cells"].items()}
    return cells, EvalConfig(**payload["config"])  # type: ignore[return-value]


def write_generations(path: Path, models: dict[str, Drafts], **extra: Any) -> None:
    payload = {"models": {m: {_key(k): v for k, v in d.items()} for m, d in models.items()}, **extra}
    path.write_text(json.dumps(payload))


def read_generations(path: Path, cells: Cells) -> tuple[dict[str, Drafts], dict[str, Any]]:
    """Drafts written by `--generate`; ValueError when they were made for other requests."""
    payload = json.loads(path.read_text())
    models: dict[str, Drafts] = {}
    for name, by_key in payload.pop("models").items():
        drafts = {tuple(k.split("|")): v for k, v in by_key.items()}
        if set(drafts) != set(cells) or any(len(drafts[k]) != len(cells[k]) for k in cells):
            raise ValueError(f"{path}: the {name} generations were made for other requests; "
                             f"export them again with --export-requests")
        models[name] = drafts  # type: ignore[assignment]
    return models, payload


def stream_speed(generator: Any, requests: Sequence[ReviewRequest], max_new_tokens: int) -> float:
    """Tokens per second of single-request streaming, what a chat user sees."""
    from assistant.generate import GenerationStats

    generator.stats = GenerationStats()
    for i, request in enumerate(requests):
        for _ in generator.stream(request, max_new_tokens=max_new_tokens, seed=i):
            pass
    return round(generator.stats.tokens_per_s, 1)


def evaluate_model(model: Any, tokenizer: Any, *, judge: Any, cells: dict, ppl_pairs: tuple[list, list],
                   config: EvalConfig, label: str, drafts: Drafts | None = None,
                   scorer: Any = None) -> dict[str, Any]:
    """All per-model numbers: perplexities, sentiment control (single sample, and best-of-n when there are
    several drafts and a scorer), generation speeds, the generations. `drafts` made elsewhere skip generating."""
    from assistant.generate import GenerationStats, ReviewGenerator

    started = time.perf_counter()
    with_ctx, without = ppl_pairs
    result: dict[str, Any] = {
        "val_ppl_context": round(perplexity(model, tokenizer, with_ctx, max_len=config.max_len), 2),
        "val_ppl_no_context": round(perplexity(model, tokenizer, without, max_len=config.max_len), 2),
    }
    log.info("%s: validation perplexity %.2f with context, %.2f without", label,
             result["val_ppl_context"], result["val_ppl_no_context"])
    generator = ReviewGenerator(model, tokenizer, guidance=config.guidance)
    generator.stats = GenerationStats()
    if drafts is None:
        drafts = generate_drafts(generator, cells, config)
        result["gen_tokens_per_s_batched"] = round(generator.stats.tokens_per_s, 1)
    texts = first_drafts(drafts)
    acc = accuracy(judge, texts)
    result["sentiment_acc"] = acc
    result["texts"] = texts
    if config.guidance != 1.0 and config.unguided:
        result["sentiment_acc_unguided"] = accuracy(judge, first_drafts(generate_drafts(generator, cells, config,
                                                                                        guidance=1.0)))
        log.info("%s: sentiment accuracy without guidance %s", label, result["sentiment_acc_unguided"])
    n_drafts = min((len(d) for per_request in drafts.values() for d in per_request), default=1)
    if n_drafts > 1 and scorer is not None:
        result["sentiment_acc_best_of"] = accuracy(judge, reranked(drafts, scorer))
        result["best_of_n"] = n_drafts
        log.info("%s: best of %d drafts: %s", label, n_drafts, result["sentiment_acc_best_of"])
    if "gen_tokens_per_s_batched" not in result:  # drafts made elsewhere: time one batch on this machine
        generator.stats = GenerationStats()
        generator.generate_many(cells[(SENTIMENTS[0], "context")][: config.batch_size],
                                max_new_tokens=config.max_new_tokens, seed=config.seed, batch_size=config.batch_size)
        result["gen_tokens_per_s_batched"] = round(generator.stats.tokens_per_s, 1)
    first = cells[(SENTIMENTS[0], "context")][: config.stream_samples]
    result["gen_tokens_per_s"] = stream_speed(generator, first, config.max_new_tokens) if first else 0.0
    log.info("%s: sentiment accuracy %s; %.1f tok/s streaming, %.1f tok/s batched (%.0f s)", label, acc,
             result["gen_tokens_per_s"], result["gen_tokens_per_s_batched"], time.perf_counter() - started)
    return result


def load_reference_base(card: dict[str, Any], settings: Any, device: str | None) -> tuple[Any, Any]:
    """The base model as it was before fine-tuning (scratch: a fresh random init with the same tokenizer)."""
    from assistant.bases import load_base

    model, tokenizer, _ = load_base(card["base"], settings, device=device)
    return model, tokenizer


# ---- the card ----------------------------------------------------------------------------------

def evaluate_and_write(model: Any, tokenizer: Any, card: dict[str, Any], out: Path, *, settings: Any, store: Any,
                       split: Split, data: DataConfig, n_per_cell: int = 200, device: str | None = None,
                       config: EvalConfig | None = None, base: tuple[Any, Any] | None = None,
                       neighbours: Any = None, generations: Path | None = None,
                       scorer: Any = None, base_card: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the whole evaluation, add it to `card`, write the card files, return the card.

    `neighbours` overrides the store's retrieval (tests); `base` skips reloading the base model;
    `generations` holds drafts made elsewhere (`--generate` on a GPU machine) for these same requests;
    `scorer` (texts -> P(positive)) ranks several drafts, giving best-of-n accuracy beside the single-sample one;
    `base_card`, an earlier card of the same base on the same requests, supplies the base model's numbers
    (the same seeded computation) instead of running it again.
    """
    from assistant.judge import SentimentJudge
    from assistant.metrics import NgramIndex, distinct_n
    from assistant.training_data import store_neighbours

    config = config or EvalConfig(n_per_cell=n_per_cell)
    started = time.perf_counter()
    if neighbours is None and store is not None:
        neighbours = store_neighbours(store)
    judge = SentimentJudge.train([d.page_content for d in split.train], [d.metadata["sentiment"] for d in split.train],
                                 eval_texts=[d.page_content for d in split.val],
                                 eval_labels=[d.metadata["sentiment"] for d in split.val])
    judge.save(out / JUDGE_BASENAME)
    ppl_pairs = validation_pairs(split, neighbours, data, config.n_ppl, config.seed)
    cells = eval_requests(split, neighbours, data, config.n_per_cell, config.seed)
    made: dict[str, Drafts] = {}
    made_info: dict[str, Any] = {}
    if generations is not None:
        made, made_info = read_generations(generations, cells)
        if float(made_info.get("guidance", 1.0)) != config.guidance:
            raise ValueError(f"{generations} was generated with guidance {made_info.get('guidance', 1.0)}; "
                             f"evaluate it with --guidance {made_info.get('guidance', 1.0)}")
        config = replace(config, unguided=False)  # the comparison would be generated here, on the CPU
    tuned = evaluate_model(model, tokenizer, judge=judge, cells=cells, ppl_pairs=ppl_pairs, config=config,
                           label="tuned", drafts=made.get("tuned"), scorer=scorer)
    base_config = replace(config, unguided=False)  # the base's unguided numbers: an earlier card, or guidance 1
    if base_card is not None:
        base_eval = base_numbers(base_card, card, config, cells)
    else:
        base_model, base_tokenizer = base or load_reference_base(card, settings, device)
        base_eval = evaluate_model(base_model, base_tokenizer, judge=judge, cells=cells, ppl_pairs=ppl_pairs,
                                   config=base_config, label="base", drafts=made.get("base"), scorer=scorer)
        del base_model
    generated = [t for texts in tuned["texts"].values() for t in texts]
    index = NgramIndex((d.page_content for d in split.train), n=8)
    if base_card is None:
        base_generated = [t for texts in base_eval["texts"].values() for t in texts]
        base_eval["distinct_2"] = round(distinct_n(base_generated, 2), 4)
        base_eval["copy_rate_8gram"] = round(index.copy_rate(base_generated), 4)
    card.update({
        "val_ppl_context": tuned["val_ppl_context"], "val_ppl_no_context": tuned["val_ppl_no_context"],
        "sentiment_acc": tuned["sentiment_acc"], "base_sentiment_acc": base_eval["sentiment_acc"],
        "guidance": config.guidance, "sentiment_acc_unguided": tuned.get("sentiment_acc_unguided"),
        "base_guidance": base_eval.get("guidance", base_config.guidance),
        "judge_acc": round(judge.accuracy or 0.0, 4),
        "distinct_1": round(distinct_n(generated, 1), 4), "distinct_2": round(distinct_n(generated, 2), 4),
        "copy_rate_8gram": round(index.copy_rate(generated), 4),
        "gen_tokens_per_s": tuned["gen_tokens_per_s"], "gen_tokens_per_s_batched": tuned["gen_tokens_per_s_batched"],
        "base_val_ppl_context": base_eval["val_ppl_context"], "base_val_ppl_no_context": base_eval["val_ppl_no_context"],
        "base_distinct_2": base_eval["distinct_2"], "base_copy_rate_8gram": base_eval["copy_rate_8gram"],
        "base_numbers_from": base_eval.get("from", "this evaluation"),
        "empty_generations": sum(not t.strip() for t in generated),
        "eval": {"n_per_cell": config.n_per_cell, "n_ppl": len(ppl_pairs[0]), "max_new_tokens": config.max_new_tokens,
                 "judge_train": len(split.train), "judge_test": len(split.val), "seed": config.seed,
                 "guidance": config.guidance,
                 "minutes": round((time.perf_counter() - started) / 60, 1)},
        "sentiment_acc_best_of": tuned.get("sentiment_acc_best_of"),
        "base_sentiment_acc_best_of": base_eval.get("sentiment_acc_best_of"), "best_of_n": tuned.get("best_of_n"),
        "best_of_scorer": "MiniLM embedding probe (sentiment_probe.json)" if tuned.get("best_of_n") else None,
        "generated_on": made_info.get("device", "this machine"),
        "samples": _samples(cells, tuned["texts"], base_eval["texts"]),
        "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    write_card(card, out)
    return card


def base_numbers(base_card: dict[str, Any], card: dict[str, Any], config: EvalConfig, cells: Cells) -> dict[str, Any]:
    """The base model's numbers from an earlier card, when it evaluated the same base on the same requests."""
    earlier = base_card.get("eval") or {}
    same = (base_card.get("base") == card.get("base") and earlier.get("n_per_cell") == config.n_per_cell
            and earlier.get("seed") == config.seed and earlier.get("max_new_tokens") == config.max_new_tokens
            and base_card.get("data_config", {}).get("seed") == card.get("data_config", {}).get("seed"))
    if not same or not base_card.get("base_sentiment_acc"):
        raise ValueError("the earlier card evaluated another base or other requests: run without --reuse-base")
    texts: dict[tuple[str, str], list[str]] = {key: [""] * len(reqs) for key, reqs in cells.items()}
    for sample in base_card.get("samples") or []:  # the few base samples the card kept, for the new card's table
        key = (sample["sentiment"], sample["mode"])
        row = next((i for i, r in enumerate(cells.get(key, [])) if r.movie == sample["movie"]), None)
        if row is not None:
            texts[key][row] = sample["base"]
    return {"sentiment_acc": base_card["base_sentiment_acc"], "val_ppl_context": base_card["base_val_ppl_context"],
            "val_ppl_no_context": base_card["base_val_ppl_no_context"], "distinct_2": base_card.get("base_distinct_2"),
            "copy_rate_8gram": base_card.get("base_copy_rate_8gram"), "texts": texts,
            "sentiment_acc_best_of": base_card.get("base_sentiment_acc_best_of"),
            "guidance": float(base_card.get("base_guidance") or earlier.get("guidance") or 1.0),  # may differ: said
            "from": base_card.get("evaluated_at", "an earlier card")}


def _samples(cells: dict, tuned: dict, base: dict, per_cell: int = 2) -> list[dict[str, Any]]:
    rows = []
    for (sentiment, mode), requests in cells.items():
        for i in range(min(per_cell, len(requests))):
            rows.append({"sentiment": sentiment, "mode": mode, "movie": requests[i].movie,
                         "tuned": tuned[(sentiment, mode)][i], "base": base[(sentiment, mode)][i]})
    return rows


def write_card(card: dict[str, Any], out: Path) -> None:
    """model_card.json (machine-readable) and model_card.md (for people), beside the weights."""
    out.mkdir(parents=True, exist_ok=True)
    (out / CARD_JSON).write_text(json.dumps(card, indent=2, default=str))
    (out / CARD_MD).write_text(render_markdown(card))


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


def open_saved(settings: Any, out: Path,
               device: str | None) -> tuple[Any, Any, dict[str, Any], Any, Split, DataConfig]:
    """The saved tuned model, its tokenizer and card, the store, and the data split its card records."""
    from assistant.bases import BaseModelError, load_tuned
    from assistant.training_data import open_split

    loaded = load_tuned(settings, device=device, path=out)
    if loaded is None:
        raise BaseModelError(f"no tuned model in {out}: train one with `python -m assistant.finetune`")
    model, tokenizer, card = loaded
    data = DataConfig(**card.get("data_config", {}))
    store, split = open_split(settings, data)
    return model, tokenizer, card, store, split, data


def probe_scorer(settings: Any, out: Path) -> Any:
    """texts -> P(positive) by the embedding probe saved beside the model, or None when it has none."""
    from assistant.embeddings import make_embeddings
    from assistant.sentiment_probe import SentimentProbe

    probe = SentimentProbe.find(out)
    if probe is None:
        return None
    loaded: list[Any] = []  # the embedding model loads on the first call: single-sample runs never need it

    def score(texts: Sequence[str]) -> list[float]:
        if not loaded:
            loaded.append(make_embeddings(settings))
        return probe.score_texts(list(texts), loaded[0])

    return score


def evaluate_saved(settings: Any, out: Path, *, n_per_cell: int = 200, device: str | None = None,
                   generations: Path | None = None, reuse_base: Path | None = None, guidance: float = 1.0,
                   unguided: bool = True) -> dict[str, Any]:
    """Re-run the evaluation on a saved tuned model, with the data split recorded in its card.

    Here each request gets one sample; best-of-n numbers come from `generations` with several drafts
    each, or from `evaluate_best_of`.
    """
    model, tokenizer, card, store, split, data = open_saved(settings, out, device)
    base_card = json.loads(reuse_base.read_text()) if reuse_base else None
    return evaluate_and_write(model, tokenizer, card, out, settings=settings, store=store, split=split, data=data,
                              device=device, generations=generations,
                              config=EvalConfig(n_per_cell=n_per_cell, guidance=guidance, unguided=unguided),
                              scorer=probe_scorer(settings, out), base_card=base_card)


def evaluate_best_of(settings: Any, out: Path, *, n_per_cell: int, drafts: int, with_base: bool = False,
                     device: str | None = None, guidance: float = 1.0) -> dict[str, Any]:
    """Best-of-n sentiment accuracy on the card's held-out requests (the first n per cell), added to the card.

    Each request gets `drafts` samples in one batch; the embedding probe picks one, the judge reads it,
    exactly as the chat does with drafts=n. Costs n times the single-sample evaluation, hence fewer requests.
    """
    from assistant.generate import ReviewGenerator
    from assistant.judge import SentimentJudge
    from assistant.training_data import store_neighbours

    model, tokenizer, card, store, split, data = open_saved(settings, out, device)
    scorer = probe_scorer(settings, out)
    if scorer is None:
        raise ValueError(f"{out} has no sentiment probe to rank drafts with; retrain with python -m assistant.finetune")
    judge = SentimentJudge.load(out / JUDGE_BASENAME)
    config = EvalConfig(n_per_cell=n_per_cell, guidance=guidance)
    started = time.perf_counter()
    cells = eval_requests(split, store_neighbours(store), data, config.n_per_cell, config.seed)
    models = {"tuned": (model, tokenizer)}
    if with_base:
        models["base"] = load_reference_base(card, settings, device)
    results: dict[str, Any] = {}
    for name, (m, tok) in models.items():
        made = generate_drafts(ReviewGenerator(m, tok), cells, config, drafts)
        results[name] = {"single": accuracy(judge, first_drafts(made)), "best_of": accuracy(judge, reranked(made, scorer))}
        log.info("%s: single %s, best of %d %s", name, results[name]["single"], drafts, results[name]["best_of"])
    card.update({
        "best_of_n": drafts, "best_of_scorer": "MiniLM embedding probe (sentiment_probe.json)",
        "sentiment_acc_best_of": results["tuned"]["best_of"],
        "base_sentiment_acc_best_of": results.get("base", {}).get("best_of"),
        "best_of_eval": {"n_per_cell": n_per_cell, "drafts": drafts, "seed": config.seed, "guidance": guidance,
                         "single_sample_same_requests": {k: v["single"] for k, v in results.items()},
                         "minutes": round((time.perf_counter() - started) / 60, 1)},
        "generated_on": card.get("generated_on") or "this machine",
    })
    write_card(card, out)
    return card


def export_requests(settings: Any, out: Path, path: Path, n_per_cell: int, guidance: float = 1.0) -> int:
    """The evaluation's requests, with their retrieved context, for `--generate` on another machine."""
    from assistant.training_data import open_split, store_neighbours

    card = json.loads((out / CARD_JSON).read_text())
    data = DataConfig(**card.get("data_config", {}))
    store, split = open_split(settings, data)
    config = EvalConfig(n_per_cell=n_per_cell, guidance=guidance)  # the drafts are sampled as the card will say
    write_requests(eval_requests(split, store_neighbours(store), data, config.n_per_cell, config.seed), path, config)
    print(f"wrote the evaluation requests to {path}")
    return 0


def generate_elsewhere(settings: Any, out: Path, requests: Path, target: Path, drafts: int,
                       device: str | None) -> int:
    """Drafts from the tuned model and its base for exported requests: needs no store, judge or embeddings."""
    from assistant.bases import BaseModelError, load_tuned
    from assistant.generate import ReviewGenerator

    cells, config = read_requests(requests)
    config = EvalConfig(**{**asdict(config), "batch_size": max(config.batch_size, 64)})  # a GPU takes big batches
    loaded = load_tuned(settings, device=device, path=out)
    if loaded is None:
        raise BaseModelError(f"no tuned model in {out}")
    model, tokenizer, card = loaded
    started = time.perf_counter()
    made = {"tuned": generate_drafts(ReviewGenerator(model, tokenizer), cells, config, drafts)}
    del model
    base_model, base_tokenizer = load_reference_base(card, settings, device)
    made["base"] = generate_drafts(ReviewGenerator(base_model, base_tokenizer), cells, config, drafts)
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    write_generations(target, made, device=name, drafts=drafts, seconds=round(time.perf_counter() - started, 1),
                      guidance=config.guidance)
    print(f"wrote {drafts} drafts per request for both models to {target}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from assistant.bases import BaseModelError, tuned_dir
    from assistant.guidance import guidance_arg
    from assistant.settings import get_settings
    from assistant.store import StoreError

    p = argparse.ArgumentParser(prog="python -m assistant.model_card", description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=None, help="tuned model folder (default: models_dir/tuned)")
    p.add_argument("--n", type=int, default=200, help="generations per sentiment and mode")
    p.add_argument("--device", default=None)
    p.add_argument("--export-requests", type=Path, default=None,
                   help="write the evaluation requests (with context) to this file and stop")
    p.add_argument("--generate", type=Path, default=None, metavar="REQUESTS",
                   help="generate drafts for exported requests (no store needed: for a GPU machine); see --out")
    p.add_argument("--out", type=Path, default=Path("generations.json"), help="where --generate writes")
    p.add_argument("--drafts", type=int, default=4, help="drafts per request for --generate (best-of-n)")
    p.add_argument("--generations", type=Path, default=None,
                   help="evaluate with drafts made by --generate instead of generating here")
    p.add_argument("--reuse-base", type=Path, default=None, metavar="CARD",
                   help="take the base model's numbers from an earlier model_card.json of the same base and requests")
    p.add_argument("--best-of", type=int, default=None, metavar="N",
                   help="only measure best-of-N accuracy (N drafts per request, --n requests per cell) into the card")
    p.add_argument("--with-base", action="store_true", help="with --best-of: measure the base model too")
    p.add_argument("--guidance", type=guidance_arg, default=None, metavar="G",
                   help="sentiment guidance scale for the generations (default: settings.sentiment_guidance; 1 = off)")
    p.add_argument("--no-unguided", action="store_true",
                   help="with guidance on, skip the tuned model's comparison run without it")
    args = p.parse_args(argv)
    from assistant.logs import setup_logging

    setup_logging()
    settings = get_settings()
    out = args.dir or tuned_dir(settings)
    guidance = settings.sentiment_guidance if args.guidance is None else args.guidance
    try:
        if args.export_requests:
            return export_requests(settings, out, args.export_requests, args.n, guidance)
        if args.generate:
            return generate_elsewhere(settings, out, args.generate, args.out, args.drafts, args.device)
        if args.best_of:
            card = evaluate_best_of(settings, out, n_per_cell=args.n, drafts=args.best_of, with_base=args.with_base,
                                    device=args.device, guidance=guidance)
            print(json.dumps({k: card.get(k) for k in ("sentiment_acc_best_of", "base_sentiment_acc_best_of",
                                                       "best_of_eval")}, indent=2))
            return 0
        card = evaluate_saved(settings, out, n_per_cell=args.n, device=args.device, generations=args.generations,
                              reuse_base=args.reuse_base, guidance=guidance, unguided=not args.no_unguided)
    except (BaseModelError, StoreError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: card.get(k) for k in (*REQUIRED_KEYS, "guidance", "sentiment_acc_unguided",
                                               "sentiment_acc_best_of", "base_sentiment_acc_best_of")},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
