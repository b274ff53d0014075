"""How much a draft reads like a critic's quote: the scorer that ranks best-of-n drafts for critic-likeness.

A logistic regression telling real critics' quotes from the model's own replies, on three views of a text:
words (1-2 grams) and characters (2-5 grams, punctuation included), both hashed so that no vocabulary has to
be stored, and the MiniLM sentence embedding the store already computes (what a draft is about and how).
It is trained by `scripts/critic_scorer.py` on training films only (their critics' quotes against replies the
shipped model wrote about them), never on the held-out films the evaluation asks about, so ranking drafts by
it cannot learn the evaluation's own quotes. Saved as JSON plus a pickle-free .npz (`safe_arrays`).
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.data import safe_arrays

log = logging.getLogger(__name__)

FORMAT = "critic-likeness-v1"
SHIPPED = Path(__file__).resolve().parents[1] / "data" / "critic_scorer"
HASHED_FEATURES = 2 ** 18  # per view; collisions cost little at this size, and the unused weights are zeros


@functools.cache
def _hashers() -> tuple[Any, Any]:
    """Stateless, so made once: each reply's drafts are read through them."""
    from sklearn.feature_extraction.text import HashingVectorizer

    common = {"n_features": HASHED_FEATURES, "alternate_sign": False, "norm": None}
    return (HashingVectorizer(analyzer="word", ngram_range=(1, 2), lowercase=True, **common),
            HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), lowercase=False, **common))


def text_features(texts: Sequence[str]) -> Any:
    """Sparse [n, 2 * HASHED_FEATURES]: each view's counts, log-damped and scaled to unit length."""
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize

    return sp.hstack([normalize(h.transform(list(texts)).log1p()) for h in _hashers()]).tocsr()


def features(texts: Sequence[str], vectors: np.ndarray) -> Any:
    """The scorer's input: the hashed views beside the texts' sentence embeddings."""
    import scipy.sparse as sp

    return sp.hstack([text_features(texts), sp.csr_matrix(np.asarray(vectors, dtype=np.float32))]).tocsr()


@dataclass
class CriticScorer:
    coef: np.ndarray  # [2 * HASHED_FEATURES + embedding dim]
    intercept: float
    trained_on: dict[str, Any] | None = None  # what `scripts/critic_scorer.py` fitted it to, and how well

    @property
    def embedding_dim(self) -> int:
        return int(self.coef.shape[0]) - 2 * HASHED_FEATURES

    @staticmethod
    def estimator(c: float = 1.0) -> Any:
        """The unfitted classifier `train` fits (scripts/critic_scorer.py cross-validates the same one)."""
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=c, max_iter=3000, class_weight="balanced")

    @classmethod
    def train(cls, texts: Sequence[str], vectors: np.ndarray, is_critic: Sequence[bool], *, c: float = 1.0,
              trained_on: dict[str, Any] | None = None) -> CriticScorer:
        labels = np.asarray(is_critic, dtype=int)
        clf = cls.estimator(c).fit(features(texts, vectors), labels)
        return cls(clf.coef_[0].astype(np.float32), float(clf.intercept_[0]), trained_on)

    def critic_probability(self, texts: Sequence[str], vectors: np.ndarray) -> np.ndarray:
        """P(a critic wrote it) per text, read from the texts and their sentence embeddings."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(texts), self.embedding_dim):
            raise ValueError(f"the critic-likeness scorer reads {self.embedding_dim}-dimensional embeddings, "
                             f"not {vectors.shape[-1]}-dimensional ones")
        logits = features(texts, vectors) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))

    def save(self, path: Path | str) -> None:
        """Writes <path>.json and <path>.npz (the weights, mostly zeros, compressed)."""
        meta = {"format": FORMAT, "intercept": self.intercept, "hashed_features": HASHED_FEATURES,
                "embedding_dim": self.embedding_dim, "trained_on": self.trained_on}
        safe_arrays.write(path, meta, compressed=True, coef=self.coef)

    @classmethod
    def load(cls, path: Path | str = SHIPPED) -> CriticScorer:
        meta, arrays = safe_arrays.read(path, FORMAT, "critic-likeness scorer")
        if int(meta.get("hashed_features", -1)) != HASHED_FEATURES:
            raise ValueError(f"{path} hashes {meta.get('hashed_features')} features per view, not {HASHED_FEATURES}")
        return cls(arrays["coef"].astype(np.float32), float(meta["intercept"]), meta.get("trained_on"))

    @classmethod
    def shipped(cls) -> CriticScorer | None:
        """The scorer shipped with the code, or None (with a logged reason) when it is missing or unreadable."""
        try:
            return cls.load(SHIPPED)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("no critic-likeness scorer for drafts (%s): drafts are ranked by sentiment alone", exc)
            return None
