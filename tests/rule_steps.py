"""Helpers for the decoding rules' tests: one token's id, and one rule applied to one step of a reply."""
from __future__ import annotations

import torch

from assistant.model.rules import RuleSet


def one_token(tokenizer, text: str) -> int:
    """The id of `text`, which the test vocabulary must spell as one token."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == 1, f"{text!r} is {len(ids)} tokens in the test vocabulary"
    return ids[0]


def rule_step(tokenizer, rule, reply: str, scores: torch.Tensor) -> torch.Tensor:
    """The scores ([1, V]) after `rule` at the step after `reply` (no prompt), for the one row."""
    ids = tokenizer(reply, add_special_tokens=False)["input_ids"] if reply else []
    return RuleSet(tokenizer, [[rule]], prompt_width=0)(torch.tensor([ids], dtype=torch.long).reshape(1, -1),
                                                         scores)[0]
