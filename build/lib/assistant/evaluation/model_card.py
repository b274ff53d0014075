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
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from assistant.training.examples import (
    DataConfig,
    Split,
)

log = logging.getLogger(__name__)

from assistant.evaluation.exchange import (
    export_requests,
    generate_elsewhere,
    read_generations,
)
from assistant.evaluation.sentiment_control import (
    JUDGE_BASENAME,
    Cells,
    Drafts,
    EvalConfig,
    accuracy,
    eval_requests,
    evaluate_model,
    first_drafts,
    generate_drafts,
    load_reference_base,
    reranked,
    validation_pairs,
)
from assistant.model.card import write_card

REQUIRED_KEYS = ("base", "params", "train_tokens", "val_ppl_context", "val_ppl_no_context", "sentiment_acc",
                 "base_sentiment_acc", "judge_acc", "distinct_1", "distinct_2", "copy_rate_8gram",
                 "train_tokens_per_s", "gen_tokens_per_s")


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
    from assistant.data.ngrams import NgramIndex, distinct_n
    from assistant.evaluation.judge import SentimentJudge
    from assistant.training.examples import store_neighbours

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


def open_saved(settings: Any, out: Path,
               device: str | None) -> tuple[Any, Any, dict[str, Any], Any, Split, DataConfig]:
    """The saved tuned model, its tokenizer and card, the store, and the data split its card records."""
    from assistant.model.bases import BaseModelError, load_tuned
    from assistant.training.examples import open_split

    loaded = load_tuned(settings, device=device, path=out)
    if loaded is None:
        raise BaseModelError(f"no tuned model in {out}: train one with `python -m assistant.finetune`")
    model, tokenizer, card = loaded
    data = DataConfig(**card.get("data_config", {}))
    store, split = open_split(settings, data)
    return model, tokenizer, card, store, split, data


def probe_scorer(settings: Any, out: Path) -> Any:
    """texts -> P(positive) by the embedding probe saved beside the model, or None when it has none."""
    from assistant.data.embeddings import make_embeddings
    from assistant.model.sentiment_probe import SentimentProbe

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
    from assistant.evaluation.judge import SentimentJudge
    from assistant.model.generation import ReviewGenerator
    from assistant.training.examples import store_neighbours

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


def main(argv: Sequence[str] | None = None) -> int:
    from assistant.data.store import StoreError
    from assistant.model.bases import BaseModelError, live_model_dir, tuned_dir
    from assistant.model.guidance import guidance_arg
    from assistant.settings import get_settings

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
                   help="sentiment guidance scale for the generations (default: settings.sampling.guidance; 1 = off)")
    p.add_argument("--no-unguided", action="store_true",
                   help="with guidance on, skip the tuned model's comparison run without it")
    args = p.parse_args(argv)
    from assistant.logs import setup_logging

    setup_logging()
    settings = get_settings()
    out = (live_model_dir(args.dir) or args.dir) if args.dir else tuned_dir(settings)  # a home: its live model
    guidance = settings.sampling.guidance if args.guidance is None else args.guidance
    try:
        if args.export_requests:
            return export_requests(settings, out, args.export_requests, args.n, guidance)
        if args.generate:
            return generate_elsewhere(settings, out, args.generate, args.out, args.drafts, args.device)
        if args.best_of:
            card = evaluate_best_of(settings, out, n_per_cell=args.n, drafts=args.best_of, with_base=args.with_base,
                                    device=args.device, guidance=guidance)
            summary = {k: card.get(k) for k in ("sentiment_acc_best_of", "base_sentiment_acc_best_of", "best_of_eval")}
            print(json.dumps(summary, indent=2), file=sys.stdout)  # the command's output
            return 0
        card = evaluate_saved(settings, out, n_per_cell=args.n, device=args.device, generations=args.generations,
                              reuse_base=args.reuse_base, guidance=guidance, unguided=not args.no_unguided)
    except (BaseModelError, StoreError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {k: card.get(k) for k in (*REQUIRED_KEYS, "guidance", "sentiment_acc_unguided", "sentiment_acc_best_of",
                                        "base_sentiment_acc_best_of")}
    print(json.dumps(summary, indent=2), file=sys.stdout)  # the command's output
    return 0


if __name__ == "__main__":
    sys.exit(main())
