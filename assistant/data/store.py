"""The FAISS review store, read side: filtered and MMR search, documents by id (files: `store_layout`)."""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import faiss
import numpy as np
from langchain_community.docstore.in_memory import InMemoryDocstore
from langchain_community.vectorstores import FAISS
from langchain_community.vectorstores.utils import (
    DistanceStrategy,
    maximal_marginal_relevance,
)
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from assistant.settings import Settings

log = logging.getLogger(__name__)

from assistant.data.store_layout import (
    REBUILD_HINT,
    Manifest,
    StoreError,
    check_compatible,
    current_dir,
)


class ReviewStore:
    """Read side of the store: filtered and MMR search, documents by id, and a LangChain FAISS view."""

    def __init__(self, directory: Path, manifest: Manifest, index: faiss.Index, embeddings: Embeddings | None):
        self.directory = directory
        self.manifest = manifest
        self.index = index
        self.embeddings = embeddings
        self._local = threading.local()
        with self._connect() as db:
            rows = db.execute("SELECT pos, id, doc_id, kind, movie_key, sentiment FROM docs ORDER BY pos").fetchall()
        if len(rows) != index.ntotal or any(r[0] != i for i, r in enumerate(rows)):
            raise StoreError(
                f"Store {directory} is damaged: {index.ntotal} vectors but {len(rows)} documents; run: {REBUILD_HINT}"
            )
        self.ids = [r[1] for r in rows]
        self.doc_ids = [r[2] for r in rows]
        self.kinds = np.array([r[3] for r in rows], dtype=object)
        self.movie_keys = np.array([r[4] or "" for r in rows], dtype=object)
        self.sentiments = np.array([r[5] or "unknown" for r in rows], dtype=object)
        self._pos_by_doc: dict[str, list[int]] = {}
        for pos, doc_id in enumerate(self.doc_ids):
            self._pos_by_doc.setdefault(doc_id, []).append(pos)

    # -- opening ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, settings: Settings, embeddings: Embeddings | None = None, *, check: bool = True) -> ReviewStore:
        """Open the live store; StoreError (one line, with the command to run) when missing or incompatible."""
        directory = current_dir(settings.index_dir)
        if directory is None:
            raise StoreError(f"No review store at {settings.index_dir}; build it with: python ingest.py")
        manifest = Manifest.read(directory / "manifest.json")
        if check:
            check_compatible(manifest, settings, directory)
        try:
            index = faiss.read_index(str(directory / "index.faiss"))
        except RuntimeError as exc:
            raise StoreError(f"Store {directory} has a damaged FAISS index; run: {REBUILD_HINT}") from exc
        if index.d != manifest.embedding_dim:
            raise StoreError(
                f"Store {directory}: index dimension {index.d} != manifest {manifest.embedding_dim}; run: {REBUILD_HINT}"
            )
        try:
            return cls(directory, manifest, index, embeddings)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"Store {directory} has a damaged document table ({exc}); run: {REBUILD_HINT}") from exc

    def _connect(self) -> sqlite3.Connection:
        # One read-only connection per thread: Streamlit serves sessions from several threads.
        conn = getattr(self._local, "conn", None)
        if conn is None:
            uri = f"file:{self.directory / 'docs.sqlite'}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._local.conn = conn
        return conn

    # -- reading ---------------------------------------------------------------------------------
    @property
    def total(self) -> int:
        return self.index.ntotal

    def _documents(self, positions: Sequence[int]) -> list[Document]:
        if not positions:
            return []
        db = self._connect()
        found: dict[int, Document] = {}
        for start in range(0, len(positions), 900):  # SQLite's bound-parameter limit
            batch = [int(p) for p in positions[start : start + 900]]
            marks = ",".join("?" * len(batch))
            for pos, text, meta in db.execute(f"SELECT pos, text, meta FROM docs WHERE pos IN ({marks})", batch):
                found[pos] = Document(page_content=text, metadata=json.loads(meta), id=self.ids[pos])
        return [found[int(p)] for p in positions]

    def iter_documents(self, kind: str | None = "review", batch: int = 2000) -> Iterator[Document]:
        positions = [i for i, k in enumerate(self.kinds) if kind is None or k == kind]
        for start in range(0, len(positions), batch):
            yield from self._documents(positions[start : start + batch])

    def get(self, doc_id: str) -> list[Document]:
        """All chunks of one stored review or movie document."""
        return self._documents(self._pos_by_doc.get(doc_id, []))

    def vectors_for(self, doc_ids: Sequence[str]) -> np.ndarray:
        """Stored vectors (first chunk of each document), in the order asked; KeyError for an unknown id."""
        positions = [self._pos_by_doc[doc_id][0] for doc_id in doc_ids]
        out = np.empty((len(positions), self.index.d), dtype=np.float32)
        for row, pos in enumerate(positions):
            out[row] = self.index.reconstruct(pos)
        return out

    def movie_positions(self, movie_key: str, kind: str | None = None) -> list[int]:
        mask = self.movie_keys == movie_key
        if kind:
            mask &= self.kinds == kind
        return np.flatnonzero(mask).tolist()

    def movie_keys_present(self) -> set[str]:
        return {k for k in set(self.movie_keys.tolist()) if k}

    def sql(self, query: str, params: Sequence = ()) -> list[tuple]:
        """Read-only SQL over the docs table (counts per movie and the like)."""
        return self._connect().execute(query, params).fetchall()

    # -- searching -------------------------------------------------------------------------------
    def _mask(self, kind: str | None, movie_key: str | None, sentiment: str | None) -> np.ndarray | None:
        if kind is None and movie_key is None and sentiment is None:
            return None
        mask = np.ones(self.total, dtype=bool)
        if kind:
            mask &= self.kinds == kind
        if movie_key:
            mask &= self.movie_keys == movie_key
        if sentiment:
            mask &= self.sentiments == sentiment
        return mask

    def embed_query(self, query: str) -> np.ndarray:
        if self.embeddings is None:
            raise StoreError("This store was opened without an embedding model, so it cannot embed a query")
        return np.asarray(self.embeddings.embed_query(query), dtype=np.float32)

    def search_vector(
        self,
        vector: np.ndarray,
        k: int = 4,
        *,
        kind: str | None = "review",
        movie_key: str | None = None,
        sentiment: str | None = None,
        exclude_ids: Iterable[str] = (),
        mmr: bool = False,
        fetch_k: int = 20,
        lambda_mult: float = 0.6,
    ) -> list[tuple[Document, float]]:
        """Exact top-k by cosine among the documents passing the filters (filters apply inside FAISS)."""
        mask = self._mask(kind, movie_key, sentiment)
        excluded = set(exclude_ids)
        if excluded:
            mask = np.ones(self.total, dtype=bool) if mask is None else mask.copy()
            for doc_id in excluded:
                mask[self._pos_by_doc.get(doc_id, [])] = False
        if mask is not None and not mask.any():
            return []
        want = max(k, fetch_k) if mmr else k
        params = None
        if mask is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.flatnonzero(mask).astype("int64")))
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        scores, idx = self.index.search(query, want, params=params)
        hits = [(int(i), float(s)) for i, s in zip(idx[0], scores[0]) if i != -1]
        if mmr and len(hits) > k:
            vectors = np.vstack([self.index.reconstruct(i) for i, _ in hits])
            chosen = maximal_marginal_relevance(query[0], vectors, k=k, lambda_mult=lambda_mult)
            hits = [hits[c] for c in chosen]
        docs = self._documents([i for i, _ in hits[:k]])
        return list(zip(docs, [s for _, s in hits[:k]]))

    def search(self, query: str, k: int = 4, **filters) -> list[tuple[Document, float]]:
        return self.search_vector(self.embed_query(query), k, **filters)

    def neighbours(
        self, doc_id: str, k: int = 4, *, same_movie: bool = True, exclude_ids: Iterable[str] = (), **filters
    ) -> list[tuple[Document, float]]:
        """Nearest other documents to a stored one, by its stored vector (no re-embedding)."""
        positions = self._pos_by_doc.get(doc_id)
        if not positions:
            return []
        vector = self.index.reconstruct(positions[0])
        movie = self.movie_keys[positions[0]] if same_movie else None
        return self.search_vector(
            vector, k, movie_key=movie or None, exclude_ids={doc_id, *exclude_ids}, **filters
        )

    def as_langchain(self) -> FAISS:
        """The store as LangChain's FAISS vector store (documents loaded in memory)."""
        if self.embeddings is None:
            raise StoreError("Open the store with an embedding model to use it as a LangChain vector store")
        docs = self._documents(list(range(self.total)))
        return FAISS(
            embedding_function=self.embeddings,
            index=self.index,
            docstore=InMemoryDocstore({d.id: d for d in docs}),
            index_to_docstore_id=dict(enumerate(self.ids)),
            distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
        )


