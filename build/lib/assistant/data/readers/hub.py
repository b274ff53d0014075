"""The `rotten_tomatoes` dataset on the Hugging Face hub (parquet splits of text,label; 1 = pos, 0 = neg).

For users who are online only: nothing calls this by default, and tests replace the download.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from huggingface_hub import hf_hub_download

from assistant.data.readers.base import (
    EMPTY_TEXT,
    UNKNOWN_LABEL,
    ReaderError,
    ReadStats,
)
from assistant.data.records import Review
from assistant.data.text import clean_text, detokenize, normalize_sentiment

HUB_REPO = "cornell-movie-review-data/rotten_tomatoes"
HUB_SPLITS = ("train", "validation", "test")


def read_hub(
    stats: ReadStats, splits: tuple[str, ...] = HUB_SPLITS, repo_id: str = HUB_REPO, revision: str | None = None
) -> Iterator[Review]:
    """Download each split's parquet file (cached by huggingface_hub) and stream its reviews."""
    for split in splits:
        local = hf_hub_download(repo_id, f"{split}.parquet", repo_type="dataset", revision=revision)
        yield from read_parquet(Path(local), stats, f"hub:{repo_id}/{split}")


def read_parquet(path: Path, stats: ReadStats, source: str) -> Iterator[Review]:
    """Reviews from one text,label parquet file, label scheme "binary" (1 = positive)."""
    import pyarrow.parquet as pq  # late: only hub users pay for importing pyarrow

    try:
        batches = pq.ParquetFile(path).iter_batches(columns=["text", "label"])
    except Exception as exc:  # pyarrow raises its own error types for bad files
        raise ReaderError(path, f"unreadable parquet file ({exc})") from exc
    for batch in batches:
        for row in batch.to_pylist():
            stats.rows += 1
            text = detokenize(clean_text(row.get("text")))
            sentiment = normalize_sentiment(row.get("label"), "binary")
            if not text:
                stats.skip(EMPTY_TEXT)
            elif sentiment is None:
                stats.skip(UNKNOWN_LABEL)
            else:
                stats.kept += 1
                yield Review(text=text, sentiment=sentiment, source=source)
