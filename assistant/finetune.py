"""`python -m assistant.finetune`: train the review model, then evaluate it into its model card.

    python -m assistant.finetune [--base ...] [--max-minutes 30] [--no-eval | --eval-only] [--eval-n 200] [--ship]
    python -m assistant.finetune --ship-only [--out HOME]     # the live model's adapter into assistant/model/shipped/

Training lives in `assistant.training`, the card's evaluation in `assistant.evaluation`; this command runs one
after the other, so neither package imports the other. It holds the tuned model's writer lock throughout: a
second fine-tune waits for it, or fails with one line naming the first (`assistant.data.locks.WRITER_WAIT_S`).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from assistant.data.locks import LockBusy
from assistant.evaluation.model_card import (
    EvalConfig,
    evaluate_and_write,
    evaluate_saved,
)
from assistant.logs import setup_logging
from assistant.model.tuned_layout import (
    check_home,
    live_model_dir,
    model_lock,
    tuned_home,
)
from assistant.settings import Settings, get_settings
from assistant.training.finetune import Trained, parse_args, run


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    settings = get_settings()
    home = args.out or tuned_home(settings)
    try:
        if args.ship_only:  # only reads the live generation (made live atomically): no claim on the folder, no lock
            return ship_live(home)
        check_home(home)
        with model_lock(home):
            status = _train_and_evaluate(args, settings, home)
            return ship_live(home) if status == 0 and args.ship else status
    except (LockBusy, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _train_and_evaluate(args: argparse.Namespace, settings: Settings, home: Path) -> int:
    if args.eval_only:
        card = evaluate_saved(settings, live_model_dir(home) or home, n_per_cell=args.eval_n, device=args.device)
        print(json.dumps(card, indent=2), file=sys.stdout)  # the command's output
        return 0
    trained = run(args, settings)
    if not isinstance(trained, Trained):
        return trained
    card = trained.card
    if not args.no_eval and trained.store is not None:
        config = EvalConfig(n_per_cell=args.eval_n, guidance=settings.sampling.guidance)  # as the chat samples
        card = evaluate_and_write(trained.model, trained.tokenizer, card, trained.out, settings=settings,
                                  store=trained.store, split=trained.split, data=trained.data, config=config,
                                  device=trained.device)
    headline = {k: card.get(k) for k in ("base", "val_ppl_context", "val_ppl_no_context", "sentiment_acc",
                                          "copy_rate_8gram")}
    print(f"tuned model in {trained.out}: {json.dumps(headline)}", file=sys.stdout)  # the command's output
    return 0


def ship_live(home: Path) -> int:
    """Copy the live model of a tuned home into the shipped folder (assistant/model/shipped/ship.py)."""
    from assistant.model.shipped import ShippedAdapterError
    from assistant.model.shipped.ship import ship

    folder = live_model_dir(home)
    try:
        if folder is None:
            raise ShippedAdapterError(f"no trained model in {home} to ship")
        target = ship(folder)
    except (ShippedAdapterError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"shipped the adapter of {folder} to {target}; commit that folder", file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
