"""Sentiment judge for generated reviews: TF-IDF + logistic regression, stored without pickle.

Trained on the training split only. Saved as JSON (vocabulary, settings, accuracy) plus an .npz of
plain float arrays (idf, coefficients) loaded with allow_pickle=False, because the files live in a
folder users can swap and unpickling would run their code.
"""
from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

from assistant.data import safe_arrays

log = logging.getLogger(__name__)

LABELS: tuple[str, str] = ("negative", "positive")  # index 1 is the positive class
TOKEN_PATTERN = r"(?u)\b\w[\w']*\b"
FORMAT = "tfidf-logreg-v1"


@dataclass
class SentimentJudge:
    vocabulary: dict[str, int]
    idf: np.ndarray
    coef: np.ndarray
    intercept: float
    ngram_range: tuple[int, int] = (1, 2)
    accuracy: float | None = None  # on held-out texts, when known

    @classmethod
    def train(cls, texts: Sequence[str], labels: Sequence[str], *, eval_texts: Sequence[str] | None = None,
              eval_labels: Sequence[str] | None = None, holdout: float = 0.1, seed: int = 0,
              max_features: int = 200_000, c: float = 4.0) -> SentimentJudge:
        """Fit on texts labelled 'positive'/'negative'; accuracy on eval_* or on a held-out share."""
        texts, labels = list(texts), list(labels)
        if eval_texts is None:
            order = list(range(len(texts)))
            random.Random(seed).shuffle(order)
            cut = int(len(order) * holdout)
            eval_texts, eval_labels = [texts[i] for i in order[:cut]], [labels[i] for i in order[:cut]]
            texts, labels = [texts[i] for i in order[cut:]], [labels[i] for i in order[cut:]]
        counts = CountVectorizer(ngram_range=(1, 2), token_pattern=TOKEN_PATTERN, min_df=2,
                                 max_features=max_features, dtype=np.float32)
        x = counts.fit_transform(texts)
        tfidf = TfidfTransformer(sublinear_tf=True).fit(x)
        y = np.array([LABELS.index(label) for label in labels])
        clf = LogisticRegression(C=c, max_iter=2000).fit(tfidf.transform(x), y)
        judge = cls({t: int(i) for t, i in counts.vocabulary_.items()}, tfidf.idf_.astype(np.float32),
                    clf.coef_[0].astype(np.float32), float(clf.intercept_[0]))
        if eval_texts:
            judge.accuracy = judge.score(eval_texts, eval_labels or [])
        log.info("sentiment judge: %d texts, %d features, held-out accuracy %s",
                 len(texts), len(judge.vocabulary), judge.accuracy)
        return judge

    def _features(self, texts: Sequence[str]):
        counts = CountVectorizer(ngram_range=self.ngram_range, token_pattern=TOKEN_PATTERN,
                                 vocabulary=self.vocabulary, dtype=np.float32)
        x = counts.transform(list(texts))
        x.data = np.log(x.data) + 1.0  # sublinear tf, as in training
        return normalize(x.multiply(self.idf).tocsr())

    def positive_probability(self, texts: Sequence[str]) -> np.ndarray:
        logits = self._features(texts) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.asarray(logits).ravel()))

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [LABELS[int(p >= 0.5)] for p in self.positive_probability(texts)]

    def score(self, texts: Sequence[str], labels: Sequence[str]) -> float:
        predicted = self.predict(texts)
        return float(np.mean([p == label for p, label in zip(predicted, labels)])) if predicted else 0.0

    def save(self, path: Path | str) -> None:
        """Writes <path>.json and <path>.npz."""
        terms = [""] * len(self.vocabulary)
        for term, index in self.vocabulary.items():
            terms[index] = term
        meta = {"format": FORMAT, "labels": list(LABELS), "ngram_range": list(self.ngram_range),
                "intercept": self.intercept, "accuracy": self.accuracy, "terms": terms}
        safe_arrays.write(path, meta, idf=self.idf, coef=self.coef)

    @classmethod
    def load(cls, path: Path | str) -> SentimentJudge:
        meta, arrays = safe_arrays.read(path, FORMAT, "sentiment judge")
        idf, coef = arrays["idf"], arrays["coef"]
        vocabulary = {term: i for i, term in enumerate(meta["terms"])}
        return cls(vocabulary, idf, coef, float(meta["intercept"]), tuple(meta["ngram_range"]), meta.get("accuracy"))
