"""A review opens with its verdict, not a concession: a rule on a reply's first two tokens.

Rotten Tomatoes' "rotten" quotes are often lukewarm, and a small model retrieving them writes their shape: "While
there's certainly good stuff in the film ..., the script feels ...", "Although Toy Story manages to make all things
feel nice at times, ...". Asked for a negative review, a reader (and a judge) meets the praise first: most negative
RAG replies that read as praise opened that way, and replies without retrieval almost never do. `VerdictFirst`
rules the concessive openers out of the reply's first word, and the two-word ones out of its second ("Even if",
"No matter how", which read as praise too), so the reply starts with what it thinks; a concession may still come
later ("... , though De Niro is fine"). "Even the cast cannot save it" and "No one will care" stay open.

Nor may the first token open the way a quote does and a review does not: with an editor's bracket ("[Taken from an
earlier version.]", "[A]s ..."; a note rather than a verdict), with quotation marks (mostly praise put in someone's
mouth: '"...," says Stallone', words no one wrote given to a true name) or with an excerpt's ellipsis ("...not
worth your time anyway").

It rules them out in both phases (protocol.py): before sentiment guidance, on both prompts' logits, so guidance's
plausibility cut chooses among what is left; and after it, unless nothing else would be left.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from assistant.model.rules.protocol import Rule, StepState
from assistant.model.rules.vocabulary import TokenWords

CONCESSIONS = frozenset({"While", "Whilst", "Although", "Though", "Despite", "Notwithstanding", "Granted",
                         "Admittedly"})
TWO_WORD_CONCESSIONS = {"Even": ("if", "though"), "No": ("matter",), "For": ("all",), "Much": ("as",)}
# how a quote opens and a review does not; no token that starts with one (after spaces) may open a reply
QUOTE_MARKS = ("[", '"', "\u201c", "'", "\u2018", "..", "\u2026")


class VerdictFirst(Rule):
    """Both phases: a reply's first token spells no concessive opener (`CONCESSIONS`) and does not open as a quote
    does (`QUOTE_MARKS`), and its second does not make a two-word one of its first (`TWO_WORD_CONCESSIONS`). It
    reads nothing of the request, so one serves every prompt."""

    def __init__(self, vocab: TokenWords, *, device: torch.device | str = "cpu") -> None:
        self.vocab, self.device = vocab, torch.device(device)
        # "While", " While", "[A", ' "', "'s", "...": every token a reply may not open with
        self.first = self._mask([*CONCESSIONS, *(" " + w for w in CONCESSIONS)], extra=vocab.opening_with(QUOTE_MARKS))
        # first word -> the second words that would make it a concession ("Even" -> " if", " though")
        self.second = {first: self._mask([" " + w for w in follows]) for first, follows in TWO_WORD_CONCESSIONS.items()}

    def _mask(self, texts: Iterable[str], *, extra: Iterable[int] = ()) -> torch.Tensor | None:
        ids = sorted({i for text in texts for i in self.vocab.by_text.get(text, ())} | set(extra))
        if not ids:
            return None
        mask = torch.zeros(self.vocab.size, dtype=torch.bool)
        mask[ids] = True
        return mask.to(self.device)

    def ruled_out(self, step: StepState, row: int) -> torch.Tensor | None:
        """The tokens this step rules out for the row (True: out), or None."""
        if step.new_tokens == 0:
            return self.first
        if step.new_tokens == 1:
            return self.second.get(step.reply(row).strip())
        return None

    def before_guidance(self, step: StepState, row: int) -> torch.Tensor | None:
        return self.ruled_out(step, row)

    def after_guidance(self, step: StepState, row: int, scores: torch.Tensor) -> torch.Tensor | None:
        banned = self.ruled_out(step, row)
        if banned is None:
            return None
        new = scores.masked_fill(banned, -math.inf)
        return new if torch.isfinite(new.max()) else None  # nothing else is left: the model's choice stands
