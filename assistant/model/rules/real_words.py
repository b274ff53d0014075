"""Real words: a lower-case word the reply writes is an English word or a word the request showed the model.

A small model writes words a token at a time, and a sampled piece that is plausible after the last one can make a
word no one uses: "craft" + "fulness", "people" + "ies", "un" + "con" + "izable". Readers notice those at once
(one reply in ten had one with retrieval on, one in sixteen without). `RealWords` acts before guidance: among the
most likely tokens, a piece that continues a lower-case word must keep it on the way to a known word, and a
token that ends a word (a space, a comma, a full stop) may only follow a complete one. Known: the English word list
(assistant/data/english.py) and the words of the request (its context, the title, the topic), so "Keoghan's"
island or a critic's coinage in the context stays possible.

Capitalised words are left alone: a name is not an English word (whether it is true is the names rule's question,
names.py), and a sentence's first word cannot be told from a name by its letters. Words of one or two letters and words after an apostrophe ("n't", "'s") are left alone. Only
the most likely `CHECKED` tokens are read each step (guidance's plausibility cut then picks among what is left); a
rule that would leave nothing possible leaves the model's choice.
"""
from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterable

import torch

from assistant.data.english import english_words
from assistant.model.rules.protocol import Rule, StepState
from assistant.model.rules.vocabulary import TokenWords

CHECKED = 64  # the most likely tokens a step reads: past them the nucleus rarely reaches
SHORTEST_CHECKED = 3  # "ok", "tv", "mr": too short to call made up
_WORD = re.compile(r"[^\W\d_]+")
_WORD_AT_END = re.compile(r"[^\W\d_]+$")


class Lexicon:
    """Known words, and every start of one, answered by bisection over the sorted list (no prefix set: 160,000
    words would make a million prefixes)."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(w.lower() for w in words)
        self._sorted = sorted(self.words)

    def complete(self, word: str) -> bool:
        return word in self.words

    def starts(self, prefix: str) -> bool:
        i = bisect.bisect_left(self._sorted, prefix)
        return i < len(self._sorted) and self._sorted[i].startswith(prefix)


@functools.lru_cache(maxsize=1)
def english_lexicon() -> Lexicon | None:
    """The English list as a Lexicon, built once per process; None without the list (the rule is then off)."""
    words = english_words()
    return Lexicon(words) if words is not None else None


def request_lexicon(texts: Iterable[str]) -> Lexicon:
    """The words of a request's texts (context, title, topic), lower-cased."""
    return Lexicon(w for text in texts for w in _WORD.findall(text or ""))


class RealWords(Rule):
    """Before guidance: lower-case words stay on the way to a word of `english` or of `shown` (the request's)."""

    def __init__(self, english: Lexicon, shown: Lexicon, vocab: TokenWords, *,
                 device: torch.device | str = "cpu") -> None:
        self.english, self.shown, self.vocab, self.device = english, shown, vocab, torch.device(device)
        self._finishing: dict[str, torch.Tensor] = {}

    def _complete(self, word: str) -> bool:
        return len(word) < SHORTEST_CHECKED or self.english.complete(word) or self.shown.complete(word)

    def _starts(self, prefix: str) -> bool:
        return self.english.starts(prefix) or self.shown.starts(prefix)

    def open_word(self, reply: str) -> str | None:
        """The lower-case word being written at the reply's end ("" when none), or None when it is not this rule's
        to check: a capitalised word mid-sentence (a name), or letters after an apostrophe or a digit."""
        found = _WORD_AT_END.search(reply)
        if found is None:
            return ""
        word, before = found[0], reply[:found.start()]
        if before[-1:] in ("'", "\u2019") or before[-1:].isdigit():
            return None
        if word[:1].isupper():  # a name, or a sentence's first word: which, only the names rule can tell
            return None
        return word

    def allows(self, open_word: str, text: str) -> bool:
        """Whether a token spelling `text` may follow a reply whose open word is `open_word`."""
        letters = _WORD.match(text)
        if letters is not None and letters.start() == 0:  # it continues the open word
            if open_word and not letters[0].islower():
                return False  # a capital inside a lower-case word ("unrelatE") makes none
            word = open_word + letters[0].lower()
            if text[letters.end():letters.end() + 1] in ("'", "\u2019"):  # "n't", "s'": a contraction's
                return self._complete(word) or self._complete(word + "'" + text[letters.end() + 1:].lower())
            if letters.end() < len(text):  # and ends it ("ly," / "ing.")
                return self._complete(word)
            return self._starts(word) or len(word) < SHORTEST_CHECKED
        if open_word and not self._complete(open_word):  # it would end a word that is none, unless ...
            if text[:1] in ("'", "\u2019"):  # ... a contraction makes one ("isn" + "'t")
                after = _WORD.match(text[1:])
                if not self._complete(open_word + "'" + (after[0].lower() if after else "")):
                    return False
            elif not (text[:1] == "-" and len(open_word) <= 4):  # ... or it is a compound's first part: "sci-fi"
                return False
        core = text.lstrip()
        if core == text or not core[:1].isalpha() or not core[:1].islower():
            return True  # punctuation, a digit, or a capitalised word (names.py's)
        word = _WORD.match(core)[0]
        if len(word) < len(core):
            return self._complete(word)
        return self._starts(word) or len(word) < SHORTEST_CHECKED

    def before_guidance(self, step: StepState, row: int) -> torch.Tensor | None:
        """Rules out, among the row's most likely tokens before guidance, those that would make a word no one uses.
        Before guidance, so its plausibility cut picks among real words: after it, the only plausible pieces are
        often those of the made-up word ("unrelatab" + "ly")."""
        open_word = self.open_word(step.reply(row))
        if open_word is None or step.scores is None:
            return None
        scores = step.scores[row]
        k = min(CHECKED, int(torch.isfinite(scores).sum()))
        if k == 0:
            return None
        top = torch.topk(scores, k).indices.tolist()
        texts = self.vocab.texts
        ends = bool(open_word) and not self._complete(open_word)  # an end token would leave a word half made
        passing = [i for i in top if (self.allows(open_word, texts[i]) if i < len(texts) and texts[i] else not ends)]
        if len(passing) == k:
            return None
        if passing:
            # Only the checked tokens that passed stay possible: with the likely ones ruled out, guidance's
            # plausibility cut would otherwise reach the unchecked tail ("cyberca" + " robot").
            mask = torch.ones(self.vocab.size, dtype=torch.bool, device=self.device)
            mask[passing] = False
            return mask
        # The model is sure of nothing real here: it began a word that its likely pieces only make worse ("lacklust"
        # + " was"). Only the pieces that finish a real word may come, wherever the model ranked them.
        finishing = self.finishing(open_word)
        return None if finishing is None else ~finishing

    def finishing(self, open_word: str) -> torch.Tensor | None:
        """The continuation tokens that keep `open_word` on the way to a known word (a pass over the vocabulary's
        continuations, kept per word), or None when there are none."""
        found = self._finishing.get(open_word)
        if found is None:
            ids = [i for text, token_ids in self.vocab.glued.items() if text[:1].isalpha()
                   and self.allows(open_word, text) for i in token_ids]
            found = torch.zeros(self.vocab.size, dtype=torch.bool, device=self.device)
            found[ids] = True
            if len(self._finishing) < 256:
                self._finishing[open_word] = found
        return found if bool(found.any()) else None
