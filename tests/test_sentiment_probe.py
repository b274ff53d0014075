"""The embedding sentiment probe: out-of-fold label confidence, the clear-label filter, no-pickle saving."""
from __future__ import annotations

import zlib

import numpy as np
import pytest
from langchain_core.documents import Document

from assistant.model.sentiment_probe import BASENAME, SentimentProbe, label_confidence
from assistant.training.examples import keep_clear_labels


def vector_for(doc_id: str, sentiment: str, clarity: float, dim: int = 8) -> np.ndarray:
    """Noise plus a sentiment direction as strong as `clarity` (0: the label cannot be read)."""
    v = np.random.default_rng(zlib.crc32(doc_id.encode())).normal(size=dim).astype(np.float32)
    v[0] += clarity * (1 if sentiment == "positive" else -1)
    return v


class VectorStore:
    """The one part of the review store the filter and the probe read: stored vectors by doc id."""

    def __init__(self, docs: list[Document], clarity: dict[str, float]):
        self.vectors = {d.metadata["doc_id"]: vector_for(d.metadata["doc_id"], d.metadata["sentiment"],
                                                         clarity[d.metadata["doc_id"]]) for d in docs}

    def vectors_for(self, doc_ids):
        return np.stack([self.vectors[i] for i in doc_ids])


def _docs(n: int = 200) -> tuple[list[Document], dict[str, float]]:
    docs, clarity = [], {}
    for i in range(n):
        doc_id = f"r-{i}"
        sentiment = "positive" if i % 2 else "negative"
        docs.append(Document(page_content=f"review {i}", metadata={"doc_id": doc_id, "sentiment": sentiment}))
        clarity[doc_id] = 4.0 if i % 4 < 2 else 0.0  # half clear, half unreadable
    return docs, clarity


def test_label_confidence_is_out_of_fold_and_separates_clear_from_unclear():
    docs, clarity = _docs()
    store = VectorStore(docs, clarity)
    vectors = store.vectors_for([d.metadata["doc_id"] for d in docs])
    conf = label_confidence(vectors, [d.metadata["sentiment"] for d in docs], seed=0)
    clear = np.array([clarity[d.metadata["doc_id"]] > 0 for d in docs])
    assert conf[clear].mean() > 0.9 > 0.6 > conf[~clear].mean()
    assert conf.min() >= 0 and conf.max() <= 1


def test_keep_clear_labels_keeps_the_clear_half_of_both_sentiments():
    docs, clarity = _docs()
    kept, stats = keep_clear_labels(docs, VectorStore(docs, clarity), 0.8)
    assert stats["of"] == len(docs) and stats["kept"] == len(kept)
    share_clear = np.mean([clarity[d.metadata["doc_id"]] > 0 for d in kept])
    assert share_clear > 0.85 and stats["kept_positive"] > 30 and stats["kept_negative"] > 30
    everything, off = keep_clear_labels(docs, object(), 0.0)  # off: the store is not even read
    assert everything == docs and off["kept"] == len(docs)


def test_too_few_reviews_to_cross_fit_keeps_all():
    vectors = np.zeros((4, 8), dtype=np.float32)
    assert label_confidence(vectors, ["positive", "negative", "positive", "positive"]).tolist() == [1.0] * 4


def test_probe_saves_without_pickle_and_scores_texts(tmp_path):
    docs, clarity = _docs()
    store = VectorStore(docs, clarity)
    ids = [d.metadata["doc_id"] for d in docs]
    labels = [d.metadata["sentiment"] for d in docs]
    probe = SentimentProbe.train(store.vectors_for(ids), labels, eval_vectors=store.vectors_for(ids), eval_labels=labels)
    assert probe.accuracy > 0.7
    probe.save(tmp_path / BASENAME)
    with np.load(tmp_path / f"{BASENAME}.npz", allow_pickle=False) as arrays:
        assert set(arrays.files) == {"coef"}
    again = SentimentProbe.find(tmp_path)
    assert again is not None and np.allclose(again.coef, probe.coef) and again.accuracy == probe.accuracy

    class Embeddings:  # a LangChain Embeddings stand-in: texts carry their direction in a word
        def embed_documents(self, texts):
            return [np.eye(8)[0] * (5 if "great" in t else -5) for t in texts]

    up, down = again.score_texts(["great", "awful"], Embeddings())
    assert up > 0.9 and down < 0.1
    assert SentimentProbe.find(tmp_path / "missing") is None
    (tmp_path / f"{BASENAME}.json").write_text('{"format": "other"}')
    assert SentimentProbe.find(tmp_path) is None  # a swapped file is ignored, not trusted
    with pytest.raises(ValueError, match="not a sentiment probe of format embedding-logreg-v1"):
        SentimentProbe.load(tmp_path / BASENAME)


def test_a_filter_that_would_keep_almost_nothing_keeps_all():
    """A user's few reviews, none of which reads clearly: filtering would leave nothing to train on, and a model
    that learned nothing would be published as theirs."""
    docs, clarity = _docs(40)
    unreadable = {k: 0.0 for k in clarity}
    kept, stats = keep_clear_labels(docs, VectorStore(docs, unreadable), 0.99)
    assert kept == docs and stats["kept"] == len(docs) and stats["too_few_clear"] < 0.2 * len(docs)
