"""A fresh opening: the reply's first words are drawn from a flatter distribution than the rest.

Sentiment guidance sharpens every step toward the most sentiment-laden token, and on a reply's first words that
picks the same stock opening across films: "A beautifully crafted ...", "The poor plot ...", "Too dull and ...".
Critics' quotes almost never share an opening (about one in a hundred share their first three words). `FreshOpening`
divides the guided scores of the reply's first `OPENING_WORDS` words by `flatten`, among the tokens guidance's
plausibility cut kept (a word the request finds unlikely stays impossible), so the opening is drawn more evenly from
what the request finds plausible; from then on the reply is sampled as before.
"""
from __future__ import annotations

import torch

from assistant.model.rules.protocol import Rule, StepState

OPENING_WORDS = 3  # the opening a reader compares across replies ("A beautifully crafted")


class FreshOpening(Rule):
    """After guidance: the first `OPENING_WORDS` words' scores divided by `flatten` (> 1 flattens)."""

    def __init__(self, flatten: float) -> None:
        if flatten <= 0:
            raise ValueError(f"flatten must be positive, not {flatten}")
        self.flatten = flatten

    def after_guidance(self, step: StepState, row: int, scores: torch.Tensor) -> torch.Tensor | None:
        if self.flatten == 1.0 or len(step.reply(row).split()) >= OPENING_WORDS:
            return None
        finite = torch.isfinite(scores)
        top = scores[finite].max() if bool(finite.any()) else None
        if top is None:
            return None
        # relative to the best token, so the flattening is a temperature among the plausible tokens only
        return torch.where(finite, top + (scores - top) / self.flatten, scores)
