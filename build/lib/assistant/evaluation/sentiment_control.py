"""Sentiment control, measured: held-out requests, batched generations, judged accuracy, perplexity, speed.

The pieces of the model card's evaluation (`assistant.evaluation.model_card`), also used by bench scripts.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from assistant.model.prompts import SENTIMENTS, ReviewRequest
from assistant.settings import Sampling
from assistant.training.examples import (
    DataConfig,
    Example,
    Split,
    context_for,
    make_example,
    sample_balanced,
)

log = logging.getLogger(__name__)

MODES = ("context", "no_context")
JUDGE_BASENAME = "judge"  # the card's sentiment judge, saved beside the model (judge.json / judge.npz)


@dataclass(frozen=True)
class EvalConfig:
    n_per_cell: int = 200  # generations per sentiment and mode
    n_ppl: int = 200  # validation reviews scored for perplexity
    max_new_tokens: int = Sampling().max_new_tokens
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
    from assistant.training.batches import (
        collate,
        encode_example,
        lm_loss,
        make_batches,
    )

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



def stream_speed(generator: Any, requests: Sequence[ReviewRequest], max_new_tokens: int) -> float:
    """Tokens per second of single-request streaming, what a chat user sees."""
    from assistant.model.generation import GenerationStats

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
    from assistant.model.generation import GenerationStats, ReviewGenerator

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
    from assistant.model.bases import load_base

    model, tokenizer, _ = load_base(card["base"], settings, device=device)
    return model, tokenizer

