"""Sentiment read off sentence embeddings: a logistic-regression probe on the store's MiniLM vectors.

Two jobs, both kept apart from the TF-IDF judge that scores the model (so neither games it):
- data mix: keep the training reviews whose label the probe, cross-fitted, finds clear, so the model
  learns prototypical praise and pans rather than the many lukewarm "rotten" quotes;
- best-of-n: rank a few sampled drafts by how clearly they carry the asked-for sentiment.
Saved as JSON plus a pickle-free .npz, like the judge.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from assistant.data import safe_arrays

log = logging.getLogger(__name__)

FORMAT = "embedding-logreg-v1"
BASENAME = "sentiment_probe"


def _positive(labels: Sequence[str]) -> np.ndarray:
    return np.array([label == "positive" for label in labels], dtype=int)


@dataclass
class SentimentProbe:
    coef: np.ndarray
    intercept: float
    accuracy: float | None = None  # on held-out vectors, when known

    @classmethod
    def train(cls, vectors: np.ndarray, labels: Sequence[str], *, eval_vectors: np.ndarray | None = None,
              eval_labels: Sequence[str] | None = None, c: float = 4.0) -> SentimentProbe:
        clf = LogisticRegression(C=c, max_iter=2000).fit(vectors, _positive(labels))
        probe = cls(clf.coef_[0].astype(np.float32), float(clf.intercept_[0]))
        if eval_vectors is not None and eval_labels is not None and len(eval_labels):
            predicted = probe.positive_probability(eval_vectors) >= 0.5
            probe.accuracy = float(np.mean(predicted == _positive(eval_labels).astype(bool)))
        log.info("sentiment probe: %d vectors, held-out accuracy %s", len(vectors), probe.accuracy)
        return probe

    def positive_probability(self, vectors: np.ndarray) -> np.ndarray:
        logits = np.asarray(vectors, dtype=np.float32) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-logits))

    def score_texts(self, texts: Sequence[str], embeddings: Any) -> list[float]:
        """P(positive) for raw texts, embedded with the store's model (a LangChain Embeddings)."""
        if not texts:
            return []
        vectors = np.asarray(embeddings.embed_documents([t or " " for t in texts]), dtype=np.float32)
        return self.positive_probability(vectors).tolist()

    def save(self, path: Path | str) -> None:
        """Writes <path>.json and <path>.npz."""
        meta = {"format": FORMAT, "intercept": self.intercept, "accuracy": self.accuracy, "dim": int(self.coef.shape[0])}
        safe_arrays.write(path, meta, coef=self.coef)

    @classmethod
    def load(cls, path: Path | str) -> SentimentProbe:
        meta, arrays = safe_arrays.read(path, FORMAT, "sentiment probe")
        return cls(arrays["coef"], float(meta["intercept"]), meta.get("accuracy"))

    @classmethod
    def find(cls, folder: Path | str) -> SentimentProbe | None:
        """The probe saved beside a tuned model, or None (older models have none)."""
        path = Path(folder) / BASENAME
        if not path.with_suffix(".json").exists():
            return None
        try:
            return cls.load(path)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring the sentiment probe in %s: %s", folder, exc)
            return None


def label_confidence(vectors: np.ndarray, labels: Sequence[str], *, folds: int = 5, seed: int = 0,
                     c: float = 4.0) -> np.ndarray:
    """Out-of-fold P(own label) for each vector: no review is judged by a probe that saw it."""
    y = _positive(labels)
    if len(set(y.tolist())) < 2 or min(np.bincount(y)) < folds:
        return np.ones(len(y))  # too few to cross-fit: keep everything
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    p = cross_val_predict(LogisticRegression(C=c, max_iter=2000), vectors, y, cv=splitter, method="predict_proba")[:, 1]
    return np.where(y == 1, p, 1.0 - p)
