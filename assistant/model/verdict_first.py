"""A review opens with its verdict, not a concession: a logits processor on a reply's first token.

Rotten Tomatoes' "rotten" quotes are often lukewarm, and a small model retrieving them writes their shape: "While
there's certainly good stuff in the film ..., the script feels ...", "Although Toy Story manages to make all things
feel nice at times, ...". Asked for a negative review, a reader (and a judge) meets the praise first; of the
negative RAG replies judged positive on 200 held-out requests (2026-12-02), seven of ten opened that way, against
none of the replies without retrieval. `VerdictFirst` rules the concessive openers out of the reply's first word,
so the reply starts with what it thinks; a concession may still come later ("... , though De Niro is fine").

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


class VerdictFirst:
    """LogitsProcessor: a reply's first token is none that spells a concessive opener (`CONCESSIONS`)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._banned: torch.Tensor | None = None
        self._first_width: int | None = None  # the ids' width at the first call: the prompt's
        self.blocked = 0  # first steps where a concession was ruled out

    def _first_step(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> bool:
        if self._first_width is None:
            self._first_width = input_ids.shape[1]
            vocab = token_words(self.tokenizer, scores.shape[-1])
            ids = [i for i, word, _, _ in vocab.cap_words if word in CONCESSIONS]
            self._banned = torch.tensor(ids, dtype=torch.long, device=scores.device)
        return input_ids.shape[1] == self._first_width and self._banned.numel() > 0

    def prior(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.Tensor | None:
        """-inf on the concessive openers at the first step, for both prompts' logits; None at any other step."""
        if not self._first_step(input_ids, scores):
            return None
        bias = torch.zeros_like(scores)
        bias[:, self._banned] = -math.inf
        self.blocked += 1
        return bias

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if not self._first_step(input_ids, scores):
            return scores
        out = scores.clone()
        out[:, self._banned] = -math.inf
        keep = ~torch.isfinite(out.max(dim=-1).values)  # a row with nothing else left keeps its choice
        out[keep] = scores[keep]
        return out
