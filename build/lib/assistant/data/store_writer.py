"""Writing the review store: one writer at a time builds the next generation beside the live one and makes it
live atomically (`assistant.data.generations`, `assistant.data.locks`)."""
from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np
from langchain_core.documents import Document

from assistant.data import generations
from assistant.data.embeddings import embedding_model_id
from assistant.data.locks import LockBusy, WriterLock
from assistant.data.store_filter import Columns, filter_fields
from assistant.data.vectors import drop_unused_collections, moves_vectors, vector_sink
from assistant.settings import Settings

log = logging.getLogger(__name__)

from assistant.data.store_layout import (
    DOCS_SCHEMA,
    SCHEMA_VERSION,
    Manifest,
    StoreError,
    check_compatible,
    current_dir,
    is_store_generation,
)


def store_lock(settings: Settings, **kwargs) -> WriterLock:
    """The store's writer lock; a second writer waits `settings.writer_wait_s` for it (kwargs override)."""
    return WriterLock(settings.index_dir, "The review store", **{"wait": settings.writer_wait_s, **kwargs})


class StoreWriter:
    """Builds the next generation beside the live one; `commit` makes it live in one atomic rename.

    Holds the store's writer lock from construction until `commit` or `abort`: a second writer waits
    (or fails with StoreError naming the holder), readers never wait.
    """

    def __init__(self, settings: Settings, dim: int, *, rebuild: bool = False):
        self.settings = settings
        self.index_dir = settings.index_dir
        self.lock = store_lock(settings)
        try:
            self.lock.acquire()
        except LockBusy as exc:
            raise StoreError(str(exc)) from None
        self.tmp = self.db = None
        try:
            self._clean_stale()
            self.base = None if rebuild else current_dir(self.index_dir)
            previous = Manifest.read(self.base / "manifest.json") if self.base else None
            if previous is not None:
                check_compatible(previous, settings, self.base)
            self.tmp = generations.start_building(self.index_dir)
            if previous is not None:
                shutil.copy2(self.base / "docs.sqlite", self.tmp / "docs.sqlite")
            self.db = sqlite3.connect(self.tmp / "docs.sqlite")
            self.db.executescript(DOCS_SCHEMA)
            self.known_ids = {row[0] for row in self.db.execute("SELECT id FROM docs")}
            self.known_doc_ids = {row[0] for row in self.db.execute("SELECT DISTINCT doc_id FROM docs")}
            # the vectors: the base generation's first, then this build's (FAISS file or Qdrant collection)
            columns = Columns.from_rows(self.db.execute("SELECT doc_id, kind, movie_key, sentiment FROM docs ORDER BY pos"))
            self.vectors = vector_sink(settings, dim, self.base, self.tmp, columns)
        except BaseException:
            if self.db is not None:
                self.db.close()
            if self.tmp is not None:
                shutil.rmtree(self.tmp, ignore_errors=True)  # a bad manifest or index leaves no build folder
            self.lock.release()
            raise
        self.moves_vectors = moves_vectors(settings, self.base)  # worth a new generation even with nothing new
        self.sources: dict = dict(previous.sources) if previous else {}
        self.created = previous.created if previous else time.time()
        self.dim = dim

    def _clean_stale(self) -> None:
        """Remove what interrupted ingests left, and superseded generations: only folders this program made.

        The generation before the live one stays until the next commit: a process that loaded it
        (the running app) may still be reading its files.
        """
        generations.clean_stale(self.index_dir, legacy=is_store_generation)
        drop_unused_collections(self.settings)

    @property
    def total(self) -> int:
        """Chunks in the generation being built."""
        return self.vectors.total

    def add(self, documents: Sequence[Document], vectors: np.ndarray) -> None:
        start = self.vectors.total
        self.vectors.add(vectors, [filter_fields(d.metadata["doc_id"], d.metadata.get("kind"), d.metadata.get("movie_key"),
                                                 d.metadata.get("sentiment")) for d in documents])
        self.db.executemany(
            "INSERT INTO docs (pos, id, doc_id, kind, movie_key, sentiment, text, meta) VALUES (?,?,?,?,?,?,?,?)",
            [
                (
                    start + i, d.id, d.metadata["doc_id"], d.metadata.get("kind", "review"),
                    d.metadata.get("movie_key"), d.metadata.get("sentiment"), d.page_content,
                    json.dumps(d.metadata, ensure_ascii=False),
                )
                for i, d in enumerate(documents)
            ],
        )
        self.known_ids.update(d.id for d in documents)

    def commit(self, sources: dict[str, str]) -> Path:
        self.db.commit()
        kinds = dict(self.db.execute("SELECT kind, COUNT(DISTINCT doc_id) FROM docs GROUP BY kind").fetchall())
        movies = self.db.execute("SELECT COUNT(DISTINCT movie_key) FROM docs WHERE movie_key IS NOT NULL").fetchone()[0]
        self.db.close()
        self.vectors.save(self.tmp)
        self.sources.update(sources)
        Manifest(
            schema_version=SCHEMA_VERSION,
            embedding_model=embedding_model_id(self.settings),
            embedding_dim=self.dim,
            faiss_version=faiss.__version__,
            counts={"chunks": self.vectors.total, "reviews": kinds.get("review", 0),
                    "movie_documents": kinds.get("movie", 0), "movies": movies},
            sources=self.sources,
            created=self.created,
            updated=time.time(),
        ).write(self.tmp / "manifest.json")
        try:
            final = generations.publish(self.tmp, self.index_dir)  # the one step that makes the new store live
            self._clean_stale()
        finally:
            self.lock.release()
        log.info("Store generation %s is live (%d chunks)", final.name, self.vectors.total)
        return final

    def abort(self) -> None:
        try:
            self.db.close()
            self.vectors.abort()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.lock.release()
