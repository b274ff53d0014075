"""Validation perplexity of saved fine-tuned models (and their base) on the same held-out reviews, in one run.

    MRA_MODELS_DIR=... MRA_INDEX_DIR=... python bench/val_ppl.py models/tuned/gen-000001 models/tuned/gen-000002

Each folder is a saved tuned model (what `python -m assistant.finetune` writes). The validation reviews are those
of the first folder's data split (its card), with and without retrieved context, exactly as the model card's
`val_ppl_context` / `val_ppl_no_context` are computed; the base model is scored on the same ones. This is how a
longer training run is checked to still improve on data it never trained on. JSON on stdout.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.evaluation.model_card import open_saved  # noqa: E402
from assistant.evaluation.sentiment_control import (  # noqa: E402
    EvalConfig,
    load_reference_base,
    perplexity,
    validation_pairs,
)
from assistant.logs import setup_logging  # noqa: E402
from assistant.model.bases import load_tuned  # noqa: E402
from assistant.settings import get_settings  # noqa: E402
from assistant.training.examples import store_neighbours  # noqa: E402

log = logging.getLogger("bench.val_ppl")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="saved tuned model folders")
    parser.add_argument("--n", type=int, default=EvalConfig.n_ppl, help="validation reviews (the card's default)")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    setup_logging()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = get_settings()
    config = EvalConfig(n_per_cell=1)
    _, _, card, store, split, data = open_saved(settings, args.models[0], None)
    pairs = validation_pairs(split, store_neighbours(store), data, args.n, config.seed)
    results = []
    candidates = [("base", None)] + [(str(path), path) for path in args.models]
    for name, path in candidates:
        started = time.perf_counter()
        if path is None:
            model, tokenizer = load_reference_base(card, settings, None)
            info = {}
        else:
            model, tokenizer, info = load_tuned(settings, path=path)
        with_ctx, without = pairs
        row = {"model": name, "train_minutes": info.get("train_minutes_total", info.get("train_minutes")),
               "train_tokens": info.get("train_tokens_total", info.get("train_tokens")),
               "val_ppl_context": round(perplexity(model, tokenizer, with_ctx, max_len=config.max_len), 2),
               "val_ppl_no_context": round(perplexity(model, tokenizer, without, max_len=config.max_len), 2),
               "seconds": round(time.perf_counter() - started, 1)}
        log.info("%s", row)
        results.append(row)
        del model
    print(json.dumps({"n": len(pairs[0]), "models": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
