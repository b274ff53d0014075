"""Names in a RAG reply come from its context: the names rule keeps to them.

A small model asked about *Toy Story* will happily write "Tom Hanks' latest action flick". With retrieval on, the
prompt's context (the movie's facts card and its critics' reviews) says who is in the film; `NamesRule` lets a
capitalised word that does not open a sentence be written only if it is a word of that context, of the title or
topic the user gave, or an ordinary capitalised word (`details.COMMON_CAPITALIZED`: "I", months, "Oscar"...).
A name that IS in the context is never banned, and once a name has begun, it can only be completed as an allowed one.
A sentence's first word is capitalised whatever it is, so there the rule also lets through the vocabulary's plain
words ("Despite", "Unfortunately": `vocabulary.py` says how it knows them), and nothing else the context lacks
("Jarmanush", "Tarnione" for Jarmusch and Tarantino); where nothing plausible is left there, the model's choice stands.

The rule works on words, whatever the tokenization: a token that starts a capitalised word mid-sentence must
spell the start of an allowed word, and the next tokens must continue it. Reading the vocabulary costs about a
second once per tokenizer (vocabulary.py); then a request about 10 ms (one pass over the capitalised tokens, when
the rule is built) and a step an index write with SmolLM2's 49k tokens.
It acts after sentiment guidance only (protocol.py). Guidance keeps only tokens the model finds plausible; when all
of those are names the context lacks, the clause ends there (a comma or a full stop) instead, and a name already
begun is finished as an allowed word.

What a name is (`assistant.data.details.name_spans`) is shared with the evaluation and the page's detail chips.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from assistant.data.details import (
    COMMON_CAPITALIZED,
    WORD_RE,
    capitalised,
    is_sentence_start,
    name_spans,
    strip_possessive,
)
from assistant.model.rules.protocol import Rule, StepState
from assistant.model.rules.vocabulary import TokenWords

_TAIL_RE = re.compile(r"[^\W\d_](?:[^\W\d_]|['\u2019\-])*$")  # the word being written (may end in ' or -)


def allowed_words(texts: Iterable[str]) -> set[str]:
    """The capitalised words a reply may use: those of the context, title and topic, plus `COMMON_CAPITALIZED`."""
    words = {w for text in texts for w in WORD_RE.findall(text or "") if capitalised(w)}
    return words | set(COMMON_CAPITALIZED)


@dataclass(frozen=True)
class Allowed:
    """One request's rule: the capitalised words it may write, which of them are names (for the transfer), and
    which names are details of the film (for the boost: its people, places and characters, not the title the user
    gave nor the critics who wrote the context's quotes)."""

    words: frozenset[str]
    names: frozenset[str] = frozenset()
    details: frozenset[str] = frozenset()


# The body of a context line (prompts.format_context_item): 'About <movie>: <facts>' or 'Critic (Pub), fresh: "<quote>"'
_CONTEXT_BODY_RE = re.compile(r'^About [^:]*:\s*(?P<facts>.*)$|^[^"]*?:\s*"(?P<quote>.*)"\s*$', re.S)


def context_part(line: str) -> tuple[str, str]:
    """(what kind of context line it is: "facts", "quote" or "other"; what it says about the film, without its
    attribution: critic, publication, verdict)."""
    match = _CONTEXT_BODY_RE.match(line or "")
    if match is None:
        return "other", line or ""
    return ("facts", match["facts"]) if match["facts"] is not None else ("quote", match["quote"] or "")


def context_body(line: str) -> str:
    """What a context line says about the film, without its attribution (critic, publication, verdict)."""
    return context_part(line)[1]


def request_words(request: Any) -> Allowed | None:
    """The rule for a prompts.ReviewRequest with context; None (no rule) for one without."""
    if not getattr(request, "context", None):
        return None
    texts = [*request.context, request.movie or "", request.topic or ""]
    names = {w for text in texts for span in name_spans(text) for w in span.split()}
    title = set(WORD_RE.findall(request.movie or ""))
    details = {w for line in request.context for span in name_spans(context_body(line)) for w in span.split()}
    return Allowed(frozenset(allowed_words(texts)), frozenset((names | title) - COMMON_CAPITALIZED),
                   frozenset(details - title - COMMON_CAPITALIZED))


def names_film(text: str, allowed: Allowed) -> bool:
    """Whether a reply names one of the film's people, places or characters from the context (`Allowed.details`,
    a possessive as its name: "Chabrol's"), as the named lead counts a reply that has named someone."""
    known = {strip_possessive(w) for w in allowed.details}  # a span's word may be written "Chabrol's"
    return not known.isdisjoint(strip_possessive(w) for w in WORD_RE.findall(text))


# ---- the rule --------------------------------------------------------------------------------------------------

class NamesRule(Rule):
    """After guidance: a capitalised word written mid-sentence must be one of `allowed.words` (`request_words`).

    Where a word starts mid-sentence only capitalised tokens can be ruled out: those are kept as id lists (a few
    thousand of a 49k vocabulary), so a step costs an index write, not a pass over the vocabulary. Inside a name,
    a full mask of the tokens that may continue it (kept per partial word).

    With `transfer`, where a new word starts mid-sentence, the probability the model gave to banned capitalised
    words (a name it wanted to write) goes to the context's names, in proportion to their own: the model wanted a
    name there, and gets one that is true. Nothing moves when it wanted none, nor where a sentence opens (a name
    there would be an opening the model did not choose, and it cost the reviews their sentiment). `boost` adds
    that many logits to the film's own names (`Allowed.details`) at every mid-sentence word start: a nudge toward
    naming them at all."""

    def __init__(self, allowed: Allowed, vocab: TokenWords, *, device: torch.device | str = "cpu",
                 transfer: bool = True, boost: float = 0.0) -> None:
        self.rule = allowed  # the request's words, as `request_words` read them
        self.words = set(allowed.words)
        self.prefixes = {w[:i] for w in self.words for i in range(1, len(w) + 1)}
        self.vocab, self.device = vocab, torch.device(device)
        self.transfer, self.boost = transfer, boost
        names, details = set(allowed.names), set(allowed.details)
        name_prefixes = {w[:i] for w in names for i in range(1, len(w) + 1)}
        detail_prefixes = {w[:i] for w in details for i in range(1, len(w) + 1)}
        allowed_here = vocab.matching(self.words, self.prefixes)
        banned = ~allowed_here
        ids = vocab.cap_ids
        self.banned_after_space = ids[banned].to(device)  # after a space or punctuation: any capitalised token
        # where a sentence starts: a capitalised token that is neither an allowed word nor a plain one (vocabulary)
        self.banned_at_opener = ids[banned & ~vocab.opener_ok].to(device)
        self.banned_after_word = ids[banned & vocab.cap_spaced].to(device)  # after a letter: one with its own space
        self.name_ids = ids[allowed_here & vocab.matching(names, name_prefixes)].to(device)  # start a context name
        # ... one of the film's own names (what the boost favours)
        self.detail_ids = ids[allowed_here & vocab.matching(details, detail_prefixes)].to(device)
        # after a complete name: anything but more letters; a capitalised word (with its space) if allowed
        self.ending_ok = ~(vocab.cap_start & vocab.lead_space) & ~vocab.letter_cont
        self.ending_ok[ids[allowed_here & vocab.cap_spaced]] = True
        self.ending_ok = self.ending_ok.to(device)
        self._continuations: dict[str, torch.Tensor] = {}
        self.fallbacks = 0  # steps where a row had no allowed token left, and ended its clause instead
        self.transfers = 0  # steps where a wanted name went to the context's names

    def continuation(self, partial: str) -> torch.Tensor:
        """Tokens that extend `partial` toward an allowed word (any tokenization of the rest)."""
        found = self._continuations.get(partial)
        if found is None:
            found = torch.zeros(self.vocab.size, dtype=torch.bool)
            found[list(self.vocab.continuations(self.words, partial))] = True
            found = self._continuations[partial] = found.to(self.device)
        return found

    def step(self, text: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """For the reply written so far: (token ids banned where a word starts, or None; the mask of the only
        tokens allowed inside a name being written, or None). One of the two is always given.

        A sentence's first word may be an allowed word or a plain one ("Despite"), never a name the context lacks
        ("Jarmanush"): see vocabulary.py."""
        tail = _TAIL_RE.search(text)
        if tail is None:
            return (self.banned_at_opener if is_sentence_start(text) else self.banned_after_space), None
        word, before = tail[0], text[:tail.start()]
        if capitalised(word) and is_sentence_start(before):
            return self._opener(word)
        if capitalised(word) and word in self.prefixes:
            ok = self.continuation(word)
            return None, (ok | self.ending_ok if word in self.words else ok)
        return self.banned_after_word, None

    def _opener(self, word: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """A sentence's first word, being written: it goes on toward an allowed word or a plain one. A word with an
        apostrophe or hyphen ("Don't"), or one already off both lists, is left as before."""
        lower = word.lower()
        named, plain = word in self.prefixes, lower in self.vocab.plain_prefixes
        if not word.isalpha() or not (named or plain):
            return self.banned_after_word, None
        ok = self.vocab.plain_continuation(lower).to(self.device) if plain else self.continuation(word)
        if named and plain:
            ok = ok | self.continuation(word)
        complete = word in self.words or lower in self.vocab.plain_words
        return None, (ok | self.ending_ok if complete else ok)

    def opens_sentence(self, text: str) -> bool:
        """Whether the next token starts the reply's first word or a new sentence's."""
        return _TAIL_RE.search(text) is None and is_sentence_start(text)

    def in_opener(self, text: str) -> bool:
        """Whether the next token starts or continues a sentence's first word."""
        tail = _TAIL_RE.search(text)
        return is_sentence_start(text if tail is None else text[:tail.start()])

    def allowed(self, text: str) -> tuple[torch.Tensor, bool]:
        """(the mask of tokens that may follow the reply so far; whether the next token starts a word): the rule
        as one mask, for tests and inspection."""
        banned, inside = self.step(text)
        if inside is not None:
            return inside, False
        ok = torch.ones(self.vocab.size, dtype=torch.bool, device=self.device)
        ok[banned] = False
        return ok, True

    def after_guidance(self, step: StepState, row: int, scores: torch.Tensor) -> torch.Tensor | None:
        reply = step.reply(row)
        banned, inside = self.step(reply)
        opening = self.opens_sentence(reply)
        new = scores.masked_fill(~inside, -math.inf) if inside is not None else scores.clone()
        if banned is not None:
            new[banned] = -math.inf
            if self.transfer and not opening:
                self._transfer(scores, new, banned)
            if self.boost and not opening:
                new[self.detail_ids] += self.boost
        if torch.isfinite(new.max()):
            return new
        # Nothing the model found plausible is allowed (guidance had already ruled out the rest).
        if opening or (inside is not None and self.in_opener(reply)):
            return None  # a sentence's first word: no clause to end, and the model's own choice stands
        self.fallbacks += 1
        half_written = inside is not None and not bool(inside[self.vocab.closers].any())
        if half_written and bool(inside.any()):
            # Mid-name ("Amis" of "Amistad", "Europe" of "European"): a clause ended here would leave a name the
            # context lacks, so the word is finished as one of the allowed words instead.
            return torch.full_like(new, -math.inf).masked_fill(inside, 0.0)
        if self.vocab.closers:  # where a name would start: end the clause rather than write one
            new = torch.full_like(new, -math.inf)
            new[self.vocab.closers] = 0.0
            return new
        return None

    def _transfer(self, raw: torch.Tensor, new: torch.Tensor, banned: torch.Tensor) -> None:
        """Move the probability of the banned capitalised tokens to the context's names, in proportion (in place)."""
        if not len(self.name_ids):
            return
        probs = torch.softmax(raw.float(), dim=-1)
        wanted, named = probs[banned].sum(), probs[self.name_ids].sum()
        if wanted <= 1e-4 or named <= 0:
            return
        self.transfers += 1
        new[self.name_ids] += torch.log1p(wanted / named).to(new.dtype)
