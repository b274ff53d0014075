"""A RAG reply names the film's people: the named lead opens one sentence with one of them.

The names rule (names.py) keeps a reply's names true, and its boost nudges toward the film's own names, yet a small
model's critic voice stays generic ("a gripping thriller with clever dialogue") and most of its RAG replies name
no one; boosting names harder makes it invent and ramble. Critics name someone in most sentences they write
("Scorsese's vision", "De Niro gives").

`NamedLead` makes that happen once per reply: when the reply reaches its `sentence`-th sentence without having
named any of the film's own people, places or characters from the context, that sentence opens with one of them
(`lead_names`: the facts line's names, a facts card's or the critics' shared ones, and names two quotes share;
never the title, a critic, another film's quote, or another film's title the quotes compare with). Which name is
drawn evenly among those guidance finds plausible (by the model's own preference, two replies about one film opened
alike: "Kasdan provides ample ..."), and the rest of the sentence is written freely (sentiment guidance included;
the two words after the name drawn as critics go on after one: critic_opening.py). With `sentence` 2 the reply's
first sentence is the model's own, and a reply that would end after it without naming anyone goes on to a second
one that does.

It masks in both phases (protocol.py): before sentiment guidance, on the request's and the opposite prompt's
logits alike, so guidance's plausibility cut cannot leave the names out; and after it, the same mask again, so the
rule holds whatever guidance did. Where nothing is left after the mask, the model's choice stands.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from assistant.data.details import (
    WORD_RE,
    is_sentence_start,
    name_spans,
    name_words,
    strip_possessive,
)
from assistant.data.facts_card import line_people
from assistant.data.openings import film_roles, name_role
from assistant.data.titles import another_films_title
from assistant.model.rules.names import Allowed, context_part, request_words
from assistant.model.rules.protocol import Rule, StepState
from assistant.model.rules.vocabulary import TokenWords
from assistant.model.stopping import finished_sentences


@dataclass(frozen=True)
class LeadNames:
    """One request's names to lead with (`lead`: "George Romero", "Romero"), and every name word whose use already
    makes the reply specific (`known`: the film's names anywhere in the context, `names.Allowed.details`);
    `roles`, a lead phrase's role where the facts line tells it ("director", "cast": openings.name_role), so the
    words after an actor's name are drawn as critics go on after an actor's ("Pacino's performance", not "film")."""

    lead: frozenset[str]
    known: frozenset[str]
    roles: Mapping[str, str] = field(default_factory=dict)


_PARTICLES = frozenset({"De", "Da", "Di", "Del", "Della", "Van", "Von", "Le", "La", "Du", "Mac"})


def lead_phrases(words: list[str]) -> set[str]:
    """How a critic opens a sentence with this name: whole ("George Romero") or by surname ("Romero", "De Niro");
    never by a first name alone, after which a small model loses the rest ("George rombre")."""
    if not words:
        return set()
    surname = words[-2:] if len(words) >= 2 and words[-2] in _PARTICLES else words[-1:]
    return {" ".join(words), " ".join(surname)}


def lead_names(request: Any, rule: Allowed | None = None, films: Container[str] | None = None) -> LeadNames | None:
    """The names a reply to this request (prompts.ReviewRequest) may lead with: the facts lines' people and places
    (a facts card, or the names its critics share: assistant/data/critics_names.py), and those two of the critics'
    quotes share (a capitalised word in one quote is as often "Internet" or "Nine" as a name), but not another
    film's title (`films`: the store's movie keys), which critics compare with ("Heathers" in two quotes of
    Jawbreaker made "Heathers doesn't even ..."). None when the context has none, or no context. `rule` is the
    request's `names.request_words`, when the caller has it already."""
    rule = rule or request_words(request)
    if rule is None or not rule.details:
        return None
    title = {w.lower() for w in WORD_RE.findall(request.movie or "")}
    in_facts: set[str] = set()
    in_quotes: Counter = Counter()
    people: dict[str, str] = {}
    for line in request.context:
        kind, body = context_part(line)
        if kind == "facts":
            people.update(line_people(body))
        if kind == "quote" and _about_another_film(line, request.movie):
            continue  # its names are another film's: leading with them would invent a fact about this one
        phrases = set()
        for span in name_spans(body):
            words = name_words(span)
            if words and not all(w.lower() in title for w in words):
                phrases |= {p for p in lead_phrases(words) if len(p) > 2}
        if kind == "facts":
            in_facts |= phrases
        else:
            in_quotes.update(phrases)
    # Not a name of one quote, even of two or three words: as often a phrase ("How Not To", "Outer Space", "Secret
    # Service") as a person, and leading with a phrase makes the reply less specific, not more.
    # a facts line's names are the film's people even where one is also a title ("Hitchcock")
    lead = in_facts | {p for p, lines in in_quotes.items()
                       if lines >= 2 and not (films is not None and another_films_title(p, request.movie, films))}
    if not lead:
        return None
    roles = film_roles(people)
    return LeadNames(frozenset(lead), frozenset(rule.details | lead),
                     {p: role for p in lead if (role := name_role(p, roles)) is not None})


# A quote's attribution names its film when that is not the requested one (prompts.format_context_item)
_OTHER_FILM_RE = re.compile(r'^[^"]*? on (?P<movie>[^"]+?)(?:, (?:fresh|rotten))?:\s*"')


def _about_another_film(line: str, movie: str | None) -> bool:
    match = _OTHER_FILM_RE.match(line)
    return match is not None and match["movie"].strip().lower() != (movie or "").strip().lower()


_AND_AGAIN = re.compile(r"^(?P<name>[^,.!?;:]+?)(?:'s?)? (?:and|&) ?$")
_SENTENCE_BREAK = re.compile(r"[.!?\u2026:\n][\"'\u201d\u2019)\]]*\s+")


class NamedLead(Rule):
    """Both phases: the `sentence`-th sentence of a reply that has named none of the film's names opens with one of
    them (`names.lead`). The lead is followed as text, not words: after "George" only " Romero" (or its first
    tokens) may come; after the whole name, anything but more letters glued to it ("Romero's", "Romero,",
    "Romero brings", never "Romerolike")."""

    def __init__(self, names: LeadNames, vocab: TokenWords, *, sentence: int = 2,
                 device: torch.device | str = "cpu") -> None:
        if sentence < 1:
            raise ValueError(f"the lead sentence counts from 1, not {sentence}")
        # a one-word name that is also a plain word ("Love", "Guy") would open a sentence as that word
        self.phrases = frozenset(p for p in names.lead if " " in p or p.lower() not in vocab.plain_words)
        self.known = {strip_possessive(w) for w in names.known}
        self.vocab, self.sentence, self.device = vocab, sentence, torch.device(device)
        self.starts = self._starts()
        self.word_ends = (~vocab.letter_cont).to(device)
        self._continuations: dict[str, torch.Tensor] = {}
        self._again: dict[str, torch.Tensor] = {}
        self.leads = 0  # steps where a lead was enforced before guidance (a name's first token and what follows)

    def _tokens(self, ids: set[int]) -> torch.Tensor:
        found = torch.zeros(self.vocab.size, dtype=torch.bool)
        found[list(ids)] = True
        return found.to(self.device)

    def _starts(self) -> torch.Tensor:
        """The tokens that open a lead phrase: a start of one, with or without a leading space."""
        spaced = {" " + p for p in self.phrases}
        ids = self.vocab.continuations(self.phrases | spaced, "", self.vocab.by_text)
        return self._tokens(ids - set(self.vocab.by_text.get(" ", ())))  # a bare space opens nothing

    def _named_before(self, text: str) -> bool:
        return any(strip_possessive(w) in self.known for w in WORD_RE.findall(text))

    def _continuation(self, partial: str) -> torch.Tensor:
        """Tokens that take `partial` (a start of some lead phrase) further along one of them."""
        found = self._continuations.get(partial)
        if found is None:
            # a bare space goes nowhere either: the surname's own spaced token follows ("John" + " Hurt")
            found = self._continuations[partial] = self._tokens(
                self.vocab.continuations(self.phrases, partial, self.vocab.by_text)
                - set(self.vocab.by_text.get(" ", ())))
        return found

    def _after_and(self, name: str) -> torch.Tensor:
        """What may follow "<name> and": a lower-case word ("his cast") or another of the lead's people, not the same
        one again (at least three letters of it: a lone " C" may begin anyone's name) nor any other capital."""
        found = self._again.get(name)
        if found is None:
            surname = name.split()[-1]
            others = {p for p in self.phrases if p.split()[-1] != surname}
            same = {p for p in self.phrases if p.split()[-1] == surname}
            other_ids = self.vocab.continuations(others | {" " + p for p in others}, "", self.vocab.by_text)
            same_ids = {t for p in same for t in self.vocab.continuations({p, " " + p}, "", self.vocab.by_text)
                        if len(self.vocab.texts[t].strip()) >= min(3, len(p))}
            found = (~self.vocab.cap_start.to(self.device) | self._tokens(other_ids)) & ~self._tokens(same_ids)
            self._again[name] = found
        return found

    def mask(self, reply: str) -> torch.Tensor | None:
        """The tokens that may come next under the rule, or None where it does not apply."""
        if is_sentence_start(reply):
            before, current = reply, ""
        else:
            breaks = list(_SENTENCE_BREAK.finditer(reply))
            start = breaks[-1].end() if breaks else len(reply) - len(reply.lstrip())
            before, current = reply[:start], reply[start:]
        again = _AND_AGAIN.match(current)
        if again is not None and again["name"] in self.phrases:
            # "Cronenberg and Cronenberg", "Al Pacino and Russian", "Victor Buono and Critics": after a lead's "and"
            # a small model reaches for any capital in view; critics go on with another of the film's people or
            # with a plain word ("Pacino and De Niro", "Kasdan and his cast")
            return self._after_and(again["name"])
        if not is_sentence_start(before) or finished_sentences(before) < self.sentence - 1:
            return None
        if self._named_before(before):
            return None
        if not current:
            return self.starts
        if not any(p.startswith(current) for p in self.phrases):
            return None  # not a lead, or the lead is done
        going_on = self._continuation(current)
        return going_on | self.word_ends if current in self.phrases else going_on

    def _step_mask(self, step: StepState, row: int) -> torch.Tensor | None:
        return step.memo(self, row, lambda: self.mask(step.reply(row)))

    def before_guidance(self, step: StepState, row: int) -> torch.Tensor | None:
        mask = self._step_mask(step, row)
        if mask is None or not bool(mask.any()):
            return None
        if not any(mask is again for again in self._again.values()):
            self.leads += 1
        return ~mask

    def after_guidance(self, step: StepState, row: int, scores: torch.Tensor) -> torch.Tensor | None:
        mask = self._step_mask(step, row)
        if mask is None:
            return None
        new = scores.masked_fill(~mask, -math.inf)
        if not torch.isfinite(new.max()):
            return None  # no name is plausible here: the model's choice stands
        if mask is self.starts:  # which name: any that guidance kept, evenly, or two replies about one film open alike
            new = torch.where(torch.isfinite(new), new.max(), new)
        return new
