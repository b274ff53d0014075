"""Where a reply ends, read from its text: at an end marker, or after its last allowed sentence.

Both generation paths (assistant/model/decoding.py and transformers' `generate`) share this, so a review is cut
at the same place however it was written, and a streamed review never shows text that the whole one lacks.

Sentence bound: a critic's quote is one sentence of about 19 words (the held-out films' quotes: 13-26 words, median
19), or a short exclamation and one more ("Absolutely smashing! ..."). Stopping after the `max_sentences`-th
sentence keeps replies review-sized, and the time saved is the base model's rambling. A sentence that ends before
the reply has `SHORTEST_REVIEW_WORDS` words does not count: "Gorgeous." goes on to say why, as a critic's would,
while a reply that has said its piece in one sentence stops there instead of wandering into a second.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch
from transformers import StoppingCriteria

# A run of terminators (closing quotes or brackets may follow) that whitespace follows: "end. Next", "wow!) So".
# "3.5" or "...and" do not end a sentence; an abbreviation such as "Mr. Smith" does, a price of the simple rule.
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)")
# Below this a reply is an exclamation, not yet a review; a quarter of critics' quotes are shorter than 13 words.
SHORTEST_REVIEW_WORDS = 8


def reply_end(text: str, markers: Sequence[str], max_sentences: int = 0, min_words: int = 0) -> int | None:
    """Index where the reply in `text` ends (exclusive), or None while it may go on.

    The first end marker ends it; otherwise the end of its `max_sentences`-th sentence (0: no bound), counting only
    sentences that end once the reply has `min_words` words (the generators pass `SHORTEST_REVIEW_WORDS`)."""
    cuts = [i for i in (text.find(m) for m in markers if m) if i >= 0]
    if max_sentences > 0:
        count = 0
        for match in _SENTENCE_END.finditer(text):
            if min_words and len(text[:match.end()].split()) < min_words:
                continue
            count += 1
            if count == max_sentences:
                cuts.append(match.end())
                break
    return min(cuts) if cuts else None


def finished_sentences(text: str) -> int:
    """How many sentences of `text` have ended (one ending the text counts: "Grand." is one)."""
    return len(_SENTENCE_END.findall(text + " "))


def _held_back(text: str, markers: Sequence[str]) -> int:
    """Characters at the end of `text` that may still turn into an end marker or a multi-byte character."""
    if text.endswith("\ufffd"):  # a character whose bytes are split across tokens
        return 1
    return max((k for m in markers for k in range(1, len(m)) if text.endswith(m[:k])), default=0)


class ReplyText:
    """One reply's text as its tokens arrive: what can be shown now, and whether it has ended.

    The text is decoded from all its tokens each time (byte-level BPE pieces only make sense together);
    leading whitespace is dropped, as the finished reply is stripped."""

    def __init__(self, tokenizer: Any, markers: Sequence[str], max_sentences: int = 0, min_words: int = 0) -> None:
        self.tokenizer, self.markers, self.max_sentences = tokenizer, tuple(markers), max_sentences
        self.min_words = min_words
        self.ids: list[int] = []
        self.text = ""  # the reply so far, cut at its end once it has one
        self.shown = 0  # characters of `text` handed out by `add`
        self.ended = False

    def add(self, token_ids: Sequence[int]) -> str:
        """Take new tokens; return the text that can be shown now (possibly empty)."""
        if self.ended:
            return ""
        self.ids.extend(token_ids)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True).lstrip()
        end = reply_end(text, self.markers, self.max_sentences, self.min_words)
        if end is not None:
            self.ended, text = True, text[:end].rstrip()
            ready = len(text)
        else:
            ready = len(text) - _held_back(text, self.markers)
        self.text = text
        new = text[self.shown:ready] if ready > self.shown else ""
        self.shown = max(self.shown, ready)
        return new

    def finish(self) -> str:
        """The rest once no more tokens come (the held-back tail, without trailing whitespace)."""
        self.text = self.text.rstrip()
        rest = self.text[self.shown:]
        self.shown, self.ended = len(self.text), True
        return rest


class ReplyEnded(StoppingCriteria):
    """For transformers' `generate`: a row is done once its text has ended (marker or sentence bound)."""

    def __init__(self, tokenizer: Any, markers: Sequence[str], max_sentences: int, prompt_length: int,
                 min_words: int = 0) -> None:
        self.tokenizer, self.markers, self.max_sentences = tokenizer, tuple(markers), max_sentences
        self.prompt_length, self.min_words = prompt_length, min_words

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_length:], skip_special_tokens=True)
        done = [reply_end(t.lstrip(), self.markers, self.max_sentences, self.min_words) is not None for t in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
