"""Where the review store's vectors live, chosen by one setting: `vector_store` = "faiss" or "qdrant".

| setting                          | vectors kept in                 | searched by                          |
|----------------------------------|---------------------------------|--------------------------------------|
| faiss (default)                  | the generation's `index.faiss`  | FAISS, in this process               |
| qdrant, no qdrant_url            | the generation's `index.faiss`  | an embedded in-memory Qdrant         |
| qdrant, qdrant_url=http://...    | a collection on that server     | the Qdrant server                    |

The reader (`open_vectors`) and the writer (`vector_sink`) both go through here. A store built one way and
opened another is refused with what to run; `python ingest.py` under the new setting moves the vectors (from
files into a server collection or back) without embedding anything again.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from assistant.data import vectors_qdrant
from assistant.data.store_filter import Columns, Where
from assistant.data.store_layout import StoreError
from assistant.data.vectors_faiss import FaissSink, FaissVectors, read_index
from assistant.data.vectors_qdrant import (
    BATCH,
    QdrantSink,
    QdrantVectors,
    drop_unused_collections,
    stored_collection,
)
from assistant.settings import Settings

log = logging.getLogger(__name__)

BACKENDS = ("faiss", "qdrant")
EMBEDDED_COMFORT = 20_000  # above this, qdrant-client itself says local mode is the wrong tool
__all__ = ["BACKENDS", "VectorIndex", "VectorSink", "check_vector_store", "drop_unused_collections", "moves_vectors",
           "open_vectors", "vector_sink"]


class VectorIndex(Protocol):
    """What the store reads: filtered top-k by cosine, and stored vectors by docs position."""

    dim: int
    total: int

    def search(self, vector: np.ndarray, k: int, where: Where) -> tuple[list[int], list[float]]: ...

    def vectors(self, positions: list[int]) -> np.ndarray: ...

    def close(self) -> None: ...


class VectorSink(Protocol):
    """What the writer appends to: vectors in position order, saved into the generation being built."""

    total: int

    def add(self, vectors: np.ndarray, payloads: list[dict]) -> None: ...

    def save(self, building: Path) -> None: ...

    def abort(self) -> None: ...


def backend_name(settings: Settings) -> str:
    """The checked setting; StoreError (one line, naming it) for anything else."""
    name = settings.vector_store
    if name not in BACKENDS:
        raise StoreError(f"Unknown vector store {name!r} (setting vector_store, MRA_VECTOR_STORE): use "
                         f"{' or '.join(map(repr, BACKENDS))}")
    return name


def on_server(settings: Settings) -> bool:
    return backend_name(settings) == "qdrant" and bool(settings.qdrant_url)


def check_vector_store(settings: Settings) -> None:
    """Fail early, in one line, on an unknown backend or an unreachable server (before an ingest reads anything)."""
    if on_server(settings):
        vectors_qdrant.connect(settings)


def open_vectors(settings: Settings, directory: Path, dim: int, columns: Columns) -> VectorIndex:
    """The live generation's vectors, searched as the settings ask."""
    name = backend_name(settings)
    collection = stored_collection(directory)
    if collection is not None:
        if not on_server(settings):
            raise StoreError(f"Store {directory} keeps its vectors in Qdrant collection {collection!r}: set "
                             f"MRA_VECTOR_STORE=qdrant and MRA_QDRANT_URL to its server, or move them into files "
                             f"with: MRA_VECTOR_STORE=faiss python ingest.py (MRA_QDRANT_URL still set)")
        return QdrantVectors.on_server(settings, directory, dim, len(columns))
    if on_server(settings):
        raise StoreError(f"Store {directory} keeps its vectors in files, not on the Qdrant server at "
                         f"{settings.qdrant_url}; copy them there with: python ingest.py (nothing is embedded again)")
    index = read_index(directory)
    if name == "faiss":
        return FaissVectors(index, columns)
    if index.ntotal > EMBEDDED_COMFORT:
        log.warning("Loading %d vectors into an embedded in-memory Qdrant: it filters in Python, so each search "
                    "takes seconds at this size; use MRA_VECTOR_STORE=faiss or a Qdrant server (MRA_QDRANT_URL)",
                    index.ntotal)
    return QdrantVectors.in_memory(index.reconstruct_n(0, index.ntotal), columns)


def moves_vectors(settings: Settings, base: Path | None) -> bool:
    """True when building on `base` under these settings moves its vectors to where the settings keep them."""
    return base is not None and (stored_collection(base) is not None) != on_server(settings)


def vector_sink(settings: Settings, dim: int, base: Path | None, building: Path, columns: Columns) -> VectorSink:
    """Where the next generation's vectors go, holding the base generation's first (`columns`: its docs)."""
    backend_name(settings)
    collection = stored_collection(base) if base is not None else None
    if not on_server(settings):
        if base is None:
            return FaissSink(dim)
        if collection is None:
            return FaissSink(dim, read_index(base))
        return _filled(FaissSink(dim), QdrantVectors.on_server(settings, base, dim, len(columns)), columns)
    client = vectors_qdrant.connect(settings)
    if collection is not None:
        return QdrantSink.append_to(client, collection, len(columns), building)
    sink = QdrantSink.new_collection(client, settings, dim, building)
    if base is not None:
        try:
            _filled(sink, FaissVectors(read_index(base), columns), columns)
        except BaseException:
            sink.abort()
            raise
    return sink


def _filled(sink: VectorSink, source: VectorIndex, columns: Columns) -> VectorSink:
    """`sink` with every vector of `source` copied in position order (moving a store between backends)."""
    with tqdm(total=len(columns), desc="Moving vectors", unit="vector", disable=None) as bar:
        for start in range(0, len(columns), BATCH):
            positions = list(range(start, min(start + BATCH, len(columns))))
            sink.add(source.vectors(positions), [columns.payload(p) for p in positions])
            bar.update(len(positions))
    return sink
