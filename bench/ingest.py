"""Benchmark: ingest the whole data mirror from scratch, and compare with raw SentenceTransformer.encode.

    .venv/bin/python bench/ingest.py [--limit N] [--precision bfloat16|float32] [--compare-precision float32]

Prints one JSON object: pipeline chunks/s, raw encode texts/s on the same texts (the same encoder, in the same
run, after the pipeline), their ratio, the embedding stage's own rate and ratio, where the rest of the time went,
peak memory, the load average; and with --compare-precision the other precision's raw speed, how close its vectors
are, and how many top-5 neighbours it keeps.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.data.embeddings import (  # noqa: E402
    EMBEDDING_BATCH_SIZE,
    make_embeddings,
    torch_threads,
)
from assistant.data.ingestion import ingest  # noqa: E402
from assistant.data.store import ReviewStore  # noqa: E402
from assistant.logs import setup_logging  # noqa: E402
from assistant.settings import Settings  # noqa: E402

log = logging.getLogger("bench.ingest")


def raw_encode_rate(settings: Settings, texts: list[str], threads: int) -> tuple[float, float, np.ndarray]:
    """The encoder alone: SentenceTransformer.encode on the texts, at the pipeline's precision and threads."""
    embeddings = make_embeddings(settings)
    model = embeddings._client  # noqa: SLF001 - the raw SentenceTransformer is the baseline
    with torch_threads(threads or os.cpu_count() or 1), embeddings._autocast():  # noqa: SLF001
        started, cpu = time.perf_counter(), time.process_time()
        vectors = model.encode(texts, batch_size=EMBEDDING_BATCH_SIZE, normalize_embeddings=True)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return len(texts) / seconds, len(texts) / cpu, np.asarray(vectors)


def top5_agreement(a: np.ndarray, b: np.ndarray, queries: int = 500) -> tuple[float, float]:
    """(share of queries whose top-5 neighbour sets are identical, mean share of the top 5 kept) across encodings."""
    rng = np.random.default_rng(0)
    picks = rng.choice(len(a), size=min(queries, len(a)), replace=False)
    same, kept = 0, 0.0
    for i in picks:
        top_a = set(np.argsort(-(a @ a[i]))[1:6])
        top_b = set(np.argsort(-(b @ b[i]))[1:6])
        same += top_a == top_b
        kept += len(top_a & top_b) / 5
    return same / len(picks), kept / len(picks)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int)
    parser.add_argument("--precision", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--compare-precision", choices=("bfloat16", "float32"))
    parser.add_argument("--raw-sample", type=int, default=20000, help="texts for the raw-encode baseline")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: every core)")
    parser.add_argument("--keep", type=Path, help="build the store here and keep it (for the retrieval evaluation)")
    args = parser.parse_args()
    setup_logging()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(index_dir=args.keep or Path(tmp) / "index", embedding_precision=args.precision)
        load_average = os.getloadavg()
        summary = ingest([settings.data_dir], settings, limit=args.limit, rebuild=True, threads=args.threads)
        store = ReviewStore.open(settings)
        texts = [d.page_content for d in store.iter_documents(kind=None)]
    rng = np.random.default_rng(0)
    sample = [texts[i] for i in rng.choice(len(texts), size=min(args.raw_sample, len(texts)), replace=False)]
    raw_rate, raw_cpu_rate, vectors = raw_encode_rate(settings, sample, args.threads)
    # The pipeline rate counts reading, cleaning, de-duplication and storing too: the honest comparison.
    # Per CPU-second rates are steadier than wall-clock ones on a shared machine (with one thread, no core is
    # counted twice); the wall-clock ratio is the one a quiet machine shows.
    pipeline_cpu_rate = summary.embedded / summary.cpu_seconds if summary.cpu_seconds else 0.0
    embed_rate = summary.embedded / summary.embed_seconds if summary.embed_seconds else 0.0
    report = {
        "precision": args.precision,
        "threads": args.threads or os.cpu_count(),
        "load_average_start": load_average,
        "load_average_end": os.getloadavg(),
        "files": summary.files,
        "rows": summary.rows,
        "kept": summary.kept,
        "embedded": summary.embedded,
        "seconds": round(summary.seconds, 1),
        "embed_seconds": round(summary.embed_seconds, 1),
        # where the rest went: reading (the model loads meanwhile), the load left to wait for, and the remainder
        # (the dimension probe, opening the writer, chunking, the commit)
        "read_seconds": round(summary.read_seconds, 2),
        "model_wait_seconds": round(summary.model_wait_seconds, 2),
        "other_seconds": round(summary.seconds - summary.embed_seconds - summary.read_seconds
                               - summary.model_wait_seconds, 2),
        "pipeline_per_s": round(summary.per_second, 1),
        "embed_stage_per_s": round(embed_rate, 1),
        "raw_encode_per_s": round(raw_rate, 1),
        "ratio": round(summary.per_second / raw_rate, 3),
        "embed_stage_ratio": round(embed_rate / raw_rate, 3),
        "pipeline_per_cpu_s": round(pipeline_cpu_rate, 1),
        "raw_encode_per_cpu_s": round(raw_cpu_rate, 1),
        "cpu_ratio": round(pipeline_cpu_rate / raw_cpu_rate, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if args.compare_precision:
        other = settings.model_copy(update={"embedding_precision": args.compare_precision})
        other_rate, other_cpu_rate, other_vectors = raw_encode_rate(other, sample, args.threads)
        identical, overlap = top5_agreement(vectors, other_vectors)
        report.update(
            compare_precision=args.compare_precision,
            compare_min_cosine=float((vectors * other_vectors).sum(1).min()),
            compare_raw_per_s=round(other_rate, 1),
            compare_raw_per_cpu_s=round(other_cpu_rate, 1),
            speedup_over_compare=round(raw_rate / other_rate, 3),
            speedup_over_compare_cpu=round(raw_cpu_rate / other_cpu_rate, 3),
            compare_max_abs_diff=float(np.abs(vectors - other_vectors).max()),
            compare_top5_identical=identical,
            compare_top5_overlap=round(overlap, 4),
        )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
