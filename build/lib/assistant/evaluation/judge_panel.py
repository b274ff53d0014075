"""The evaluation's sentiment judge: two readers of a reply, averaged, both trained on the held-out movies' reviews.

The TF-IDF judge (`judge.SentimentJudge`) reads words; on Rotten Tomatoes quotes it is right about 0.71 of the
time, and it reads names as verdicts: trained on the held-out movies' reviews, "disney" weighs +2.2 and
"spielberg" +1.6 toward positive, "eastwood" -0.35, against +1.3 for "masterpiece" (2026-12-02 store), so a
reply that names the film's people is judged partly by how their films fared there. An embedding probe
(`model.sentiment_probe.SentimentProbe` on MiniLM vectors) reads meaning rather than words and is right about
0.70-0.72 alone. The two err on different replies, and their mean probability is right about 0.75 of the time on
the same test reviews (measured each run and written into the report), so the panel is the headline judge and
the words-only judge stays as a column.

Both readers are trained on the same held-out movies' reviews, never on the fine-tuning data, for the reason
`scoring.load_judge` gives. The chat's best-of-n drafts rank by the probe saved beside the tuned model (trained
on the training split); with drafts on (not the default) the meaning half would share its view, so the
words-only column stays in the report.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assistant.evaluation.judge import LABELS

Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass
class JudgePanel:
    words: Any  # SentimentJudge: positive_probability(texts)
    meaning: Any  # SentimentProbe: positive_probability(vectors)
    embed: Embed  # texts -> the store's embedding vectors
    accuracy: float | None = None  # the panel's, on held-out texts, when known
    _vectors: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # replies are judged several times

    def _embedded(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            for text, vector in zip(missing, np.asarray(self.embed([t or " " for t in missing]), dtype=np.float32)):
                self._vectors[text] = vector
        return np.stack([self._vectors[t] for t in texts])

    def positive_probability(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> np.ndarray:
        """Mean of the two readers' P(positive); `vectors` skips embedding when the texts' vectors are at hand."""
        texts = list(texts)
        if not texts:
            return np.zeros(0, dtype=np.float32)
        by_meaning = self.meaning.positive_probability(self._embedded(texts) if vectors is None else vectors)
        return (np.asarray(self.words.positive_probability(texts)) + np.asarray(by_meaning)) / 2.0

    def predict(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> list[str]:
        return [LABELS[int(p >= 0.5)] for p in self.positive_probability(texts, vectors)]

    def score(self, texts: Sequence[str], labels: Sequence[str], vectors: np.ndarray | None = None) -> float:
        predicted = self.predict(texts, vectors)
        return float(np.mean([p == label for p, label in zip(predicted, labels)])) if predicted else 0.0
