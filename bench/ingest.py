"""Benchmark: ingest the whole data mirror from scratch, and compare with raw SentenceTransformer.encode.

    .venv/bin/python bench/ingest.py [--limit N] [--backend torch|onnx|openvino] [--compare-backend onnx]

Prints one JSON object: pipeline chunks/s, raw encode texts/s on the same texts, their ratio, peak memory,
and (with --compare-backend) the other backend's speed and how many top-5 neighbours it keeps identical.
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.data.embeddings import make_embeddings  # noqa: E402
from assistant.data.ingestion import ingest  # noqa: E402
from assistant.data.store import ReviewStore  # noqa: E402
from assistant.logs import setup_logging  # noqa: E402
from assistant.settings import Settings  # noqa: E402

log = logging.getLogger("bench.ingest")


def raw_encode_rate(settings: Settings, texts: list[str]) -> tuple[float, np.ndarray]:
    model = make_embeddings(settings)._client  # noqa: SLF001 - the raw SentenceTransformer is the baseline
    started = time.perf_counter()
    vectors = model.encode(texts, batch_size=settings.embedding_batch_size, normalize_embeddings=True)
    return len(texts) / (time.perf_counter() - started), np.asarray(vectors)


def top5_agreement(a: np.ndarray, b: np.ndarray, queries: int = 500) -> float:
    """Share of queries whose top-5 neighbour sets are identical under both embeddings."""
    rng = np.random.default_rng(0)
    picks = rng.choice(len(a), size=min(queries, len(a)), replace=False)
    same = 0
    for i in picks:
        top_a = set(np.argsort(-(a @ a[i]))[1:6])
        top_b = set(np.argsort(-(b @ b[i]))[1:6])
        same += top_a == top_b
    return same / len(picks)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int)
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--compare-backend")
    parser.add_argument("--raw-sample", type=int, default=20000, help="texts for the raw-encode baseline")
    args = parser.parse_args()
    setup_logging()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(index_dir=Path(tmp) / "index", embedding_backend=args.backend)
        summary = ingest([settings.data_dir], settings, limit=args.limit, rebuild=True)
        store = ReviewStore.open(settings)
        texts = [d.page_content for d in store.iter_documents(kind=None)]
    rng = np.random.default_rng(0)
    sample = [texts[i] for i in rng.choice(len(texts), size=min(args.raw_sample, len(texts)), replace=False)]
    raw_rate, vectors = raw_encode_rate(settings, sample)
    # The pipeline rate counts reading, cleaning, de-duplication and storing too: the honest comparison.
    report = {
        "backend": args.backend,
        "files": summary.files,
        "rows": summary.rows,
        "kept": summary.kept,
        "embedded": summary.embedded,
        "seconds": round(summary.seconds, 1),
        "embed_seconds": round(summary.embed_seconds, 1),
        "pipeline_per_s": round(summary.per_second, 1),
        "raw_encode_per_s": round(raw_rate, 1),
        "ratio": round(summary.per_second / raw_rate, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if args.compare_backend:
        other = Settings(embedding_backend=args.compare_backend)
        other_rate, other_vectors = raw_encode_rate(other, sample)
        report.update(
            compare_backend=args.compare_backend,
            compare_raw_per_s=round(other_rate, 1),
            compare_speedup=round(other_rate / raw_rate, 3),
            compare_max_abs_diff=float(np.abs(vectors - other_vectors).max()),
            compare_top5_identical=top5_agreement(vectors, other_vectors),
        )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
