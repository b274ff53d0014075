"""A critic's opening: the reply's first three words drawn as critics choose theirs, among what the model finds
plausible.

Sentiment guidance sharpens every step toward the most likely, most sentiment-laden token, and on a reply's first
words that picks the same stock opening across films and across replies of one film: "This is one of ...", "The
plot is ...", "Kurosawa fails miserably ...". Of 200 replies without retrieval 64% shared their three-word opening
with another reply; of the critics' quotes of the same films, 1%. Flattening the model's own scores (a temperature)
hardly helps: its plausible openings are few and it still prefers the same one.

`CriticOpening` keeps the model's judgement of *what* may come and of *whether a new word starts here*, and
redraws only *which* word it is, by how often the training films' critics opened with it there
(assistant/data/openings.py: "This is" goes on with "a" 500 times, "the" 201, "one" 102). At each step of the
opening, the tokens that start the next word and spell a whole word share the probability guidance gave them
together, moved toward the critics' counts by `weight` (0: the model's shares, 1: the critics'); punctuation, the
end, pieces of words and the rest keep the model's. The candidates are the tokens guidance's plausibility cut kept
and those within `WIDTH` nats of the model's favourite before guidance (every other rule's masks still hold). A
word critics never opened with keeps a small floor; where none of the candidates is a critic's word the model
chooses.

A reply the named lead opens (`lead`: its phrases) gets its name from that rule, evenly among the plausible ones;
this rule then draws the two words after the name by how critics go on after a name they open with
(openings.lead_opening: "Gilliam is", "Gilliam's film", "Gilliam has made" where the model wrote "Gilliam brings a"
for every reply about the film), the possessive "'s" among them; by the name's role where the facts line tells it
(`roles`: after an actor's possessive "performance", after a director's "film", "latest", "direction").
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch

from assistant.data.openings import (
    NAME_MARKERS,
    OPENING_WORDS,
    POSSESSIVE,
    POSSESSIVE_MARKERS,
    WORD_CHARS,
    CriticOpenings,
    lead_opening,
    opening_words,
)
from assistant.model.rules.protocol import Rule, StepState
from assistant.model.rules.vocabulary import TokenWords

CANDIDATES = 64  # most likely tokens redrawn; guidance's plausibility cut usually leaves fewer
# Guidance's plausibility cut keeps a handful of openings (all stock ones); critics' spread lies in words the model
# finds a little less likely ("If", "What", "For"): a word within WIDTH nats of the model's favourite before guidance
# may be drawn too.
WIDTH = 5.0  # 6 nats: praise judged as asked fell to 0.94 (200 replies without retrieval); 5: 0.98
# The critics' spread lies mostly in openings the model never finds plausible, so among those it does, their counts
# alone would crown the critics' own favourites ("The film is"): counts are raised to SPREAD (< 1 flattens) first.
SPREAD = 0.5
# After a lead's name the critics' own proportions ("'s" 29%, "is" 17%, "and" 8%, "has" 7%): flattened as openings
# are (0.5), rare words won too often ("Renoir might actually ...", "Romero should see ..."; 120 dev requests:
# classifier 0.76 against 0.70, MAUVE 0.55 against 0.78, details alike).
NAME_SPREAD = 1.0
FLOOR = 0.5  # a count for a word critics never opened with: possible, never preferred


class CriticOpening(Rule):
    """After guidance: the first `OPENING_WORDS` words drawn toward the critics' counts (raised to SPREAD)."""

    def __init__(self, table: CriticOpenings, vocab: TokenWords, weight: float, width: float = WIDTH, *,
                 lead: Iterable[str] = (), roles: Mapping[str, str] | None = None) -> None:
        if not 0 < weight <= 1:
            raise ValueError(f"the critics' weight is in (0, 1], not {weight}")
        self.table, self.vocab, self.weight, self.width = table, vocab, weight, width
        self.lead = tuple(lead)
        self.roles = dict(roles or {})  # a lead phrase's role, where the facts line tells it (named_lead.LeadNames)

    def after_guidance(self, step: StepState, row: int, scores: torch.Tensor) -> torch.Tensor | None:
        reply = step.reply(row)
        # the words before the next one (the last may still grow); a lead's name counts as one word
        words = lead_opening(reply, self.lead, self.roles) if self.lead else opening_words(reply, OPENING_WORDS)
        if words is None or len(words) >= OPENING_WORDS:
            return None  # the named lead is writing its name, or the opening is written: the rest is the model's
        guided = torch.log_softmax(scores.float(), dim=-1)
        raw = self._raw(step, row, scores)
        candidates = torch.isfinite(guided) | (raw >= raw.max() - self.width)
        ids = candidates.nonzero().flatten()
        if len(ids) > CANDIDATES:  # guidance off: the long tail keeps the model's share
            ids = ids[raw[ids].topk(CANDIDATES).indices]
        if len(ids) < 2:
            return None
        mid_word = bool(words) and (reply[-1:].isalnum() or reply[-1:] in "'_")
        out = guided.clone()
        # "'s" only right after the name: after "Zemeckis," it would glue a possessive to the comma
        starting = self._starting(ids.tolist(), mid_word,
                                  possessive=len(words) == 1 and words[0] in NAME_MARKERS and reply[-1:].isalnum())
        moved = self._redraw(out, guided, raw, starting, words)
        return out.to(scores.dtype) if moved else None

    @staticmethod
    def _raw(step: StepState, row: int, scores: torch.Tensor) -> torch.Tensor:
        """The row's log-probabilities before guidance, without what a rule ruled out (the guided ones if the
        decode loop gave none)."""
        if step.scores is None or row >= step.scores.shape[0]:
            return torch.log_softmax(scores.float(), dim=-1)
        raw = step.scores[row].float()
        if step.ruled_out is not None:
            raw = raw.masked_fill(step.ruled_out[row], -math.inf)
        return torch.log_softmax(raw, dim=-1)

    def _starting(self, ids: list[int], mid_word: bool, *, possessive: bool = False) -> list[tuple[int, str]]:
        """(token, its text lower-cased) for the tokens that start the next word. A token is counted as the whole
        word it spells, so a piece of a longer word ("Tak") gets only the floor: counting every word it starts
        ("take", "taken", "taking") let the model finish it as none of them ("Takin's"). Right after a lead's name
        (`possessive`), "'s" is one of them: critics open with "Gilliam's film" as often as with "Gilliam is"."""
        starting = []
        for token in ids:
            text = self.vocab.texts[token] if token < len(self.vocab.texts) else ""
            piece = text.lstrip()
            if text in ("'s", "\u2019s"):  # glued to whatever came before: a word only right after the name
                if possessive:  # (a tokenizer that splits "\u2019" from "s" leaves the model its share)
                    starting.append((token, POSSESSIVE))
                continue
            if not piece or not WORD_CHARS.match(piece) or (mid_word and text == piece):
                continue  # punctuation, the end, special tokens, a piece glued to the word being written
            if len(piece) > 1 and not piece[1:].islower() and piece[1:] != "'s":
                continue  # "THe", "McD": the critics' counts are case-blind
            starting.append((token, piece.lower()))
        return starting

    def _redraw(self, out: torch.Tensor, guided: torch.Tensor, raw: torch.Tensor, group: list[tuple[int, str]],
                before: list[str]) -> bool:
        """Within `group`, the probability guidance gave the group as a whole, shared out by the model's own
        (pre-guidance) probabilities moved toward the critics' counts after the words `before`; False when there
        was nothing to move."""
        if len(group) < 2:
            return False
        ids = torch.tensor([t for t, _ in group], dtype=torch.long)
        counts = [self.table.whole(before, word) for _, word in group]
        mass = torch.logsumexp(guided[ids], dim=0)
        if not any(counts) or not torch.isfinite(mass):
            return False  # critics never opened with any of these here (names being spelled), or guidance left none
        spread = NAME_SPREAD if before and before[0] in NAME_MARKERS | POSSESSIVE_MARKERS else SPREAD
        critics = torch.tensor([spread * math.log(c + FLOOR) for c in counts], dtype=raw.dtype)
        mixed = (1 - self.weight) * raw[ids] + self.weight * critics
        out[ids] = torch.log_softmax(mixed, dim=0) + mass
        return True
