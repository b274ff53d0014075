"""A RAG reply names the film's people: a logits processor that opens one sentence with one of them.

The names rule (faithful.py) keeps a reply's names true, and its boosts nudge toward the film's own names, yet on
held-out movies only a quarter to a third of RAG replies named anyone: a small model's critic voice is generic
("a gripping thriller with clever dialogue"), and boosting names harder made it invent and ramble (settings.py,
`name_prior_boost`). Critics name someone in most sentences they write ("Scorsese's vision", "De Niro gives").

`NamedLead` makes that happen once per reply: when the reply reaches its `sentence`-th sentence without having
named any of the film's own people, places or characters from the context (`faithful.Allowed.details`: the facts
card's director and cast, the names the critics' quotes use; never the title, never the critics), that sentence
opens with one of them. The model picks which name by its own probabilities among them, and writes the rest
of the sentence freely (sentiment guidance included). With `sentence` 2 the reply's first sentence is the model's
own, and a reply that would end after it without naming anyone goes on to a second one that does.

It masks twice: before sentiment guidance (`prior`, on the request's and the opposite prompt's logits alike, so
guidance's plausibility cut cannot leave the names out) and after it (`__call__`, the same mask, for transformers'
`generate` path, which has no prior step). Where nothing is left after the mask, the model's choice stands.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
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
from assistant.model.faithful import WORD_TAIL_RE, context_part, request_words
from assistant.model.name_vocab import TokenWords, token_words
from assistant.model.stopping import finished_sentences


@dataclass(frozen=True)
class LeadNames:
    """One request's names to lead with (`lead`), and every name whose use already makes the reply specific
    (`known`: the film's names anywhere in the context, `faithful.Allowed.details`)."""

    lead: frozenset[str]
    known: frozenset[str]


def lead_names(request: Any) -> LeadNames | None:
    """The names a reply to this request (prompts.ReviewRequest) may lead with: the facts card's people and places,
    and those the critics' quotes share (a capitalised word in one quote is as often "Internet" or "Nine" as a
    name); from each name only its first and last word ("Robert" and "Niro" of "Robert De Niro", never "De").
    None when the context has none, or no context."""
    rule = request_words(request)
    if rule is None or not rule.details:
        return None
    title = set(WORD_RE.findall(request.movie or ""))
    in_facts: set[str] = set()
    in_quotes: Counter = Counter()
    for line in request.context:
        kind, body = context_part(line)
        words = {strip_possessive(w) for span in name_spans(body) for w in (span.split()[0], span.split()[-1])}
        words = {w for w in words if len(w) > 2 and not w.isupper()} - title - COMMON_CAPITALIZED
        if kind == "facts":
            in_facts |= words
        else:
            in_quotes.update(words)
    lead = in_facts | {w for w, lines in in_quotes.items() if lines >= 2}
    return LeadNames(frozenset(lead), frozenset(rule.details | lead)) if lead else None


class _Lead:
    """One request's names to lead with and the tokens that spell them, built once."""

    def __init__(self, names: LeadNames, vocab: TokenWords, sentence: int, device: torch.device) -> None:
        # a name that is also a plain word ("Love", "Guy" of "Guy Pearce") would open a sentence as that word
        self.details = frozenset(w for w in names.lead if w.lower() not in vocab.plain_words)
        self.known = {strip_possessive(w) for w in names.known}
        self.vocab, self.sentence, self.device = vocab, sentence, device
        self.prefixes = {w[:i] for w in self.details for i in range(1, len(w) + 1)}
        found = vocab.matching(set(self.details), self.prefixes)
        self.starts = torch.zeros(vocab.size, dtype=torch.bool)
        self.starts[vocab.cap_ids[found]] = True
        self.starts = self.starts.to(device)
        self.word_ends = (~vocab.letter_cont).to(device)  # a whole name goes on with anything but more letters
        self._continuations: dict[str, torch.Tensor] = {}

    def _named_before(self, text: str) -> bool:
        return any(strip_possessive(w) in self.known for w in WORD_RE.findall(text))

    def _due(self, before: str) -> bool:
        """Whether a sentence opening after `before` must open with a name."""
        return (is_sentence_start(before) and finished_sentences(before) >= self.sentence - 1
                and not self._named_before(before))

    def _continuation(self, partial: str) -> torch.Tensor:
        found = self._continuations.get(partial)
        if found is None:
            found = torch.zeros(self.vocab.size, dtype=torch.bool)
            found[list(self.vocab.continuations(self.details, partial))] = True
            found = self._continuations[partial] = found.to(self.device)
        return found

    def mask(self, reply: str) -> torch.Tensor | None:
        """The tokens that may come next under the rule, or None where it does not apply."""
        tail = WORD_TAIL_RE.search(reply)
        if tail is None:
            return self.starts if self._due(reply) else None
        word, before = tail[0], reply[:tail.start()]
        if not capitalised(word) or word not in self.prefixes or not self._due(before):
            return None  # not a lead (a name already whole may go on as "Scott's" or "Scott,")
        if word in self.details:  # whole: it ends here ("Scott's", "Scott,") or goes on to a longer name
            return self._continuation(word) | self.word_ends
        return self._continuation(word)


class NamedLead:
    """LogitsProcessor: the `sentence`-th sentence of a reply that has named none of the film's names opens with one
    of them. `rules[i]` is row i's `LeadNames` (`lead_names`), or None to leave the row alone.
    Reads the reply so far from `input_ids` after the prompt (the width of the first call)."""

    def __init__(self, tokenizer: Any, rules: Sequence[LeadNames | None], *, sentence: int = 2) -> None:
        if sentence < 1:
            raise ValueError(f"the lead sentence counts from 1, not {sentence}")
        self.tokenizer, self.rules, self.sentence = tokenizer, list(rules), sentence
        self._leads: list[_Lead | None] | None = None
        self._prompt_width: int | None = None
        self.leads = 0  # steps where a lead was enforced (a name's first token and its continuations)

    def _setup(self, scores: torch.Tensor, width: int) -> None:
        vocab = token_words(self.tokenizer, scores.shape[-1])
        rules = self.rules * scores.shape[0] if len(self.rules) == 1 else self.rules  # drafts of one prompt
        if len(rules) != scores.shape[0]:
            raise ValueError(f"{len(rules)} rows of names for a batch of {scores.shape[0]}")
        built: dict[int, _Lead] = {}
        for rule in rules:
            if rule is not None and rule.lead and id(rule) not in built:
                built[id(rule)] = _Lead(rule, vocab, self.sentence, scores.device)
        self._leads = [None if r is None or not r.lead else built[id(r)] for r in rules]
        self._prompt_width = width

    def _masks(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> list[torch.Tensor | None]:
        if self._leads is None:
            self._setup(scores, input_ids.shape[1])
        masks: list[torch.Tensor | None] = []
        for row, lead in enumerate(self._leads):
            if lead is None:
                masks.append(None)
                continue
            reply = self.tokenizer.decode(input_ids[row, self._prompt_width:], skip_special_tokens=True)
            masks.append(lead.mask(reply))
        return masks

    def prior(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.Tensor | None:
        """-inf on every token the lead rules out, to add to both prompts' logits before guidance; None when
        no row is at a lead this step."""
        bias = None
        for row, mask in enumerate(self._masks(input_ids, scores)):
            if mask is None or not bool(mask.any()):
                continue
            if bias is None:
                bias = torch.zeros_like(scores)
            bias[row].masked_fill_(~mask, -math.inf)
            self.leads += 1
        return bias

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = scores
        for row, mask in enumerate(self._masks(input_ids, scores)):
            if mask is None:
                continue
            new = scores[row].masked_fill(~mask, -math.inf)
            if not torch.isfinite(new.max()):
                continue  # none of the names is plausible here (no prior step ran): the model's choice stands
            if out is scores:
                out = scores.clone()
            out[row] = new
        return out
