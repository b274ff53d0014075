"""The evaluation's judge panel: words and embedding readers averaged, replies embedded once."""
from __future__ import annotations

import numpy as np

from assistant.evaluation.judge_panel import JudgePanel
from assistant.model.sentiment_probe import SentimentProbe


class FixedWords:
    """A words reader that reads every text as the same P(positive)."""

    def __init__(self, p: float) -> None:
        self.p = p

    def positive_probability(self, texts):
        return np.full(len(texts), self.p)


class CountingEmbed:
    """Texts to 2-d vectors: 'good' points one way, 'bad' the other; counts what it was asked to embed."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, texts):
        self.seen += list(texts)
        return np.array([[1.0, 0.0] if "good" in t else [0.0, 1.0] for t in texts], dtype=np.float32)


def _probe() -> SentimentProbe:
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]] * 5, dtype=np.float32)
    return SentimentProbe.train(vectors, ["positive", "positive", "negative", "negative"] * 5, c=100.0)


def test_the_panel_averages_its_two_readers():
    probe, embed = _probe(), CountingEmbed()
    meaning = probe.positive_probability(np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
    assert meaning[0] > 0.9 and meaning[1] < 0.1
    panel = JudgePanel(FixedWords(0.3), probe, embed)
    got = panel.positive_probability(["a good film", "a bad film"])
    assert np.allclose(got, (0.3 + meaning) / 2)
    # Words lukewarm-negative, meaning clearly positive: the mean is positive; either reader alone would differ.
    assert panel.predict(["a good film", "a bad film"]) == ["positive", "negative"]
    slightly_bad = np.array([[0.45, 0.55]], dtype=np.float32)  # the meaning reader leans negative, not far
    assert 0.1 < probe.positive_probability(slightly_bad)[0] < 0.5
    assert JudgePanel(FixedWords(0.95), probe, embed).predict(["a film"], vectors=slightly_bad) == ["positive"]
    assert panel.score(["a good film", "a bad film"], ["positive", "negative"]) == 1.0


def test_replies_are_embedded_once_and_given_vectors_skip_embedding():
    embed = CountingEmbed()
    panel = JudgePanel(FixedWords(0.5), _probe(), embed)
    texts = ["a good film", "a bad film", "a good film"]
    first = panel.predict(texts)
    assert panel.predict(texts) == first and embed.seen == ["a good film", "a bad film"]
    given = np.array([[0.0, 1.0]], dtype=np.float32)  # the stored vector says negative whatever the text says
    assert panel.predict(["a good film"], vectors=given) == ["negative"]
    assert embed.seen == ["a good film", "a bad film"] and panel.positive_probability([]).shape == (0,)
