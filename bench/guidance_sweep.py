"""Sentiment accuracy, diversity and speed of a saved model at several sentiment-guidance scales.

    python bench/guidance_sweep.py [--dir var/models/tuned] [--model tuned|base] [--n 40] [--scales 1 1.5 2 3]

Requests are the model card's kind (held-out movies, with and without their retrieved context, the card's seed),
`--n` per cell: fewer than the card's 200, and sampled afresh, so confirm a chosen scale with
`python -m assistant.model_card --guidance G`. The judge is the card's (trained on the training split).
Numbers go to the log and, as JSON, to stdout.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.data.ngrams import distinct_n  # noqa: E402
from assistant.evaluation.model_card import open_saved  # noqa: E402
from assistant.evaluation.sentiment_control import (  # noqa: E402
    JUDGE_BASENAME,
    EvalConfig,
    accuracy,
    eval_requests,
    first_drafts,
    generate_drafts,
    load_reference_base,
)
from assistant.logs import setup_logging  # noqa: E402
from assistant.model.bases import live_model_dir, tuned_dir  # noqa: E402
from assistant.model.generation import GenerationStats, ReviewGenerator  # noqa: E402
from assistant.model.guidance import guidance_arg  # noqa: E402
from assistant.settings import get_settings  # noqa: E402
from assistant.training.examples import store_neighbours  # noqa: E402

log = logging.getLogger("bench.guidance_sweep")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=None, help="tuned model folder (default: models_dir/tuned)")
    p.add_argument("--model", choices=("tuned", "base"), default="tuned", help="the tuned model or its base")
    p.add_argument("--n", type=int, default=40, help="requests per sentiment and mode")
    p.add_argument("--scales", type=guidance_arg, nargs="+", default=[1.0, 1.5, 2.0, 3.0])
    p.add_argument("--samples", type=int, default=2, help="texts per cell shown in the log")
    args = p.parse_args()
    setup_logging()
    from assistant.evaluation.judge import SentimentJudge

    settings = get_settings()
    out = (live_model_dir(args.dir) or args.dir) if args.dir else tuned_dir(settings)
    model, tokenizer, card, store, split, data = open_saved(settings, out, None)
    if (out / f"{JUDGE_BASENAME}.json").exists():
        judge = SentimentJudge.load(out / JUDGE_BASENAME)
    else:  # no card evaluated yet: the same judge, trained here
        judge = SentimentJudge.train([d.page_content for d in split.train], [d.metadata["sentiment"] for d in split.train])
    if args.model == "base":
        del model  # one model in memory at a time
        model, tokenizer = load_reference_base(card, settings, None)
    cells = eval_requests(split, store_neighbours(store), data, args.n, EvalConfig().seed)
    generator = ReviewGenerator(model, tokenizer)
    results = []
    for scale in args.scales:
        config = EvalConfig(n_per_cell=args.n, guidance=scale)
        generator.stats = GenerationStats()
        started = time.perf_counter()
        texts = first_drafts(generate_drafts(generator, cells, config))
        row = {"model": args.model, "guidance": scale, "n_per_cell": args.n, "sentiment_acc": accuracy(judge, texts),
               "distinct_2": round(distinct_n([t for ts in texts.values() for t in ts], 2), 4),
               "empty": sum(not t.strip() for ts in texts.values() for t in ts),
               "tokens_per_s_batched": round(generator.stats.tokens_per_s, 1),
               "seconds": round(time.perf_counter() - started, 1)}
        log.info("%s", json.dumps(row))
        for key, generated in texts.items():
            for text in generated[: args.samples]:
                log.info("  %s/%s: %s", *key, text[:200])
        results.append(row)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
