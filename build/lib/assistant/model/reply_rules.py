"""The logits processors a RAG reply is written under, read back from its prompt's text.

The chat's LLM is handed a prompt's text, not a request: its context lines, title and topic are parsed back out
(prompts.parse_prompt) and become the names rule (faithful.py: every name true to the context) and the named lead
(named_lead.py: one sentence opens with one of the film's names). A prompt without context gets neither. Every
review prompt may also get the verdict-first rule (verdict_first.py: no concessive first word, no quote's opener).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assistant.model.faithful import ContextNames, request_words
from assistant.model.name_vocab import token_words
from assistant.model.named_lead import NamedLead, lead_names
from assistant.model.prompts import parse_prompt
from assistant.model.verdict_first import VerdictFirst


def prompt_processors(tokenizer: Any, *, enabled: bool = True, transfer: bool = True, boost: float = 0.0,
                      opening_boost: float = 0.0, prior_boost: float = 0.0,
                      lead_sentence: int = 0, verdict_first: bool = False) -> Callable[[str], list[Any]]:
    """prompt text -> its processors: the names rule (when `enabled`) and, when `lead_sentence` is above 0 and the
    context names any of the film's people, the named lead at that sentence; with `verdict_first`, for every review
    prompt, no concessive first word and no quote's opener (verdict_first.py). Nothing else for a prompt without context."""

    if enabled or lead_sentence or verdict_first:  # the vocabulary is read once per tokenizer (about a second for 49k tokens): now
        token_words(tokenizer, len(tokenizer))

    def build(prompt: str) -> list[Any]:
        try:
            request = parse_prompt(prompt)
        except ValueError:  # not one of our review prompts: nothing to keep it to
            return []
        processors: list[Any] = [VerdictFirst(tokenizer)] if verdict_first else []
        rule = request_words(request)  # read once: both name processors start from it
        if rule is None:
            return processors
        if enabled:
            processors.append(ContextNames(tokenizer, [rule], transfer=transfer, boost=boost,
                                           opening_boost=opening_boost, prior_boost=prior_boost))
        leads = lead_names(request, rule) if lead_sentence else None
        if leads is not None:
            processors.append(NamedLead(tokenizer, [leads], sentence=lead_sentence))
        return processors

    return build
