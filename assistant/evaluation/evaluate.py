"""Fine-tuning or RAG? Run a fixed request set through the chat chain and measure both, as a 2x2 table.

    python -m assistant.evaluate            # a few minutes on CPU: 24 requests per arm, the chat's sampling settings
    python -m assistant.evaluate --quick    # about one minute: 6 requests per arm, 40 new tokens
    python -m assistant.evaluate --retrieval-only   # only the retrieval numbers (no language model)
    python -m assistant.evaluate --n 200 --groups held_out   # the README's headline: 100 per direction, held-out
    python -m assistant.evaluate --n 200 --groups held_out --thin   # and again on thin films (5 reviews, no facts)

Arms (rows of the table), each answering the same seeded requests with the same sampling seeds:
``base_no_rag`` "neither", ``base_rag`` "RAG alone", ``no_rag`` "fine-tuning alone", ``rag`` "both".
The base arms are skipped when the base was trained from scratch (a random network has no "before");
the fine-tuned arms when no fine-tuned model exists yet. What was skipped and why is in ``skipped``.

Writes ``eval.md`` (paste-ready table), ``eval.json``, ``eval_replies.jsonl`` (every reply; --thin's marked
``"thin": true``) and ``eval_arms.png``, ``eval_latency.png``, ``eval_retrieval.png`` into ``--out`` (default
settings.reports_dir).

eval.json (schema 2; rates are 0-1 floats, times seconds; a metric that could not be measured is null)::

    schema, generated_at, command, quick, seed, minutes
    options        {n_requests, groups, max_new_tokens, temperature, top_k, guidance, praise_guidance,
                    retrieval_queries}
    counts         {requests, generations, by_group: {seen|held_out|topic: {positive, negative}}}
    models         {tuned: {available, path, base, method, card_judge_acc, ...}, base: {available, name, kind}}
    chain_status   what Assistant.status() said (free-form)
    split          {val_share, seed, train_reviews, val_reviews, val_movies, from_model_card}: the fine-tuning
                   run's movie-disjoint split (training_data.split_by_movie), or null when no arm ran
    judge          {source, accuracy, card_accuracy, train_reviews, test_reviews, train_seconds}: trained on the
                   held-out movies' reviews (never seen in fine-tuning), accuracy on training-split reviews;
                   card_accuracy = the model card's judge (trained on the training split), a cross-check
    arm_order      ["base_no_rag", "base_rag", "no_rag", "rag"]
    rag | no_rag | base_rag | base_no_rag     one arm each, or null when skipped:
        label, model ("tuned"|"base"), rag (bool), n, empty, errors, mean_words, modes {chain mode: count}
        specificity {group ("held_out", else "all movies"), n, rate, chance, ci95}: share of replies using a name
                    or rare detail of their movie (facts, reviews); chance = checked against another movie
        faithfulness {group, reference, replies, names, names_per_reply, grounded_share, invented_per_reply,
                      replies_with_invented}: capitalised names found in the facts and retrieved context (RAG
                      arms) or in any of the movie's data (the others)
        retrieved_copy {context, n, rate}: share of replies repeating 8 words in a row of a retrieved document
        sentiment {positive|negative: {n, accuracy, ci95}}: sentiment accuracy per asked direction
        sentiment_accuracy, sentiment_accuracy_by_group {seen, held_out, topic},
        sentiment_accuracy_card_judge (null without a model card judge)
        request_understood          share whose parsed sentiment and movie match the request
        movie_relevance {n, cosine_margin, closer_share, uses_movie_detail, uses_movie_detail_chance}
        grounding {context ("own sources"|"sources of arm X"), n, unigram, bigram, unigram_chance, bigram_chance}
        distinct_1, distinct_2, copy_rate_8gram (vs training reviews), copy_rate_8gram_context (RAG arms)
        sources {n, movie_match, sentiment_match}        (RAG arms, requests naming a movie)
        latency {first_token_s: {p50, p95, mean, n}, total_s: {...}, retrieval_s: {...}}
        samples [{id, group, request, reply}]            the first few replies
        critic_likeness {group, n, films, classifier {accuracy, ci95, folds, n_replies, n_quotes},
                    mauve {mauve, buckets, note}, length_words {n, p25, median, p75}, length_ratio, distinct_1,
                    distinct_2, opening {n, per, share}, top_openings, garbled {n, share, examples, note}}:
                    replies to held-out films beside as many critics' quotes of them (docs/critic-likeness.md)
    critics        the quotes' own {group, n, films, length_words, distinct_1, distinct_2, opening, top_openings}
    pairs          {arm, pairs [{film, a, b, reply ("A"|"B")}]}: ten quote / reply pairs in shuffled order
    thin           with --thin: {films, reviews_per_film, reviews_kept, reviews_dropped, facts_documents_dropped,
                    requests, skipped, arms {key: the arm's numbers as above}, critics}: the held-out requests
                    again over a store copy where their films have five reviews and no facts card
    skipped        {arm key: reason}
    retrieval      {queries, movies, ks, min_reviews, recall@4, recall@10, precision@4, precision@10, mrr@10,
                    mmr: {same scores}, chance: {recall@k, precision@k of random retrieval},
                    sentiment_filter_precision, movie_filter_precision, filter_queries, seconds} or null;
                    recall@k = share of query reviews with another review of the same movie in the top k
    notes          [strings]
    machine        {platform, cpus, torch_threads, cuda, load_avg_start, load_avg_end}: context for the latencies
    store          {reviews, chunks, titled_movies}
    charts         {arms, latency, retrieval}: PNG file names beside eval.json
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from assistant.argtypes import drafts_arg, seed_arg
from assistant.data.garbled import vocabulary_cache
from assistant.data.records import movie_key as key_of
from assistant.evaluation import metrics as em
from assistant.evaluation.arms import (
    ARM_ORDER,
    ARMS,
    PAIRED_RAG,
    EvalOptions,
    Turn,
    as_dict,
    plan_arms,
    read_card,
    run_arms,
    unusable,
)
from assistant.evaluation.critic_scoring import CriticLikeness
from assistant.evaluation.requests import (
    GROUPS,
    RequestSet,
    build_request_set,
    store_titles,
)
from assistant.evaluation.scoring import Scorer, load_judge, load_split
from assistant.evaluation.thin import run_thin
from assistant.model.guidance import guidance_arg
from assistant.model.prompts import format_context_item

log = logging.getLogger(__name__)

SCHEMA = 2
COMMAND = "python -m assistant.evaluate"


# ---- the whole run -------------------------------------------------------------------------------

def _open_assistant(settings: Any, embeddings: Any = None) -> Any:
    """The chat, as the app opens it, once its drafts' word check is ready: the chat ranks drafts without it until
    the store's vocabulary is counted, and a seeded run must choose the same drafts each time."""
    from assistant.chat.assistant import Assistant

    assistant = Assistant.load(settings, embeddings=embeddings)
    assistant.draft_words.ready.wait()
    return assistant


def _store_of(assistant: Any, settings: Any) -> Any:
    """The chain's own store, with its embedding model loaded (the chain then uses that one), else a fresh one."""
    from assistant.data.embeddings import make_embeddings
    from assistant.data.store import ReviewStore

    store = getattr(assistant, "store", None) if assistant is not None else None
    if store is None:
        return ReviewStore.open(settings, make_embeddings(settings))
    if store.embeddings is None:  # the chain loads it on the first retrieval; one copy in memory, not two
        store.embeddings = make_embeddings(settings)
    return store


def _status(assistant: Any) -> dict:
    try:
        status = assistant.status()
    except Exception as exc:  # a status report is informative only
        return {"error": str(exc)}
    return as_dict(status) if not isinstance(status, dict) else status


def run_evaluation(settings: Any, options: EvalOptions, *, retrieval_only: bool = False,
                   assistant: Any = None, command: str | None = None) -> tuple[dict[str, Any], dict[str, list[dict]]]:
    """Everything measured, as the eval.json dict, plus every reply per arm (for eval_replies.jsonl)."""
    started = time.perf_counter()
    machine = _machine()
    notes: list[str] = []
    card = read_card(settings)
    with tempfile.TemporaryDirectory(prefix="mra-eval-") as tmp:
        if assistant is None and not retrieval_only:
            # A throwaway chat database: evaluation sessions must not appear among the user's saved chats.
            assistant = _open_assistant(settings.model_copy(update={"chats_db": Path(tmp) / "chats.sqlite"}))
        store = _store_of(assistant, settings)
        top_k = options.top_k or settings.top_k
        if options.guidance is None:
            options = replace(options, guidance=settings.sampling.guidance)
        titles = store_titles(store)
        ks = sorted({top_k, 10})
        retrieval = em.evaluate_retrieval(store, titles, ks=ks, n_queries=options.retrieval_queries,
                                          n_filter=options.filter_queries, seed=options.seed)
        status = _status(assistant) if assistant is not None else {}
        run, skipped, models = plan_arms(card, status, settings)
        if options.arms is not None:
            skipped.update({k: "not asked for (--arms)" for k in run if k not in options.arms})
            run = [k for k in run if k in options.arms]
        if retrieval_only:
            skipped = {k: "--retrieval-only" for k in ARM_ORDER}
            run = []
        result: dict[str, Any] = {
            "schema": SCHEMA, "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": command or " ".join([COMMAND] + ["--quick"] * options.quick
                                           + ["--retrieval-only"] * retrieval_only),
            "quick": options.quick, "seed": options.seed,
            "options": {"n_requests": options.n_requests, "groups": list(options.groups),
                        "max_new_tokens": options.max_new_tokens,
                        "temperature": options.temperature, "top_k": top_k, "guidance": options.guidance,
                        "praise_guidance": settings.sampling.praise_guidance,
                        "drafts": options.drafts or settings.sampling.drafts,
                        "retrieval_queries": options.retrieval_queries},
            "models": models, "chain_status": status, "arm_order": list(ARM_ORDER),
            **{k: None for k in ARM_ORDER}, "skipped": skipped, "retrieval": retrieval,
            "store": {"reviews": int((store.kinds == "review").sum()), "chunks": int(store.total),
                      "titled_movies": len(titles)},
        }
        replies: dict[str, list[dict]] = {}
        if run:
            data, split = load_split(store, card)
            result["split"] = {"val_share": data.val_share, "seed": data.seed, "train_reviews": len(split.train),
                               "val_reviews": len(split.val), "val_movies": len(split.val_movies),
                               "from_model_card": bool(card and card.get("data_config"))}
            if card is None:
                notes.append("No fine-tuned model: only the base model's arms were run; the split is the default one.")
            judge, card_judge, result["judge"] = load_judge(settings, card, split, options.seed, store)
            requests = build_request_set(titles, {d.metadata.get("movie_key") for d in split.train},
                                         split.val_movies, options.n_requests, options.seed, groups=options.groups)
            notes += requests.notes
            result["counts"] = {"requests": len(requests.requests), "generations": len(requests.requests) * len(run),
                                "by_group": requests.counts()}
            turns = run_arms(assistant, run, requests.requests, options, str(options.seed))
            for key in list(run):
                reason = unusable(ARMS[key], turns[key])
                if reason:
                    skipped[key] = reason
                    run.remove(key)
                    del turns[key]
                elif any(t.error for t in turns[key]):
                    notes.append(f"{key}: {sum(bool(t.error) for t in turns[key])} requests failed and count as "
                                 f"misses (first: {next(t.error for t in turns[key] if t.error)})")
            background = _background(split.train + split.val, options.seed)
            scorer = Scorer(store, judge, [d.page_content for d in split.train], background, options.seed,
                            card_judge=card_judge)
            # the chat's own word check when it has one: the store's vocabulary is read once
            likeness = CriticLikeness(store, requests.requests, turns, options.seed,
                                      vocabulary_cache=vocabulary_cache(store),
                                      garbled=getattr(getattr(assistant, "draft_words", None), "check", None))
            result.update(_score_all(scorer, likeness, turns, requests, options))
            for key in run:
                replies[key] = [{"arm": key, **r.to_dict(), **asdict(t)} for r, t in zip(requests.requests, turns[key])]
            pair_arm = next((k for k in ("rag", "no_rag", "base_rag", "base_no_rag") if k in turns), None)
            result["pairs"] = {"arm": pair_arm, "pairs": likeness.pairs(turns[pair_arm], requests.requests)
                               if pair_arm else []}
            if options.thin:
                def score_thin(thin_turns: dict[str, list[Turn]], thin_requests: RequestSet) -> dict[str, Any]:
                    thin_likeness = CriticLikeness(store, thin_requests.requests, thin_turns, options.seed,
                                                   garbled=likeness.garbled)
                    return _score_all(scorer, thin_likeness, thin_turns, thin_requests, options)

                result["thin"], thin_replies = run_thin(store, settings, options, requests, run,
                                                        lambda s: _open_assistant(s, store.embeddings), score_thin)
                replies.update(thin_replies)
        else:
            result["judge"], result["split"] = None, None
            result["counts"] = {"requests": 0, "generations": 0, "by_group": {}}
        for key, reason in skipped.items():
            notes.append(f"{key} ({ARMS[key].label}) not run: {reason}")
        result["notes"] = notes
        result["minutes"] = round((time.perf_counter() - started) / 60, 2)
        result["machine"] = {**machine, "load_avg_end": _load_avg()}
    return result, replies


def _load_avg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not on every platform
        return None


def _machine() -> dict[str, Any]:
    """Latency depends on the machine and on what else runs on it: recorded beside the numbers."""
    import torch

    return {"platform": platform.platform(terse=True), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(), "load_avg_start": _load_avg()}


def _background(docs: Sequence[Any], seed: int, n: int = 3000) -> list[Any]:
    """A fixed sample of reviews: what 'rare' means for movie details, and the chance level of grounding."""
    return random.Random(seed).sample(list(docs), k=min(n, len(docs)))


def _score_all(scorer: Scorer, likeness: CriticLikeness, turns: dict[str, list[Turn]], requests: RequestSet,
               options: EvalOptions) -> dict[str, Any]:
    """Every arm's numbers, critic-likeness included, and the critics' own beside them (key "critics")."""
    out: dict[str, Any] = {"critics": likeness.critics()}
    for key in turns:
        context, retrieved, context_from = _context_for(key, turns, requests)
        out[key] = scorer.score(ARMS[key], turns[key], requests.requests, context, context_from, options.samples,
                                retrieved)
        out[key]["critic_likeness"] = likeness.arm(ARMS[key], turns[key], requests.requests)
    return out


def _context_for(key: str, turns: dict[str, list[Turn]], requests: RequestSet
                 ) -> tuple[dict[str, list[str]], dict[str, list[str]], str | None]:
    """The context each reply is checked against, laid out as the model saw it and as plain texts: its own
    sources, or (no-RAG arms) those a RAG arm retrieved for the same request."""
    sources_arm = key if ARMS[key].rag else next((k for k in PAIRED_RAG[key] if k in turns), None)
    if sources_arm is None:
        return {}, {}, None
    pairs = list(zip(requests.requests, turns[sources_arm]))
    context = {r.id: [format_context_item(s, s["text"], show_movie=key_of(s.get("movie")) != r.movie_key)
                      for s in t.sources if s.get("text")] for r, t in pairs}
    retrieved = {r.id: [s["text"] for s in t.sources if s.get("text")] for r, t in pairs}
    return context, retrieved, "own sources" if sources_arm == key else f"sources of arm {sources_arm}"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="about one minute: 6 requests per arm, 40 new tokens")
    p.add_argument("--out", type=Path, default=None, help="report folder (default: settings.reports_dir)")
    p.add_argument("--n", type=int, default=None,
                   help="requests per arm (default 24, quick 6); the README's headline numbers use 200, that is 100 "
                        "per sentiment direction")
    p.add_argument("--groups", type=_groups, default=None, metavar="G[,G]",
                   help=f"request groups, of {','.join(GROUPS)} (default: all three); the headline: held_out")
    p.add_argument("--arms", type=_arms, default=None, metavar="A[,A]",
                   help=f"arms to run, of {','.join(ARM_ORDER)} (default: every arm that can run)")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--retrieval-queries", type=int, default=None)
    p.add_argument("--seed", type=seed_arg, default=2024)
    p.add_argument("--guidance", type=guidance_arg, default=None, metavar="G",
                   help="sentiment guidance for every arm (default: settings.sampling.guidance, as the chat)")
    p.add_argument("--drafts", type=drafts_arg, default=None, metavar="N",
                   help="drafts per review, the most critic-like of the clear ones kept (default: "
                        "settings.sampling.drafts, as the chat); 1 = the single streamed draft")
    p.add_argument("--thin", action="store_true",
                   help="also ask about the held-out films over a copy of the store that has five reviews of each and "
                        "no facts card (as a user's own file of new films arrives), reported beside the full ones")
    p.add_argument("--retrieval-only", action="store_true", help="only the retrieval metrics (no language model)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice, as the app runs; 1 is steadier on a busy machine)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def _choices(kind: str, allowed: Sequence[str]):
    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
        unknown = [c for c in chosen if c not in allowed]
        if not chosen or unknown:
            raise argparse.ArgumentTypeError(f"{kind} must be a comma-separated list of {', '.join(allowed)}")
        return chosen
    return parse


_groups = _choices("groups", GROUPS)
_arms = _choices("arms", ARM_ORDER)


def options_from(args: argparse.Namespace) -> EvalOptions:
    overrides = {k: v for k, v in (("n_requests", args.n), ("max_new_tokens", args.max_new_tokens),
                                   ("retrieval_queries", args.retrieval_queries), ("groups", args.groups),
                                   ("arms", args.arms), ("drafts", args.drafts)) if v is not None}
    overrides["thin"] = args.thin
    overrides["seed"] = args.seed
    overrides["guidance"] = args.guidance
    return EvalOptions.quick_run(**overrides) if args.quick else EvalOptions(**overrides)


def main(argv: Sequence[str] | None = None, settings: Any = None) -> int:
    from assistant.chat.assistant import AssistantError
    from assistant.data.store import StoreError
    from assistant.evaluation.report import write_reports
    from assistant.logs import setup_logging
    from assistant.settings import get_settings

    args = parse_args(argv)
    setup_logging(args.verbose)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    settings = settings or get_settings()
    out = args.out or Path(settings.reports_dir)
    try:
        result, replies = run_evaluation(settings, options_from(args), retrieval_only=args.retrieval_only,
                                         command=" ".join([COMMAND, *(argv if argv is not None else sys.argv[1:])]))
    except (StoreError, AssistantError) as exc:
        log.error("%s", exc)
        return 2
    paths = write_reports(result, replies, out)
    log.info("wrote %s", ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
