"""Write assistant/data/critic_scorer.{json,npz}: the scorer that ranks drafts by how much they read like a critic's
quote (assistant/model/critic_scorer.py says what it reads).

    python -m assistant.evaluate --n 400 --groups seen --arms rag,no_rag --seed 7 --out var/scorer-replies
    python scripts/critic_scorer.py var/scorer-replies/eval_replies.jsonl [more eval_replies.jsonl ...]

The replies are the model's own about training films (the evaluation's `seen` group: rows of any other group are
refused), and the quotes are the same films' reviews from the training split, so the held-out films the
evaluation measures critic-likeness on stay out of the scorer. Films are kept whole in the cross-validation
reported beside the weights: the scorer must tell how replies are written, not which films they are about.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from assistant.data.embeddings import make_embeddings  # noqa: E402
from assistant.model.critic_scorer import SHIPPED, CriticScorer, features  # noqa: E402
from assistant.model.shipped import read_card  # noqa: E402
from assistant.settings import get_settings  # noqa: E402
from assistant.training.examples import DataConfig, open_split  # noqa: E402

log = logging.getLogger("critic_scorer")


def read_replies(paths: list[Path]) -> list[dict]:
    """Every non-empty reply of the files; a row about a film the model did not train on is an error."""
    rows = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("group") != "seen" or not row.get("movie_key"):
                raise SystemExit(f"{path}: request {row.get('id')} is from group {row.get('group')!r}; the scorer "
                                 "learns from replies about training films only (--groups seen)")
            if (row.get("text") or "").strip():
                rows.append(row)
    return rows


def training_quotes(films: set[str], per_film: int, seed: int) -> tuple[list[str], list[str]]:
    """(quotes, their films): up to `per_film` training-split reviews of each film, drawn at random. The split is
    the shipped model's (its card's data config): its held-out films are the ones the evaluation asks about."""
    _, split = open_split(get_settings(), DataConfig(**read_card().get("data_config", {})))
    by_film: dict[str, list[str]] = defaultdict(list)
    for doc in split.train:
        key = doc.metadata.get("movie_key")
        if key in films and doc.page_content.strip():
            by_film[key].append(doc.page_content.strip())
    missing = films - set(by_film)
    if missing:
        raise SystemExit(f"{len(missing)} films of the replies have no training reviews (e.g. {sorted(missing)[0]}): "
                         "were the replies written against another store?")
    quotes, owners = [], []
    for key in sorted(by_film):
        pool = by_film[key]
        random.Random(f"{seed}:{key}").shuffle(pool)
        quotes += pool[:per_film]
        owners += [key] * len(pool[:per_film])
    return quotes, owners


def film_held_accuracy(texts: list[str], vectors: np.ndarray, labels: np.ndarray, films: list[str],
                       c: float) -> float:
    """Accuracy with whole films held out (5 folds)."""
    from sklearn.model_selection import GroupKFold, cross_val_predict

    predicted = cross_val_predict(CriticScorer.estimator(c), features(texts, vectors), labels,
                                  cv=GroupKFold(n_splits=5), groups=films)
    return float(np.mean(predicted == labels))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("replies", type=Path, nargs="+", help="eval_replies.jsonl files of --groups seen runs")
    p.add_argument("--per-film", type=int, default=8, help="training quotes per film (default 8)")
    p.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=SHIPPED, help=f"where to write (default {SHIPPED})")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rows = read_replies(args.replies)
    films = {r["movie_key"] for r in rows}
    quotes, quote_films = training_quotes(films, args.per_film, args.seed)
    texts = [r["text"].strip() for r in rows] + quotes
    labels = np.array([0] * len(rows) + [1] * len(quotes))
    owners = [r["movie_key"] for r in rows] + quote_films
    log.info("%d replies and %d quotes of %d training films", len(rows), len(quotes), len(films))
    vectors = np.asarray(make_embeddings(get_settings()).embed_documents(texts), dtype=np.float32)
    accuracy = film_held_accuracy(texts, vectors, labels, owners, args.c)
    log.info("accuracy with whole films held out: %.3f", accuracy)
    trained_on = {"replies": len(rows), "quotes": len(quotes), "films": len(films),
                  "reply_files": [f"{path.parent.name}/{path.name}" for path in args.replies],
                  "per_film": args.per_film, "c": args.c,
                  "film_held_out_accuracy": round(accuracy, 4)}
    CriticScorer.train(texts, vectors, labels.astype(bool), c=args.c, trained_on=trained_on).save(args.out)
    log.info("wrote %s.json and .npz (%d KB)", args.out, args.out.with_suffix(".npz").stat().st_size // 1024)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
