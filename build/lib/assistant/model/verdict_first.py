"""A review opens with its verdict, not a concession: a logits processor on a reply's first token.

Rotten Tomatoes' "rotten" quotes are often lukewarm, and a small model retrieving them writes their shape: "While
there's certainly good stuff in the film ..., the script feels ...", "Although Toy Story manages to make all things
feel nice at times, ...". Asked for a negative review, a reader (and a judge) meets the praise first; of the
negative RAG replies judged positive on 200 held-out requests (2026-12-02), seven of ten opened that way, against
none of the replies without retrieval. `VerdictFirst` rules the concessive openers out of the reply's first word,
and the two-word ones out of its second ("Even if", "No matter how": of 200 more negative replies, four that
opened that way read as praise), so the reply starts with what it thinks; a concession may still come later
("... , though De Niro is fine"). "Even the cast cannot save it" and "No one will care" stay open.

Nor may the first token open the way a quote does and a review does not: with an editor's bracket ("[Taken from an
earlier version.]", "[A]s ..."; 10 of 1,000 held-out RAG replies, a note rather than a verdict), with quotation
marks (25, mostly praise put in someone's mouth: '"...," says Stallone', '"...," writes Ebert', words no one
wrote given to a true name) or with an excerpt's ellipsis ("...not worth your time anyway"; 6).

It masks before sentiment guidance (`prior`, on both prompts' logits, so guidance's plausibility cut chooses among
what is left) and after it (`__call__`, for transformers' `generate`, which has no prior step), like the named lead.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from assistant.model.name_vocab import token_words

CONCESSIONS = frozenset({"While", "Whilst", "Although", "Though", "Despite", "Notwithstanding", "Granted",
                         "Admittedly"})
TWO_WORD_CONCESSIONS = {"Even": ("if", "though"), "No": ("matter",), "For": ("all",), "Much": ("as",)}
# how a quote opens and a review does not; no token that starts with one (after spaces) may open a reply
QUOTE_MARKS = ("[", '"', "\u201c", "'", "\u2018", "..", "\u2026")


class VerdictFirst:
    """LogitsProcessor: a reply's first token spells no concessive opener (`CONCESSIONS`) and does not open as
    a quote does (`QUOTE_MARKS`), and its second does not make a two-word one of its first (`TWO_WORD_CONCESSIONS`)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._vocab: Any = None
        self._first_width: int | None = None  # the ids' width at the first call: the prompt's
        self._step: tuple[int, list[torch.Tensor | None]] | None = None  # (ids' width, banned ids per row)

    def _ids(self, texts: Any, device: torch.device, *, extra: Any = ()) -> torch.Tensor:
        ids = sorted({i for text in texts for i in self._vocab.by_text.get(text, ())} | set(extra))
        return torch.tensor(ids, dtype=torch.long, device=device)

    def _banned(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> list[torch.Tensor | None]:
        """Per row, the token ids ruled out at this step (None: nothing), worked out once per step."""
        width = input_ids.shape[1]
        if self._first_width is None:
            self._first_width = width
            self._vocab = token_words(self.tokenizer, scores.shape[-1])
        if self._step is not None and self._step[0] == width:
            return self._step[1]
        banned: list[torch.Tensor | None] = [None] * input_ids.shape[0]
        if width == self._first_width:
            first = self._ids([*CONCESSIONS, *(" " + w for w in CONCESSIONS)], scores.device,
                              extra=self._vocab.opening_with(QUOTE_MARKS))  # "[A", ' "', "'s", "..."
            banned = [first if first.numel() else None] * len(banned)
        elif width == self._first_width + 1:
            for row in range(input_ids.shape[0]):
                opener = self.tokenizer.decode(input_ids[row, -1:], skip_special_tokens=True).strip()
                follows = TWO_WORD_CONCESSIONS.get(opener, ())
                ids = self._ids([" " + w for w in follows], scores.device) if follows else None
                banned[row] = ids if ids is not None and ids.numel() else None
        self._step = (width, banned)
        return banned

    def prior(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.Tensor | None:
        """-inf on the concessions this step rules out, for both prompts' logits; None where it rules out none."""
        bias = None
        for row, ids in enumerate(self._banned(input_ids, scores)):
            if ids is None:
                continue
            if bias is None:
                bias = torch.zeros_like(scores)
            bias[row, ids] = -math.inf
        return bias

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = scores
        for row, ids in enumerate(self._banned(input_ids, scores)):
            if ids is None:
                continue
            new = scores[row].clone()
            new[ids] = -math.inf
            if not torch.isfinite(new.max()):
                continue  # nothing else is left: the model's choice stands
            if out is scores:
                out = scores.clone()
            out[row] = new
        return out
