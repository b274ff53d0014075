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
from dataclasses import dataclass
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


def sentiment_control(generator: Any, judge: Any, cells: dict[tuple[str, str], list[ReviewRequest]],
                      config: EvalConfig) -> tuple[dict[str, dict[str, float]], dict[tuple[str, str], list[str]]]:
    """Generate for every cell in one batched pass; accuracy = share the judge reads as the asked sentiment."""
    keys = list(cells)
    flat = [r for key in keys for r in cells[key]]
    texts = generator.generate_many(flat, max_new_tokens=config.max_new_tokens, seed=config.seed,
                                    batch_size=config.batch_size, progress=True)
    out: dict[tuple[str, str], list[str]] = {}
    start = 0
    for key in keys:
        out[key] = texts[start:start + len(cells[key])]
        start += len(cells[key])
    acc: dict[str, dict[str, float]] = {s: {} for s in SENTIMENTS}
    for (sentiment, mode), generated in out.items():
        predicted = judge.predict(generated) if generated else []
        hits = [bool(t.strip()) and p == sentiment for t, p in zip(generated, predicted)]
        acc[sentiment][mode] = round(sum(hits) / len(hits), 4) if hits else 0.0
    return acc, out


def stream_speed(generator: Any, requests: Sequence[ReviewRequest], max_new_tokens: int) -> float:
    """Tokens per second of single-request streaming, what a chat user sees."""
    from assistant.generate import GenerationStats

    generator.stats = GenerationStats()
    for i, request in enumerate(requests):
        for _ in generator.stream(request, max_new_tokens=max_new_tokens, seed=i):
            pass
    return round(generator.stats.tokens_per_s, 1)


def evaluate_model(model: Any, tokenizer: Any, *, judge: Any, cells: dict, ppl_pairs: tuple[list, list],
                   config: EvalConfig, label: str) -> dict[str, Any]:
    """All per-model numbers: perplexities, sentiment control, generation speeds, the generations."""
    from assistant.generate import GenerationStats, ReviewGenerator

    started = time.perf_counter()
    with_ctx, without = ppl_pairs
    result: dict[str, Any] = {
        "val_ppl_context": round(perplexity(model, tokenizer, with_ctx, max_len=config.max_len), 2),
        "val_ppl_no_context": round(perplexity(model, tokenizer, without, max_len=config.max_len), 2),
    }
    log.info("%s: validation perplexity %.2f with context, %.2f without", label,
             result["val_ppl_context"], result["val_ppl_no_context"])
    generator = ReviewGenerator(model, tokenizer)
    generator.stats = GenerationStats()
    acc, texts = sentiment_control(generator, judge, cells, config)
    result["sentiment_acc"] = acc
    result["gen_tokens_per_s_batched"] = round(generator.stats.tokens_per_s, 1)
    result["texts"] = texts
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
                       neighbours: Any = None) -> dict[str, Any]:
    """Run the whole evaluation, add it to `card`, write the card files, return the card.

    `neighbours` overrides the store's retrieval (tests); `base` skips reloading the base model.
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
    tuned = evaluate_model(model, tokenizer, judge=judge, cells=cells, ppl_pairs=ppl_pairs, config=config, label="tuned")
    base_model, base_tokenizer = base or load_reference_base(card, settings, device)
    base_eval = evaluate_model(base_model, base_tokenizer, judge=judge, cells=cells, ppl_pairs=ppl_pairs,
                               config=config, label="base")
    del base_model
    generated = [t for texts in tuned["texts"].values() for t in texts]
    base_generated = [t for texts in base_eval["texts"].values() for t in texts]
    index = NgramIndex((d.page_content for d in split.train), n=8)
    card.update({
        "val_ppl_context": tuned["val_ppl_context"], "val_ppl_no_context": tuned["val_ppl_no_context"],
        "sentiment_acc": tuned["sentiment_acc"], "base_sentiment_acc": base_eval["sentiment_acc"],
        "judge_acc": round(judge.accuracy or 0.0, 4),
        "distinct_1": round(distinct_n(generated, 1), 4), "distinct_2": round(distinct_n(generated, 2), 4),
        "copy_rate_8gram": round(index.copy_rate(generated), 4),
        "gen_tokens_per_s": tuned["gen_tokens_per_s"], "gen_tokens_per_s_batched": tuned["gen_tokens_per_s_batched"],
        "base_val_ppl_context": base_eval["val_ppl_context"], "base_val_ppl_no_context": base_eval["val_ppl_no_context"],
        "base_distinct_2": round(distinct_n(base_generated, 2), 4),
        "base_copy_rate_8gram": round(index.copy_rate(base_generated), 4),
        "empty_generations": sum(not t.strip() for t in generated),
        "eval": {"n_per_cell": config.n_per_cell, "n_ppl": len(ppl_pairs[0]), "max_new_tokens": config.max_new_tokens,
                 "judge_train": len(split.train), "judge_test": len(split.val), "seed": config.seed,
                 "minutes": round((time.perf_counter() - started) / 60, 1)},
        "samples": _samples(cells, tuned["texts"], base_eval["texts"]),
        "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    write_card(card, out)
    return card


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


def render_markdown(card: dict[str, Any]) -> str:
    lines = [f"# Model card: movie-review voice ({card.get('base')} + {card.get('method', '?')})", "",
             f"Base `{card.get('base')}` from `{card.get('base_source')}`, {_fmt(card.get('params'))} parameters; "
             f"trained {_fmt(card.get('train_minutes'))} min on {_fmt(card.get('train_tokens'))} tokens "
             f"({_fmt(card.get('train_examples'))} examples, {_fmt(card.get('train_steps'))} steps).", "",
             "| metric | value |", "|---|---|"]
    for key in ("val_ppl_context", "val_ppl_no_context", "base_val_ppl_context", "base_val_ppl_no_context",
                "judge_acc", "distinct_1", "distinct_2", "copy_rate_8gram", "base_copy_rate_8gram",
                "train_tokens_per_s", "gen_tokens_per_s", "gen_tokens_per_s_batched"):
        lines.append(f"| {key} | {_fmt(card.get(key))} |")
    lines += ["", "## Sentiment control, tuned model", *_acc_table(card.get("sentiment_acc")),
              "", "## Sentiment control, base model before fine-tuning", *_acc_table(card.get("base_sentiment_acc"))]
    if card.get("samples"):
        lines += ["", "## Samples (held-out movies)"]
        for s in card["samples"]:
            lines += [f"- **{s['sentiment']}, {s['mode']}**, {s['movie'] or 'untitled'}",
                      f"  - tuned: {s['tuned'] or '(empty)'}", f"  - base: {s['base'] or '(empty)'}"]
    lines += ["", "Judge: TF-IDF + logistic regression trained on the training split only; accuracy on the "
              "held-out movies above. Validation movies are disjoint from training movies.", ""]
    return "\n".join(lines)


def evaluate_saved(settings: Any, out: Path, *, n_per_cell: int = 200, device: str | None = None) -> dict[str, Any]:
    """Re-run the evaluation on a saved tuned model, with the data split recorded in its card."""
    from assistant.bases import BaseModelError, load_tuned
    from assistant.training_data import open_split

    loaded = load_tuned(settings, device=device, path=out)
    if loaded is None:
        raise BaseModelError(f"no tuned model in {out}: train one with `python -m assistant.finetune`")
    model, tokenizer, card = loaded
    data = DataConfig(**card.get("data_config", {}))
    store, split = open_split(settings, data)
    return evaluate_and_write(model, tokenizer, card, out, settings=settings, store=store, split=split, data=data,
                              n_per_cell=n_per_cell, device=device)


def main(argv: Sequence[str] | None = None) -> int:
    from assistant.bases import BaseModelError, tuned_dir
    from assistant.settings import get_settings
    from assistant.store import StoreError

    p = argparse.ArgumentParser(prog="python -m assistant.model_card", description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=None, help="tuned model folder (default: models_dir/tuned)")
    p.add_argument("--n", type=int, default=200, help="generations per sentiment and mode")
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    from assistant.logs import setup_logging

    setup_logging()
    settings = get_settings()
    try:
        card = evaluate_saved(settings, args.dir or tuned_dir(settings), n_per_cell=args.n, device=args.device)
    except (BaseModelError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: card.get(k) for k in REQUIRED_KEYS}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
