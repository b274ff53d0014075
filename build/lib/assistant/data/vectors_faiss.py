"""FAISS vectors of the review store: an exact inner-product index file, filters applied inside the search.

The default backend, and the files the embedded Qdrant backend loads (`vectors_qdrant`).

`index.faiss` holds the normalized vectors, row i for docs.pos i; FAISS writes it in its own format (no
pickle). A filter becomes a FAISS `IDSelectorBitmap` over the positions that pass it, so the search ranks
only those: k nearest reviews of one movie are found however far that movie is from the query.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from assistant.data.store_filter import Columns, Where
from assistant.data.store_layout import REBUILD_HINT, StoreError

INDEX_FILE = "index.faiss"


def read_index(directory: Path) -> faiss.Index:
    try:
        return faiss.read_index(str(directory / INDEX_FILE))
    except RuntimeError as exc:
        raise StoreError(f"Store {directory} has a damaged FAISS index; run: {REBUILD_HINT}") from exc


class FaissVectors:
    """Read side: exact top-k by cosine (inner product of normalized vectors) among the positions passing a filter."""

    def __init__(self, index: faiss.Index, columns: Columns):
        self.index = index
        self.columns = columns

    @property
    def dim(self) -> int:
        return self.index.d

    @property
    def total(self) -> int:
        return self.index.ntotal

    def search(self, vector: np.ndarray, k: int, where: Where) -> tuple[list[int], list[float]]:
        """(positions, cosines), best first."""
        mask = self.columns.mask(where)
        params = None
        if mask is not None:
            if not mask.any():
                return [], []
            # One bit per position; FAISS reads bit (pos & 7) of byte (pos >> 3), hence little bit order.
            bits = np.packbits(mask, bitorder="little")
            params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits)))
            k = min(k, int(mask.sum()))
        k = min(k, self.total)
        if k <= 0:
            return [], []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        scores, idx = self.index.search(query, k, params=params)
        hits = [(int(i), float(s)) for i, s in zip(idx[0], scores[0]) if i != -1]
        return [i for i, _ in hits], [s for _, s in hits]

    def vectors(self, positions: Sequence[int]) -> np.ndarray:
        out = np.empty((len(positions), self.dim), dtype=np.float32)
        for row, pos in enumerate(positions):
            out[row] = self.index.reconstruct(int(pos))
        return out

    def close(self) -> None:
        """Nothing to release: the index is in memory."""


class FaissSink:
    """Write side: vectors appended in position order, written as `index.faiss` into the generation being built."""

    def __init__(self, dim: int, base: np.ndarray | faiss.Index | None = None):
        """`base`: the previous generation's index (extended in memory) or vectors to start from."""
        if isinstance(base, faiss.Index):
            self.index = base
        else:
            self.index = faiss.IndexFlatIP(dim)
            if base is not None and len(base):
                self.index.add(np.ascontiguousarray(base, dtype=np.float32))

    @property
    def total(self) -> int:
        return self.index.ntotal

    def add(self, vectors: np.ndarray, payloads: Sequence[dict]) -> None:
        """Payloads (the filter fields) live in the docs table; FAISS keeps only the vectors."""
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def save(self, building: Path) -> None:
        faiss.write_index(self.index, str(building / INDEX_FILE))

    def abort(self) -> None:
        """Nothing outside the build folder to undo."""
