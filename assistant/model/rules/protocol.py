"""The protocol every decoding rule follows: `Rule` (one request's), `StepState` (one step, shared), `RuleSet`
(a batch's rules as one transformers-style logits processor, with a phase before sentiment guidance).

    rules = RuleSet(tokenizer, [[VerdictFirst(...), NamesRule(...)]] * 4, prompt_width=ids.shape[1])
    ruled_out = rules.before_guidance(ids, scores)     # [B, V] bool, or None: masked in both prompts' logits
    scores = guide_scores(...)                         # sentiment guidance (assistant/model/guidance.py)
    scores = rules(ids, scores)                        # the phase after guidance: a LogitsProcessor call

The package docstring (assistant/model/rules/__init__.py) says why there are two phases.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch

T = TypeVar("T")


class StepState:
    """One decoding step as the rules see it: the ids so far and each row's reply text, decoded once and shared
    by every rule of the step (both phases). Rules may also keep what they worked out for a row (`memo`), so the
    two phases of one rule agree without working it out twice."""

    def __init__(self, tokenizer: Any, input_ids: torch.LongTensor, prompt_width: int) -> None:
        self.tokenizer, self.input_ids, self.prompt_width = tokenizer, input_ids, prompt_width
        self.new_tokens = input_ids.shape[1] - prompt_width  # tokens written so far (the same for every row)
        self.scores: torch.Tensor | None = None  # the request rows' scores before guidance, once that phase has run
        self.ruled_out: torch.Tensor | None = None  # ... and what that phase ruled out ([B, V] bool, or None)
        self._replies: dict[int, str] = {}
        self._memo: dict[tuple[int, int], Any] = {}

    def reply(self, row: int) -> str:
        """What row `row` has written so far (special tokens skipped), decoded on first use this step."""
        text = self._replies.get(row)
        if text is None:
            text = self._replies[row] = self.tokenizer.decode(self.input_ids[row, self.prompt_width:],
                                                              skip_special_tokens=True)
        return text

    def memo(self, owner: object, row: int, work: Callable[[], T]) -> T:
        """`work()` for this owner and row, computed once this step."""
        key = (id(owner), row)
        if key not in self._memo:
            self._memo[key] = work()
        return self._memo[key]


class Rule:
    """One request's decoding rule. Built from the request's fitted prompt (its structure, not its text) with all
    it needs over the vocabulary worked out at construction; applied to every row written for that request.
    A phase a rule lacks is left as it is here: nothing ruled out, scores unchanged."""

    def before_guidance(self, step: StepState, row: int) -> torch.Tensor | None:
        """A bool mask over the vocabulary of the tokens this rule rules out before sentiment guidance (True: out),
        or None; `step.scores[row]` are the row's scores then. Masked in the request's and the opposite prompt's logits alike, so guidance's plausibility cut
        picks among what is left; the rule must leave something."""
        return None

    def after_guidance(self, step: StepState, row: int, scores: torch.Tensor) -> torch.Tensor | None:
        """This row's scores (one vector over the vocabulary, guided) under the rule; None leaves them as they are.
        Applied to the scores the rules before it in the set returned."""
        return None


class RuleSet:
    """A batch's rules: row i is written under `rows[i]`, in that order. Told the prompt width (the left-padded
    prompts' width in `input_ids`) at construction; a transformers LogitsProcessor for the phase after guidance,
    and `before_guidance` for the phase before it. Each step's `StepState` is made once and shared."""

    def __init__(self, tokenizer: Any, rows: Sequence[Sequence[Rule]], prompt_width: int) -> None:
        if prompt_width < 0:
            raise ValueError(f"the prompt width cannot be negative ({prompt_width})")
        self.tokenizer, self.rows, self.prompt_width = tokenizer, [tuple(r) for r in rows], prompt_width
        self._step: StepState | None = None

    def __bool__(self) -> bool:
        return any(self.rows)

    def step(self, input_ids: torch.LongTensor) -> StepState:
        """This step's shared state (made on the first call for these ids' length)."""
        if input_ids.shape[0] != len(self.rows):
            raise ValueError(f"rules for {len(self.rows)} rows, a batch of {input_ids.shape[0]}")
        if input_ids.shape[1] < self.prompt_width:
            raise ValueError(f"ids of width {input_ids.shape[1]} are narrower than the prompt ({self.prompt_width})")
        if self._step is None or self._step.input_ids.shape[1] != input_ids.shape[1]:
            self._step = StepState(self.tokenizer, input_ids, self.prompt_width)
        return self._step

    def before_guidance(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.Tensor | None:
        """[B, V] bool: the tokens ruled out before guidance (True: out), or None when no rule rules any out.
        The rules may read `scores` (the request rows' scores, before guidance) as `step.scores`."""
        step, ruled_out = self.step(input_ids), None
        step.scores = scores
        for row, rules in enumerate(self.rows):
            for rule in rules:
                mask = rule.before_guidance(step, row)
                if mask is None:
                    continue
                if ruled_out is None:
                    ruled_out = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
                combined = ruled_out[row] | mask
                if torch.isfinite(scores[row]).logical_and(~combined).any():  # else this rule leaves nothing
                    ruled_out[row] = combined
        step.ruled_out = ruled_out
        return ruled_out

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step, out = self.step(input_ids), scores
        for row, rules in enumerate(self.rows):
            for rule in rules:
                new = rule.after_guidance(step, row, out[row])
                if new is None or not bool(torch.isfinite(new).any()):
                    continue  # a rule that would leave nothing possible leaves the choice to the rules before it
                if out is scores:
                    out = scores.clone()
                out[row] = new
        return out


def mask_out(scores: torch.Tensor, ruled_out: torch.Tensor | None) -> torch.Tensor:
    """`scores` with the ruled-out tokens at -inf (both prompts' logits get this before guidance)."""
    return scores if ruled_out is None else scores.masked_fill(ruled_out, -math.inf)
