"""The fast generation path: a KV-cached decode loop that calls the model itself, one token at a time.

Why not transformers' `generate`: with sentiment guidance it runs the opposite-sentiment prompt as a second model
call per token, prefills that prompt in full although it differs from the request in one word, and grows its
cache by concatenation every step. Here a request and its opposite prompt are one batch (one forward per token);
the prompts' shared prefix is prefilled once and its cache copied to every row; the cache keeps room to grow.

Same semantics as `generate` (tests/test_decoding.py compares the two token for token): transformers' own
repetition penalty, no-repeat n-gram, temperature and nucleus processors see the same ids and scores, in the same
order, sentiment guidance mixes the same log-probabilities (assistant/model/guidance.py), and the decoding rules
act in the same two phases around it (assistant/model/rules).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import NoRepeatNGramLogitsProcessor, RepetitionPenaltyLogitsProcessor
from transformers.cache_utils import Cache, DynamicLayer

from assistant.model.compute_thread import ComputeThreadClosed, compute
from assistant.model.guidance import guide_scores
from assistant.model.lean_llama import LeanLlama
from assistant.model.rules import ReplyRules, RuleSet, mask_out
from assistant.model.runtime import generation_threads

Processor = Callable[[torch.LongTensor, torch.FloatTensor], torch.FloatTensor]  # transformers' LogitsProcessor
MIN_SHARED_PREFIX = 8  # tokens: below this a shared prefill saves less than the cache copy costs


class RoomyLayer(DynamicLayer):
    """A cache layer that writes new keys and values into spare room (doubled when full) instead of
    concatenating the whole cache every step; `keys`/`values` are views of the filled part."""

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self.filled, self.room_k, self.room_v = 0, key_states[..., :0, :], value_states[..., :0, :]
        end = self.filled + key_states.shape[-2]
        if end > self.room_k.shape[-2] or self.room_k.shape[0] != key_states.shape[0]:
            self._grow(end, key_states.shape[0])
        self.room_k[..., self.filled:end, :] = key_states
        self.room_v[..., self.filled:end, :] = value_states
        self.filled = end
        self.keys, self.values = self.room_k[..., :end, :], self.room_v[..., :end, :]
        return self.keys, self.values

    def _grow(self, needed: int, batch: int) -> None:
        size = max(needed, 2 * self.room_k.shape[-2], 64)
        k, v = self.room_k, self.room_v
        self.room_k = k.new_empty((batch, k.shape[1], size, k.shape[3]))
        self.room_v = v.new_empty((batch, v.shape[1], size, v.shape[3]))
        self.room_k[..., :self.filled, :] = k[..., :self.filled, :]
        self.room_v[..., :self.filled, :] = v[..., :self.filled, :]

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.get_seq_length() > 0:
            self.room_k = self.keys.repeat_interleave(repeats, dim=0)
            self.room_v = self.values.repeat_interleave(repeats, dim=0)
            self.keys, self.values = self.room_k, self.room_v


class TransformersRunner:
    """Any causal LM through its own forward, with a cache that grows in place: the fallback to `LeanLlama`."""

    def __init__(self, model) -> None:
        self.model, self.cache = model, Cache(layer_class_to_replicate=RoomyLayer)

    def forward(self, ids: torch.Tensor, valid: torch.Tensor | None, positions: torch.Tensor) -> torch.Tensor:
        if valid is None:  # no padding; said outright, as transformers warns when a pad id appears without a mask
            valid = torch.ones(ids.shape[0], self.cache.get_seq_length() + ids.shape[1], dtype=torch.long,
                               device=ids.device)
        out = self.model(input_ids=ids, attention_mask=valid, position_ids=positions, cache=self.cache,
                         use_cache=True, logits_to_keep=1)
        return out.logits[:, -1]

    def reserve(self, positions: int) -> None:
        """The cache grows by doubling (RoomyLayer); nothing to set aside up front."""

    def repeat_rows(self, repeats: int) -> None:
        self.cache.batch_repeat_interleave(repeats)


def runner_for(model, lean: bool = True) -> LeanLlama | TransformersRunner:
    """The leanest forward pass that covers this model."""
    return LeanLlama(model) if lean and LeanLlama.supports(model) else TransformersRunner(model)


class RememberedPrefix:
    """The last prompt's cached keys and values (LeanLlama's), so the next prompt skips the part they share.

    Chat prompts open alike (template, system prompt, context header) and a follow-up about the same movie also
    shares its facts: on two cores every prompt token skipped is about 1-2 ms less before the first word."""

    MIN_REUSE = 16  # tokens: fewer are not worth the copy

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.state: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None

    def restore(self, runner: LeanLlama, ids: list[int]) -> int:
        """Load the longest remembered prefix of `ids` into the (empty) runner; how many positions that is."""
        same = 0
        for a, b in zip(self.ids, ids[:-1]):  # at least one token is computed afresh
            if a != b:
                break
            same += 1
        if same < self.MIN_REUSE or self.state is None:
            return 0
        runner.load_prefix(self.state, same)
        return same

    def keep(self, ids: list[int], state: tuple[list[torch.Tensor], list[torch.Tensor]]) -> None:
        """Remember `ids` and their keys and values (one row, as `LeanLlama.repeat_rows` hands them back)."""
        self.ids, self.state = list(ids), state


@dataclass
class SamplingPlan:
    """How each next token is chosen; the same knobs as `generate`'s, plus guidance, the decoding rules and extra
    processors."""

    temperature: float = 0.8
    top_p: float = 0.92
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    guidance: float = 1.0  # 1 = off
    plausibility: float = 0.1
    processors: Sequence[Processor] = ()  # on the guided scores after the rules, before temperature and nucleus
    rules: ReplyRules | None = None  # which decoding rules each prompt gets (None: none)
    seed: int | None = None


NUCLEUS_CANDIDATES = 256  # most likely tokens looked at first; the nucleus is almost always among them


def sample_nucleus(scores: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator) -> torch.Tensor:
    """One token per row from softmax(scores / temperature), kept to its nucleus: the most likely tokens whose
    probability mass before them is under `top_p` (transformers' TopPLogitsWarper keeps the same set).

    Sorting and sampling over the whole vocabulary (49k for SmolLM2) cost milliseconds a token; the nucleus is
    found among the few hundred most likely tokens unless they hold less than `top_p`, when all are sorted."""
    probs = (scores / temperature).softmax(dim=-1)
    chosen = []
    for row in probs:
        count = row.shape[0] if top_p >= 1.0 else min(NUCLEUS_CANDIDATES, row.shape[0])
        top, index = row.topk(count)
        mass = top.cumsum(0)
        if count < row.shape[0] and mass[-1] < top_p:
            top, index = row.sort(descending=True)
            mass = top.cumsum(0)
        keep = (mass - top) < top_p
        keep[0] = True
        pick = torch.multinomial(top[keep], 1, generator=generator)
        chosen.append(index[keep][pick])
    return torch.cat(chosen)


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row):] = 1
    return ids, mask


def shared_prefix(rows: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix every row starts with, leaving each row at least one token of its own."""
    shortest = min(len(r) for r in rows)
    first = rows[0]
    length = 0
    while length < shortest - 1 and all(r[length] == first[length] for r in rows):
        length += 1
    return length


class Decoding:
    """One batch of prompts being decoded: `step()` returns each row's next token (pad once a row is done).

    With guidance each prompt has a negative prompt; they run as rows B..2B-1 and are fed the tokens chosen for
    their prompt, as transformers' guidance processor feeds its negative branch. The caller ends a row early
    with `finish(row)` (its text ended); a row also ends at a stop token or after `max_new_tokens`. `rules` are
    the batch's decoding rules, told the prompts' padded width (`plan.rules.rule_set`)."""

    def __init__(self, model, prompts: Sequence[Sequence[int]], *, pad_id: int, stop_ids: Sequence[int],
                 max_new_tokens: int, plan: SamplingPlan, negatives: Sequence[Sequence[int]] | None = None,
                 device: str = "cpu", lean: bool = True, threads: int = 0,
                 remembered: RememberedPrefix | None = None, rules: RuleSet | None = None) -> None:
        self.plan, self.device, self.threads = plan, device, threads  # 0: timed (runtime.ThreadChooser)
        self.rules = rules
        self.remembered = remembered
        self.runner: LeanLlama | TransformersRunner | None = runner_for(model, lean)
        self.batch = len(prompts)
        self.guided = plan.guidance != 1.0 and negatives is not None
        if self.guided and len(negatives) != self.batch:
            raise ValueError(f"{len(negatives)} negative prompts for {self.batch} prompts")
        self.rows = [list(p) for p in prompts] + ([list(n) for n in negatives] if self.guided else [])
        self.pad_id, self.max_new_tokens = pad_id, max_new_tokens
        self.stop_ids = torch.tensor(sorted(set(stop_ids)), dtype=torch.long)
        ids, _ = _left_pad(self.rows[:self.batch], pad_id)
        self.input_ids = ids.to(device)  # the prompts as `generate` would see them, left-padded, + new tokens
        self.unfinished = torch.ones(self.batch, dtype=torch.bool)
        self.new_tokens = 0
        self.mask: torch.Tensor | None = None  # None while no row has padding
        self.positions: torch.Tensor | None = None
        self.logits: torch.Tensor | None = None
        self.threads_before = 0
        self.prefilled = 0  # prompt tokens the prefill computed (a remembered opening is not recomputed)
        self.pending: torch.Tensor | None = None
        self.sampler = torch.Generator(device="cpu")
        if plan.seed is None:
            self.sampler.seed()
        else:
            self.sampler.manual_seed(plan.seed)
        self.score_steps: list[Processor] = []
        if plan.repetition_penalty != 1.0:
            self.score_steps.append(RepetitionPenaltyLogitsProcessor(plan.repetition_penalty))
        if plan.no_repeat_ngram_size > 0:
            self.score_steps.append(NoRepeatNGramLogitsProcessor(plan.no_repeat_ngram_size))

    @property
    def done(self) -> bool:
        return not bool(self.unfinished.any()) or self.new_tokens >= self.max_new_tokens

    def finish(self, row: int) -> None:
        self.unfinished[row] = False

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor | None, positions: torch.Tensor) -> torch.Tensor:
        return self.runner.forward(ids.to(self.device), None if mask is None else mask.to(self.device),
                                   positions.to(self.device))

    def _timed_forward(self, kind: str, ids: torch.Tensor, mask: torch.Tensor | None, positions: torch.Tensor,
                       per_token: bool = False) -> torch.Tensor:
        """One forward pass on the thread count chosen for its kind of pass, and its timing recorded. A long
        prompt pass is timed per token; the short ones (the rows' own prompt ends, a decoding step) per pass: a
        short pass is mostly fixed cost, and mixing it into the per-token figure made one thread look better
        for prompts than it is."""
        threads = self.threads or generation_threads.choose(kind)
        if threads != torch.get_num_threads():  # kept between passes (setting it costs); close() restores it
            self.threads_before = self.threads_before or torch.get_num_threads()
            torch.set_num_threads(threads)
        started = time.perf_counter()
        logits = self._forward(ids, mask, positions)
        generation_threads.record(kind, threads, time.perf_counter() - started, ids.shape[1] if per_token else 1)
        return logits

    def _prefill(self) -> torch.Tensor:
        rows, remembered = self.rows, self.remembered
        reusable = remembered is not None and isinstance(self.runner, LeanLlama)
        shared = shared_prefix(rows) if len(rows) > 1 or reusable else 0
        if shared < MIN_SHARED_PREFIX:
            shared = 0
        self.runner.reserve(max(len(r) for r in rows) + self.max_new_tokens)
        start = 0
        if shared:  # once for every row, then the cache is copied to each of them
            start = remembered.restore(self.runner, rows[0][:shared]) if reusable else 0
            prefix = torch.tensor([rows[0][start:shared]], dtype=torch.long)
            self._timed_forward("prefill", prefix, None, torch.arange(start, shared).unsqueeze(0), per_token=True)
            replaced = self.runner.repeat_rows(len(rows))
            if reusable:
                remembered.keep(rows[0][:shared], replaced)
        suffix, suffix_mask = _left_pad([r[shared:] for r in rows], self.pad_id)
        mask = torch.cat([torch.ones(len(rows), shared, dtype=torch.long), suffix_mask], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        self.mask = None if bool(mask.all()) else mask
        self.positions = positions[:, -1:]
        self.prefilled = len(rows[0]) - start  # what this prefill computed
        kind = f"prompt ends {len(rows)} rows" if shared else "prefill"
        return self._timed_forward(kind, suffix, self.mask, positions[:, shared:], per_token=not shared)

    def _scores(self, logits: torch.Tensor) -> torch.Tensor:
        plan, ids = self.plan, self.input_ids
        scores = logits[:self.batch].float()
        for process in self.score_steps:
            scores = process(ids, scores)
        negative = logits[self.batch:].float() if self.guided else None
        if self.rules is not None:  # what the rules rule out before guidance's plausibility cut, in both prompts
            ruled_out = self.rules.before_guidance(ids, scores)
            scores = mask_out(scores, ruled_out)
            negative = mask_out(negative, ruled_out) if negative is not None else None
        if self.guided:
            log_plausibility = math.log(plan.plausibility) if plan.plausibility > 0 else -math.inf
            scores = guide_scores(scores, negative, plan.guidance, log_plausibility, input_ids=ids,
                                  repetition_penalty=plan.repetition_penalty)
        if self.rules is not None:
            scores = self.rules(ids, scores)
        for process in plan.processors:
            scores = process(ids, scores)
        return scores

    def close(self) -> None:
        self.runner = None  # the cache's memory goes now, not when the caller lets go of this object
        if self.threads_before:  # on the thread whose count the passes set
            try:
                compute.run(torch.set_num_threads, self.threads_before)
            except ComputeThreadClosed:  # the process is exiting: nothing left to restore it for
                pass
            self.threads_before = 0

    def step(self) -> list[int] | None:
        """The next token of every row (pad for rows already done), or None when all are done; the first call
        prefills. The work runs on the compute thread (compute_thread.py says why)."""
        return compute.run(self._step)

    @torch.inference_mode()
    def _step(self) -> list[int] | None:
        if self.done or self.runner is None:
            return None
        if self.logits is None:
            self.logits = self._prefill()
        else:  # feed the tokens chosen last step (the negative rows get their prompt's token)
            tokens = self.pending.repeat(2) if self.guided else self.pending
            self.positions = self.positions + 1
            if self.mask is not None:
                self.mask = torch.cat([self.mask, torch.ones(len(self.rows), 1, dtype=torch.long)], dim=1)
            self.logits = self._timed_forward(f"decode {len(self.rows)} rows", tokens.unsqueeze(1), self.mask,
                                              self.positions)
        scores = self._scores(self.logits)
        if self.plan.temperature > 0:
            chosen = sample_nucleus(scores.cpu(), self.plan.temperature, self.plan.top_p, self.sampler)
        else:
            chosen = scores.argmax(dim=-1).cpu()
        chosen = torch.where(self.unfinished, chosen, torch.full_like(chosen, self.pad_id))
        self.unfinished &= ~torch.isin(chosen, self.stop_ids)
        self.input_ids = torch.cat([self.input_ids, chosen.unsqueeze(1).to(self.input_ids.device)], dim=1)
        self.pending = chosen.to(self.device)
        self.new_tokens += 1
        return chosen.tolist()
