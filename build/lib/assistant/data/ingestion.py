"""Read -> de-duplicate -> chunk -> embed -> store: the ingest pipeline behind `ingest.py`."""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter
from tqdm.auto import tqdm

from assistant.data.embeddings import ReviewEmbeddings, make_embeddings, torch_threads
from assistant.data.readers import (
    ColumnMapping,
    ReaderError,
    ReadStats,
    discover,
    read_file,
    read_hub,
)
from assistant.data.records import MovieFacts, Review
from assistant.data.store_writer import StoreWriter
from assistant.data.text import counting_cleanups
from assistant.data.vectors import check_vector_store
from assistant.settings import Settings

log = logging.getLogger(__name__)

# Chunks embedded per call: large enough that sentence-transformers' own length sorting keeps batches tight.
EMBED_BLOCK = 1024

ProgressFn = Callable[[int, int], None]


@dataclass
class IngestSummary:
    files: int = 0
    rows: int = 0
    kept: int = 0
    duplicates: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    cleaned: dict[str, int] = field(default_factory=dict)  # values kept but changed, by cleaning step
    already_stored: int = 0
    embedded: int = 0
    total: int = 0
    seconds: float = 0.0
    per_second: float = 0.0
    embed_seconds: float = 0.0
    read_seconds: float = 0.0  # reading, cleaning and de-duplicating the sources
    model_wait_seconds: float = 0.0  # the model's load that reading did not hide
    cpu_seconds: float = 0.0  # this process's, all threads: on a shared machine a steadier measure than seconds
    store: str = ""

    def as_json(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        skipped = ", ".join(f"{reason}: {n:,}" for reason, n in sorted(self.skipped.items())) or "none"
        cleaned = ", ".join(f"{step}: {n:,}" for step, n in sorted(self.cleaned.items()))
        verdict = (
            f"embedded {self.embedded:,} new chunks" if self.embedded else "nothing new to embed: the store is up to date"
        )
        return [
            f"Files: {self.files}   rows read: {self.rows:,}   kept: {self.kept:,}   duplicates merged: {self.duplicates:,}",
            f"Skipped: {skipped}" + (f"   cleaned: {cleaned}" if cleaned else ""),
            f"Already in store: {self.already_stored:,}   {verdict}",
            f"Store: {self.total:,} chunks at {self.store}",
            f"Time: {self.seconds:.1f} s, of which embedding {self.embed_seconds:.1f} s ({self.per_second:.1f} chunks/s overall)",
        ]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sources(paths: Sequence[Path], mapping: ColumnMapping | None, hub: bool):
    """(name, stats, records, content hash) for every file under `paths`, then the hub dataset if asked."""
    for path, fmt in discover(list(paths), include_csv=mapping is not None):
        stats = ReadStats()
        yield str(path.resolve()), stats, read_file(path, fmt, stats, mapping=mapping), file_sha256(path)
    if hub:
        stats = ReadStats()
        yield "hub:rotten_tomatoes", stats, _hub_records(stats), "hub"


def _hub_records(stats: ReadStats):
    try:
        yield from read_hub(stats)
    except (OSError, ValueError) as exc:  # huggingface_hub's network and not-found errors derive from these
        raise ReaderError("hub:rotten_tomatoes", f"download failed ({type(exc).__name__}); check the connection "
                          "or pass local files") from exc


def read_records(
    paths: Sequence[Path], mapping: ColumnMapping | None, limit: int | None, summary: IngestSummary, hub: bool = False
) -> tuple[list[Review | MovieFacts], dict[str, str]]:
    """All unique records of the given sources (first occurrence wins), with each source's hash."""
    seen: set[str] = set()
    records: list[Review | MovieFacts] = []
    skipped: Counter = Counter()
    hashes: dict[str, str] = {}
    for name, stats, stream, digest in _sources(paths, mapping, hub):
        summary.files += 1
        for record in stream:
            if record.doc_id in seen:
                summary.duplicates += 1
                continue
            seen.add(record.doc_id)
            records.append(record)
            if limit is not None and len(records) >= limit:
                break
        summary.rows += stats.rows
        skipped.update(stats.skipped)
        hashes[name] = digest
        log.info("%s: %d rows, %d kept, skipped %s", Path(name).name, stats.rows, stats.kept, dict(stats.skipped))
        if limit is not None and len(records) >= limit:
            log.info("Stopped reading at --limit %d records", limit)
            break
    summary.kept = len(records)
    summary.skipped = dict(skipped)
    return records, hashes


def to_chunks(records: Iterable[Review | MovieFacts], splitter: RecursiveCharacterTextSplitter) -> list[Document]:
    """Each record as one or more chunks; every chunk carries the record's metadata and a deterministic id.

    A text that fits one chunk is that chunk, stripped, as the splitter would return it (checked on every record
    of the mirror); asking the splitter anyway cost 9 of the 25 seconds that reading and chunking took."""
    chunks: list[Document] = []
    for record in records:
        text = record.text if isinstance(record, Review) else record.to_text()
        meta = record.metadata()
        fits = len(text) <= splitter._chunk_size  # noqa: SLF001 - the splitter's own limit, no public accessor
        pieces = ([text.strip()] if text.strip() else []) if fits else splitter.split_text(text)
        for i, piece in enumerate(pieces):
            chunks.append(Document(page_content=piece, metadata={**meta, "chunk": i}, id=f"{meta['doc_id']}:{i}"))
    return chunks


def embed_into(
    writer: StoreWriter, chunks: list[Document], embeddings: Embeddings, progress: ProgressFn | None, show_bar: bool,
    threads: int = 0,
) -> None:
    """Embed shortest first, so every batch pads little, on every core of the machine (torch threads are per
    thread: an ingest started from a thread of the chat server must not inherit a generation thread's one).

    Characters order the whole set into windows of EMBED_BLOCK chunks; within a window the model's own tokens
    order the batches (`ReviewEmbeddings.embed_in_token_order`), which characters alone do poorly."""
    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i].page_content))
    if isinstance(embeddings, ReviewEmbeddings):
        encode = embeddings.embed_in_token_order
    else:  # any other LangChain embeddings (tests' stand-ins)
        def encode(texts: list[str]) -> np.ndarray:
            return np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
    with torch_threads(threads or os.cpu_count() or 1), \
            tqdm(total=len(chunks), desc="Embedding", unit="chunk", disable=not show_bar) as bar:
        for start in range(0, len(order), EMBED_BLOCK):
            block = [chunks[i] for i in order[start : start + EMBED_BLOCK]]
            writer.add(block, encode([d.page_content for d in block]))
            bar.update(len(block))
            if progress:
                progress(min(start + EMBED_BLOCK, len(order)), len(order))


class _Loading(threading.Thread):
    """The embedding model, loaded in the background while the review files are read."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="load-embeddings", daemon=True)
        self.settings, self.model, self.failure = settings, None, None
        self.start()

    def run(self) -> None:
        try:
            self.model = make_embeddings(self.settings)
        except BaseException as exc:  # re-raised in the caller's thread by result()
            self.failure = exc

    def result(self) -> Embeddings:
        self.join()
        if self.failure is not None:
            raise self.failure
        return self.model


def ingest(
    paths: Sequence[Path],
    settings: Settings,
    *,
    limit: int | None = None,
    rebuild: bool = False,
    mapping: ColumnMapping | None = None,
    hub: bool = False,
    embeddings: Embeddings | None = None,
    progress: ProgressFn | None = None,
    show_bar: bool = True,
) -> IngestSummary:
    """Add what is new in `paths` to the store; the live store changes only if everything succeeds."""
    started, cpu_started = time.perf_counter(), time.process_time()
    check_vector_store(settings)
    summary = IngestSummary(store=str(settings.index_dir))
    loader = None if embeddings is not None else _Loading(settings)  # loads while the files are read
    try:
        with counting_cleanups() as cleaned:  # the readers clean every value with text.clean_text
            records, hashes = read_records(paths, mapping, limit, summary, hub)
    except BaseException:
        if loader is not None:  # a process that exits mid-import of torch aborts ("terminate called ...")
            loader.join()
        raise
    summary.cleaned = dict(cleaned)
    summary.read_seconds = time.perf_counter() - started
    embeddings = embeddings or loader.result()
    summary.model_wait_seconds = time.perf_counter() - started - summary.read_seconds
    dim = len(embeddings.embed_query("dimension probe"))
    writer = StoreWriter(settings, dim, rebuild=rebuild)
    try:
        new = [r for r in records if r.doc_id not in writer.known_doc_ids]
        summary.already_stored = len(records) - len(new)
        chunks = to_chunks(new, RecursiveCharacterTextSplitter(
            chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap))
        embed_started = time.perf_counter()
        embed_into(writer, chunks, embeddings, progress, show_bar, settings.embedding_threads)
        summary.embed_seconds = time.perf_counter() - embed_started
        summary.embedded = len(chunks)
        sources_changed = any(writer.sources.get(p) != h for p, h in hashes.items())
        if chunks or sources_changed or writer.base is None or writer.moves_vectors:
            writer.commit(hashes)
        else:
            writer.abort()
        summary.total = writer.total
    except BaseException:
        writer.abort()  # the live generation was never touched
        raise
    summary.seconds = time.perf_counter() - started
    summary.cpu_seconds = time.process_time() - cpu_started
    summary.per_second = summary.embedded / summary.seconds if summary.embedded else 0.0
    return summary
