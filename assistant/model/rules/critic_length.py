"""A critic's length: a reply is drawn a length from the critics' own, and ending its sentence sooner costs more.

A reply stops after its first sentence (stopping.py), so its length is where the model first writes a full stop:
with guidance's sharpening that comes early, after one plain clause ("Scott's film is a masterpiece."). Critics'
quotes run longer and vary more: the training films' quotes have 21 words at the median, 15-28 between the
quartiles, and their sentences go on with a comma, a "but", a second clause; the replies had 13-15 words at the
median, a third of the commas, and a classifier can read length and punctuation before any word.

`CriticLength` draws each reply's length from the critics' (the quotes' word counts, by sentiment:
assistant/data/openings.py) and, until the reply has that many words, takes `push` nats (`PUSH`) from every token
that ends the sentence or the reply (full stops, "!", "?", an ellipsis, the end token). The model still ends where
it must (a full stop it is sure of survives a push of 0.75 nats), but where it was only choosing between ending
and going on, it goes on, as a critic would; once the drawn length is reached the rule does nothing. Not a fixed
second sentence: the reply stays one sentence, only longer where the critics' would be.
"""
from __future__ import annotations

import bisect
import random
from collections.abc import Mapping

import torch

from assistant.model.rules.protocol import Rule, StepState
from assistant.model.rules.vocabulary import TokenWords

_ENDS = frozenset(".!?\u2026")
# Nats a sentence end costs before the drawn length (on with the critic's opening: settings.Sampling.critic_opening).
# 120 dev requests: 1.5 reached the critics' median (19 words) but the longer replies wandered; 0.75 gives 17.
PUSH = 0.75


def sentence_end_tokens(vocab: TokenWords, end_ids: set[int]) -> torch.Tensor:
    """Tokens that end a sentence or the reply: punctuation only, with a full stop, "!", "?" or an ellipsis in it
    ('.', '."', '!)', '...'), and the end tokens."""
    ends = torch.zeros(vocab.size, dtype=torch.bool)
    for token, text in enumerate(vocab.texts[:vocab.size]):
        piece = text.strip()
        if piece and not any(c.isalnum() for c in piece) and any(c in _ENDS for c in piece):
            ends[token] = True
    ends[[t for t in end_ids if t < vocab.size]] = True
    return ends


class CriticLength(Rule):
    """After guidance: until a row's reply has its drawn length in words, sentence ends cost `push` nats."""

    def __init__(self, lengths: Mapping[int, int], ends: torch.Tensor, push: float, rng: random.Random) -> None:
        if push <= 0:
            raise ValueError(f"the push against ending early is above 0 nats, not {push}")
        if not lengths:
            raise ValueError("no critics' lengths to draw from")
        self.sizes = sorted(lengths)
        self.cumulative = []
        total = 0
        for size in self.sizes:
            total += lengths[size]
            self.cumulative.append(total)
        self.ends, self.push, self.rng = ends, push, rng
        self.targets: dict[int, int] = {}  # row -> its drawn length, drawn on the row's first step

    def draw(self) -> int:
        """One length, as often as critics wrote quotes of it."""
        return self.sizes[bisect.bisect_right(self.cumulative, self.rng.random() * self.cumulative[-1])]

    def after_guidance(self, step: StepState, row: int, scores: torch.Tensor) -> torch.Tensor | None:
        target = self.targets.get(row)
        if target is None:
            target = self.targets[row] = self.draw()
        if len(step.reply(row).split()) >= target:
            return None
        ends = self.ends.to(scores.device)
        if ends.shape[0] != scores.shape[-1]:  # a head padded past the tokenizer: the padding never ends anything
            ends = torch.nn.functional.pad(ends, (0, scores.shape[-1] - ends.shape[0]))
        return torch.where(ends, scores - self.push, scores)
