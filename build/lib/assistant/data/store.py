"""The review store, read side: a LangChain `VectorStore` over the docs table and a vector backend.

Files: `store_layout`; the filter: `store_filter`; vectors: `vectors` (FAISS files or Qdrant, by one setting).
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from assistant.data.store_filter import Columns, Where
from assistant.data.store_layout import (
    REBUILD_HINT,
    Manifest,
    StoreError,
    check_compatible,
    current_dir,
)
from assistant.data.vectors import VectorIndex, open_vectors
from assistant.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["ReviewStore", "StoreError"]

_READ_ONLY = ("The review store is built by the ingest pipeline, not by add_texts: run `python ingest.py FILE...` "
              "(it cleans, de-duplicates, chunks and embeds, then makes the new store live in one atomic step)")
_SQLITE_PARAMS = 900  # SQLite's bound-parameter limit, with room to spare


class ReviewStore(VectorStore):
    """The reviews as a LangChain vector store: filtered similarity and MMR search, documents by id.

    `filter` (every search method and `as_retriever(search_kwargs={"filter": ...})`) is a dict over
    movie_key, sentiment, kind and doc_id, with a value, a list of values, or `$eq/$in/$ne/$nin`
    (`store_filter`). It is applied inside the vector search, so asking for k reviews of one movie returns
    that movie's reviews however many other movies are closer to the query. To leave out reviews already
    shown ("another one"), exclude their stored documents: ``{"doc_id": {"$nin": seen_doc_ids}}``; every
    chunk of those documents is then skipped. No filter means every document, the movies' facts included;
    pass ``{"kind": "review"}`` for reviews only.

    Every returned Document carries its chunk id as `Document.id` and `metadata["similarity"]`, the
    cosine of its vector with the query's (for MMR too: the similarity, not the MMR score). Scores from
    `similarity_search_with_score` are the same cosines (higher is closer); relevance scores for
    `search_type="similarity_score_threshold"` are the cosine clipped to [0, 1].

    Read-only: `add_texts`/`from_texts` raise NotImplementedError naming `python ingest.py`, because a write
    is a new store generation (de-duplicated by deterministic ids, made live atomically while readers keep
    theirs), which is the ingest pipeline's job and too heavy for a per-call add.
    """

    def __init__(self, directory: Path, manifest: Manifest, columns: Columns, ids: list[str],
                 backend: VectorIndex, embeddings: Embeddings | None = None):
        self.directory = directory
        self.manifest = manifest
        self.columns = columns
        self.backend = backend
        self.ids = ids
        self._embeddings = embeddings
        self._local = threading.local()
        self._query_vectors: OrderedDict[str, np.ndarray] = OrderedDict()  # embed_query's recent answers
        self._query_lock = threading.Lock()

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
            columns, ids = _read_columns(directory)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"Store {directory} has a damaged document table ({exc}); run: {REBUILD_HINT}") from exc
        backend = open_vectors(settings, directory, manifest.embedding_dim, columns)
        problem = None
        if backend.dim != manifest.embedding_dim:
            problem = f"vector dimension {backend.dim}, manifest {manifest.embedding_dim}"
        elif backend.total != len(ids):
            problem = f"{backend.total} vectors but {len(ids)} documents"
        if problem:
            backend.close()
            raise StoreError(f"Store {directory} is damaged ({problem}); run: {REBUILD_HINT}")
        return cls(directory, manifest, columns, ids, backend, embeddings)

    def close(self) -> None:
        """Release the vector backend (an embedded Qdrant's memory); the store cannot search afterwards."""
        self.backend.close()

    def _connect(self) -> sqlite3.Connection:
        # One read-only connection per thread: Streamlit serves sessions from several threads.
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.directory / 'docs.sqlite'}?mode=ro", uri=True, check_same_thread=False)
            self._local.conn = conn
        return conn

    # -- what callers read -----------------------------------------------------------------------
    @property
    def embeddings(self) -> Embeddings | None:
        return self._embeddings

    @embeddings.setter
    def embeddings(self, value: Embeddings | None) -> None:
        # The chat loads the embedding model on first use and hands it to the store it already opened.
        with self._query_lock:
            self._embeddings = value
            self._query_vectors.clear()

    @property
    def total(self) -> int:
        return self.backend.total

    @property
    def dim(self) -> int:
        return self.backend.dim

    @property
    def kinds(self) -> np.ndarray:
        return self.columns.kinds

    @property
    def movie_keys(self) -> np.ndarray:
        return self.columns.movie_keys

    @property
    def sentiments(self) -> np.ndarray:
        return self.columns.sentiments

    @property
    def doc_ids(self) -> list[str]:
        return self.columns.doc_ids

    def _documents(self, positions: Sequence[int]) -> list[Document]:
        db = self._connect()
        found: dict[int, Document] = {}
        for start in range(0, len(positions), _SQLITE_PARAMS):
            batch = [int(p) for p in positions[start : start + _SQLITE_PARAMS]]
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
        return self._documents(self.columns.positions_by_doc.get(doc_id, []))

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Chunks by their ids (`Document.id`), in the order asked; unknown ids are skipped."""
        positions: list[int] = []
        for start in range(0, len(ids), _SQLITE_PARAMS):
            batch = list(ids[start : start + _SQLITE_PARAMS])
            marks = ",".join("?" * len(batch))
            positions += [row[0] for row in self.sql(f"SELECT pos FROM docs WHERE id IN ({marks})", batch)]
        by_id = {d.id: d for d in self._documents(positions)}
        return [by_id[i] for i in ids if i in by_id]

    def vectors_at(self, positions: Sequence[int]) -> np.ndarray:
        """Stored vectors at docs.pos positions, one row each (no re-embedding)."""
        return self.backend.vectors(positions)

    def vectors_for(self, doc_ids: Sequence[str]) -> np.ndarray:
        """Stored vectors (first chunk of each document), in the order asked; KeyError for an unknown id."""
        return self.vectors_at([self.columns.positions_by_doc[doc_id][0] for doc_id in doc_ids])

    def movie_positions(self, movie_key: str, kind: str | None = None) -> list[int]:
        mask = self.movie_keys == movie_key
        if kind:
            mask &= self.kinds == kind
        return np.flatnonzero(mask).tolist()

    def sql(self, query: str, params: Sequence = ()) -> list[tuple]:
        """Read-only SQL over the docs table (counts per movie and the like)."""
        return self._connect().execute(query, params).fetchall()

    QUERY_CACHE = 64  # recent queries whose vectors are kept

    def embed_query(self, query: str) -> np.ndarray:
        """The query's vector. A review request searches its query two or three times (the reviews, the facts
        card, a wider search when the narrow one finds nothing), at about 20 ms an encoding on two cores, so the
        last few vectors are kept (read-only: callers share them)."""
        embeddings = self._embeddings
        if embeddings is None:
            raise StoreError("This store was opened without an embedding model, so it cannot embed a query")
        with self._query_lock:
            vector = self._query_vectors.get(query)
            if vector is not None:
                self._query_vectors.move_to_end(query)
                return vector
        vector = np.asarray(embeddings.embed_query(query), dtype=np.float32)
        vector.flags.writeable = False
        with self._query_lock:
            if embeddings is self._embeddings:  # not a vector of a model swapped out meanwhile
                self._query_vectors[query] = vector
                while len(self._query_vectors) > self.QUERY_CACHE:
                    self._query_vectors.popitem(last=False)
        return vector

    # -- searching: one core, every LangChain entry point on top ---------------------------------
    def _search(self, vector: Any, k: int, where: Where, *, mmr: bool = False, fetch_k: int = 20,
                lambda_mult: float = 0.5) -> list[tuple[Document, float]]:
        """(document with metadata["similarity"], cosine), best first; with `mmr`, diverse among `fetch_k`."""
        if k <= 0 or where.is_empty_set():
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        positions, scores = self.backend.search(query, max(k, fetch_k) if mmr else k, where)
        # Equal scores (identical chunks) in position order, so every backend returns the same list.
        order = sorted(range(len(positions)), key=lambda i: (-scores[i], positions[i]))
        positions, scores = [positions[i] for i in order], [scores[i] for i in order]
        if mmr and len(positions) > k:
            chosen = maximal_marginal_relevance(query, self.backend.vectors(positions), k=k, lambda_mult=lambda_mult)
            positions, scores = [positions[c] for c in chosen], [scores[c] for c in chosen]
        positions, scores = positions[:k], scores[:k]
        docs = self._documents(positions)
        for doc, score in zip(docs, scores, strict=True):
            doc.metadata["similarity"] = score
        return list(zip(docs, scores, strict=True))

    def similarity_search_with_score_by_vector(self, embedding: Sequence[float], k: int = 4,
                                               filter: Mapping[str, Any] | None = None,
                                               **kwargs: Any) -> list[tuple[Document, float]]:
        _check_kwargs(kwargs)
        return self._search(embedding, k, Where.parse(filter))

    def similarity_search_with_score(self, query: str, k: int = 4, filter: Mapping[str, Any] | None = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        where = Where.parse(filter)  # a bad filter fails before the query is embedded
        _check_kwargs(kwargs)
        return self._search(self.embed_query(query), k, where)

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4,
                                    filter: Mapping[str, Any] | None = None,
                                    **kwargs: Any) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)]

    def similarity_search(self, query: str, k: int = 4, filter: Mapping[str, Any] | None = None,
                          **kwargs: Any) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def _similarity_search_with_relevance_scores(self, query: str, k: int = 4,
                                                 **kwargs: Any) -> list[tuple[Document, float]]:
        # Cosine is already a relevance; LangChain wants it in [0, 1].
        return [(d, min(1.0, max(0.0, s))) for d, s in self.similarity_search_with_score(query, k, **kwargs)]

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4, fetch_k: int = 20,
                                                lambda_mult: float = 0.5,
                                                filter: Mapping[str, Any] | None = None,
                                                **kwargs: Any) -> list[Document]:
        _check_kwargs(kwargs)
        hits = self._search(embedding, k, Where.parse(filter), mmr=True, fetch_k=fetch_k, lambda_mult=lambda_mult)
        return [d for d, _ in hits]

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
                                      filter: Mapping[str, Any] | None = None,
                                      **kwargs: Any) -> list[Document]:
        where = Where.parse(filter)
        _check_kwargs(kwargs)
        hits = self._search(self.embed_query(query), k, where, mmr=True, fetch_k=fetch_k, lambda_mult=lambda_mult)
        return [d for d, _ in hits]

    def search_vector(self, vector: np.ndarray, k: int = 4, *, kind: str | None = "review",
                      movie_key: str | None = None, sentiment: str | None = None, exclude_ids: Iterable[str] = (),
                      mmr: bool = False, fetch_k: int = 20, lambda_mult: float = 0.6) -> list[tuple[Document, float]]:
        """By-vector search with the filters as keywords (reviews only by default), for the training and
        evaluation code; the same search as the VectorStore methods."""
        where = Where.of(kind=kind, movie_key=movie_key, sentiment=sentiment, exclude_ids=exclude_ids)
        return self._search(vector, k, where, mmr=mmr, fetch_k=fetch_k, lambda_mult=lambda_mult)

    def neighbours(self, doc_id: str, k: int = 4, *, same_movie: bool = True, exclude_ids: Iterable[str] = (),
                   **filters: Any) -> list[tuple[Document, float]]:
        """Nearest other documents to a stored one, by its stored vector (no re-embedding)."""
        positions = self.columns.positions_by_doc.get(doc_id)
        if not positions:
            return []
        movie = self.movie_keys[positions[0]] if same_movie else None
        return self.search_vector(self.vectors_at(positions[:1])[0], k, movie_key=movie or None,
                                  exclude_ids={doc_id, *exclude_ids}, **filters)

    # -- writing belongs to the ingest pipeline --------------------------------------------------
    def add_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, **kwargs: Any) -> list[str]:
        raise NotImplementedError(_READ_ONLY)

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        raise NotImplementedError(_READ_ONLY)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        raise NotImplementedError(_READ_ONLY)

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings, metadatas: list[dict] | None = None,
                   **kwargs: Any) -> ReviewStore:
        raise NotImplementedError(_READ_ONLY)


def _check_kwargs(kwargs: Mapping[str, Any]) -> None:
    """Refuse search options this store does not have, instead of silently ignoring a typo."""
    unknown = set(kwargs) - {"fetch_k", "lambda_mult"}  # harmless when a retriever switches search types
    if unknown:
        raise TypeError(f"Unknown search option(s) {', '.join(sorted(unknown))} for the review store")


def _read_columns(directory: Path) -> tuple[Columns, list[str]]:
    """The docs table's filter columns and chunk ids, in position order; StoreError when positions have gaps."""
    with closing(sqlite3.connect(f"file:{directory / 'docs.sqlite'}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT pos, id, doc_id, kind, movie_key, sentiment FROM docs ORDER BY pos").fetchall()
    if any(r[0] != i for i, r in enumerate(rows)):
        raise StoreError(f"Store {directory} is damaged: document positions have gaps; run: {REBUILD_HINT}")
    return Columns.from_rows(r[2:] for r in rows), [r[1] for r in rows]
