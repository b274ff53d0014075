"""A pan's retrieved reviews that read as negative lead the context (`chat.retrieval.clearest`)."""
from __future__ import annotations

import numpy as np
from langchain_core.documents import Document

from assistant.chat import retrieval
from assistant.chat.retrieval import ReviewRetrieval, clearest, retrieve
from assistant.data.records import Review
from assistant.settings import Settings


class ReadsByText:
    """A stand-in for the sentiment probe: P(positive) per stored vector, looked up by the review it came from."""

    def __init__(self, store, positive_words=("enjoy", "charming", "fun")) -> None:
        self.coef = np.zeros(store.dim, dtype=np.float32)
        self.by_row = {}
        for doc in store.iter_documents():
            vector = store.vectors_for([doc.metadata["doc_id"]])[0]
            lukewarm = any(w in doc.page_content.lower() for w in positive_words)
            self.by_row[vector.tobytes()] = 0.8 if lukewarm else 0.1

    def positive_probability(self, vectors):
        return np.array([self.by_row.get(np.asarray(v, dtype=np.float32).tobytes(), 0.5) for v in vectors])


class FixedStore:
    dim = 2

    def __init__(self, rows):
        self.rows = rows

    def vectors_for(self, ids):
        return np.array([self.rows[i] for i in ids], dtype=np.float32)


class FirstCoordinate:
    coef = np.zeros(2)

    def positive_probability(self, vectors):
        return np.asarray(vectors)[:, 0]


def _hits(*ids):
    return [(Document(page_content=i, metadata={"doc_id": i}), 1.0 - n / 10) for n, i in enumerate(ids)]


def test_a_pans_reviews_reading_as_negative_come_first_in_their_own_order():
    store = FixedStore({"a": [0.8, 0], "b": [0.2, 0], "c": [0.7, 0], "d": [0.1, 0], "e": [0.3, 0]})
    hits, probe = _hits("a", "b", "c", "d", "e"), FirstCoordinate()
    ids = lambda found: [d.metadata["doc_id"] for d, _ in found]  # noqa: E731
    assert ids(clearest(store, probe, "negative", hits, 3)) == ["b", "d", "e"]
    assert ids(clearest(store, probe, "negative", hits[::-1], 4)) == ["e", "d", "b", "c"]  # too few: the rest follow
    assert ids(clearest(store, probe, "positive", hits, 3)) == ["a", "b", "c"]  # praise keeps the retriever's order
    assert ids(clearest(store, None, "negative", hits, 3)) == ["a", "b", "c"]  # no probe: the retriever's order
    assert ids(clearest(store, probe, "negative", hits[:2], 3)) == ["a", "b"]  # nothing to choose between
    wrong_dim = FirstCoordinate()
    wrong_dim.coef = np.zeros(3)
    assert ids(clearest(store, wrong_dim, "negative", hits, 3)) == ["a", "b", "c"]
    assert ids(clearest(store, probe, "negative", _hits("a", "b", "c", "x"), 3)) == ["a", "b", "c"]  # unknown id


def test_a_lukewarm_rotten_quote_gives_way_to_clear_pans(tmp_path, embeddings, monkeypatch):
    from tests.test_store import build

    pans = ["A dull, lifeless slog.", "Tedious from start to finish.", "Clumsy and hollow filmmaking.",
            "A shrill, lazy mess.", "Boring beyond words."]
    lukewarm = ["I did enjoy parts of it, but it never lands.", "Charming in places, yet thin.",
                "Some fun, not enough."]
    records = [Review(t, "negative", movie="Gray Day", critic=f"C{i}") for i, t in enumerate(lukewarm + pans)]
    store = build(Settings(index_dir=tmp_path / "index"), embeddings, records=records)
    probe = ReadsByText(store)
    ask = {"sentiment": "negative", "movie": "Gray Day", "movie_key": "gray day", "k": 3}
    plain = retrieve(store, sentiment="negative", movie="Gray Day", movie_key="gray day", k=3, facts=False)
    clear = retrieve(store, sentiment="negative", movie="Gray Day", movie_key="gray day", k=3, facts=False,
                     probe=probe)
    assert len(clear.documents) == 3 and all(d.page_content in pans for d in clear.documents)
    assert any(d.page_content in lukewarm for d in plain.documents)  # else the case would show nothing
    monkeypatch.setattr(retrieval, "CONTEXT_FACTS", False)
    settings = Settings(index_dir=tmp_path / "index")
    on = ReviewRetrieval(store=store, settings=settings, probe=probe).invoke(ask)
    assert [d.page_content for d in on.documents] == [d.page_content for d in clear.documents]
    monkeypatch.setattr(retrieval, "CLEAR_CONTEXT", False)
    off = ReviewRetrieval(store=store, settings=settings, probe=probe)
    assert [d.page_content for d in off.invoke(ask).documents] == [d.page_content for d in plain.documents]
