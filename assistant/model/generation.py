"""(sentiment, title, context, sampling settings) -> review text, streamed or batched.

The same call serves the base model and the fine-tuned one: both read `prompts.build_prompt`.
Sampling is nucleus sampling with mild repetition control; a seed makes it repeatable. With `guidance` above 1
each token is also steered away from what the opposite-sentiment request would write (assistant/model/guidance.py).
A review ends at the end marker, at eos, after `max_sentences` sentences or at `max_new_tokens`
(assistant/model/stopping.py). `rules` (assistant/model/rules: a `ReplyRules` book) gives each prompt its decoding
rules, built from the fitted prompt.

Two paths write the same tokens: the fast one (assistant/model/decoding.py: a KV-cached loop, the request and its
opposite prompt as one batch) and transformers' `generate` (assistant/model/plain_generation.py, `fast=False`).
`chat_generator` also readies a model for speed on this machine (assistant/model/runtime.py).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import torch

from assistant.model.compute_thread import ComputeThreadClosed, exiting
from assistant.model.decoding import Decoding, Processor, RememberedPrefix, SamplingPlan
from assistant.model.drafts import choose
from assistant.model.lean_llama import LeanLlama, fuse_layer
from assistant.model.plain_generation import PlainDecoding
from assistant.model.prompts import (
    END_MARKER,
    FittedPrompt,
    ReviewRequest,
    as_written,
    end_marker,
    fit_prompt,
    fit_text,
)
from assistant.model.rules import ReplyRules
from assistant.model.rules.names import names_film, request_words
from assistant.model.runtime import (
    generation_threads,
    int8_model,
    is_int8,
    parameter_count,
)
from assistant.model.stopping import SHORTEST_REVIEW_WORDS, ReplyText
from assistant.settings import Sampling, Settings

log = logging.getLogger(__name__)

DEFAULT_CONTEXT_WINDOW = 1024  # GPT-2's; longer windows only cost time on CPU
DEFAULTS = Sampling()  # the one place sampling defaults come from (assistant/settings.py)


@dataclass
class Drafts:
    """Several sampled reviews for one request and which one was kept.

    on_target[i] is how likely draft i reads as the asked-for sentiment (P(negative) for a negative request);
    None for an empty draft, which is never scored and ranks last. likeness[i] is how likely a critic wrote it
    (empty when no critic-likeness scorer ranked them); garbled[i] whether it has a word no one uses (empty when
    the words were not checked); named[i] whether it names the film's people from the context (empty without)."""

    chosen: int
    texts: list[str]
    on_target: list[float | None]
    likeness: list[float | None] = field(default_factory=list)
    garbled: list[bool | None] = field(default_factory=list)  # True: a word no one uses; empty when not checked
    named: list[bool | None] = field(default_factory=list)  # True: names the film's people; empty without context

    @property
    def text(self) -> str:
        return self.texts[self.chosen]


@dataclass
class GenerationStats:
    prompts: int = 0
    new_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds else 0.0


def stop_token_ids(tokenizer: Any) -> list[int]:
    """eos plus every end marker that is a single token in this vocabulary."""
    vocab = tokenizer.get_vocab()
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    ids |= {vocab[m] for m in (END_MARKER, end_marker(tokenizer)) if m in vocab}
    return sorted(ids)


def context_window(model: Any) -> int:
    config = model.config
    window = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    return min(window or DEFAULT_CONTEXT_WINDOW, DEFAULT_CONTEXT_WINDOW)


Prompt = FittedPrompt | ReviewRequest | str  # fitted once by the caller, a request to fit, or a built prompt's text


class ReviewGenerator:
    """Writes reviews with a causal LM; one stream at a time per instance (callers hold a lock per model)."""

    def __init__(self, model: Any, tokenizer: Any, *, device: str | None = None,
                 repetition_penalty: float = DEFAULTS.repetition_penalty,
                 no_repeat_ngram_size: int = DEFAULTS.no_repeat_ngram_size, guidance: float = 1.0,
                 max_sentences: int = DEFAULTS.max_sentences, min_words: int = SHORTEST_REVIEW_WORDS,
                 fast: bool = True, threads: int = 0, remember_prompts: bool = False) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = device or str(next(model.parameters(), torch.empty(0)).device)
        self.model.to(self.device)
        self.repetition_penalty = repetition_penalty
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self.guidance = guidance  # sentiment guidance scale: 1 = off
        self.max_sentences = max_sentences  # 0 = no sentence bound
        self.min_words = min_words  # a sentence ending before the reply has this many words does not count
        self.fast = fast  # the KV-cached loop (decoding.py); False: transformers' generate
        self.threads = threads  # torch threads for the fast path; 0: chosen by timing (runtime.ThreadChooser)
        # the last prompt's cache, for the next prompt's shared opening (fast path, Llama models)
        self.remembered = RememberedPrefix() if remember_prompts else None
        self.params = parameter_count(model)
        self.precision = "int8" if is_int8(model) else str(next(model.parameters()).dtype).removeprefix("torch.")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.stop_ids = stop_token_ids(tokenizer)
        # also looked for in the text: a marker that is not a special token may be written piece by piece
        self.markers = tuple(dict.fromkeys((END_MARKER, end_marker(tokenizer))))
        self.stats = GenerationStats()

    def fit(self, request: ReviewRequest, max_new_tokens: int) -> FittedPrompt:
        """The request fitted once to this model's window: the prompt it will be given, and its review budget."""
        return fit_prompt(request, self.tokenizer, context_window(self.model), max_new_tokens)

    def _fitted(self, prompt: Prompt, max_new_tokens: int) -> FittedPrompt:
        """A prompt as given: fitted already, a request to fit, or the text of a prompt built elsewhere."""
        if isinstance(prompt, FittedPrompt):
            return prompt
        if isinstance(prompt, ReviewRequest):
            return self.fit(prompt, max_new_tokens)
        return fit_text(prompt, self.tokenizer, context_window(self.model), max_new_tokens)

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    @property
    def vocab_size(self) -> int:
        """The width of the model's logits: what the decoding rules' masks span."""
        return int(self.model.config.vocab_size)

    def _decoding(self, fitted: Sequence[FittedPrompt], plan: SamplingPlan, max_new_tokens: int
                  ) -> Decoding | PlainDecoding:
        negatives = [f.negative_text for f in fitted] if plan.guidance != 1.0 else None
        ids = self._ids([f.text for f in fitted])
        # both paths left-pad the prompts to the longest: the rules are told that width
        # the rules draw per reply (the named lead on some drafts, a critic's length): greedy decoding promises the
        # same reply whatever the seed, so at temperature 0 they draw from one fixed seed
        seed = plan.seed if plan.temperature > 0 else 0
        rules = (plan.rules.rule_set(fitted, prompt_width=max(map(len, ids)), seed=seed)
                 if plan.rules is not None else None)
        if not self.fast:
            return PlainDecoding(self.model, self.tokenizer, [f.text for f in fitted], stop_ids=self.stop_ids,
                                 max_new_tokens=max_new_tokens, plan=plan, negatives=negatives, device=self.device,
                                 markers=self.markers, max_sentences=self.max_sentences, rules=rules,
                                 min_words=self.min_words)
        return Decoding(self.model, ids, pad_id=self.tokenizer.pad_token_id,
                        stop_ids=self.stop_ids, max_new_tokens=max_new_tokens, plan=plan,
                        negatives=self._ids(negatives) if negatives else None, device=self.device,
                        threads=self.threads, remembered=self.remembered, rules=rules)

    def _replies(self, fitted: Sequence[FittedPrompt], plan: SamplingPlan,
                 max_new_tokens: int) -> Iterator[list[str]]:
        """Write a batch of replies; yield, at each step, the new text of each row (empty when none)."""
        decoding = self._decoding(fitted, plan, max_new_tokens)
        replies = [ReplyText(self.tokenizer, self.markers, self.max_sentences, self.min_words) for _ in fitted]
        closed = [False] * len(fitted)  # a stop token came, or the text ended
        started = time.perf_counter()
        try:
            # An abandoned reply is closed (GeneratorExit at the yield) and the `finally` frees its cache. A reply
            # still being read when the process exits stops stepping, and says so (raises): no model work at exit,
            # and a cut reply is not kept as if it were whole.
            while True:
                if exiting():
                    raise ComputeThreadClosed("the process is exiting; the reply was not finished")
                tokens = decoding.step()
                if tokens is None:
                    break
                pieces = [""] * len(fitted)
                for row, token in enumerate(tokens):
                    if closed[row]:
                        continue
                    self.stats.new_tokens += 1
                    if token in self.stop_ids:
                        closed[row] = True
                        continue
                    pieces[row] = replies[row].add([token])
                    if replies[row].ended:
                        closed[row] = True
                        decoding.finish(row)
                yield pieces
            yield [reply.finish() for reply in replies]
        finally:
            decoding.close()
            self.stats.prompts += len(fitted)
            self.stats.seconds += time.perf_counter() - started

    def _plan(self, temperature: float, top_p: float, seed: int | None, guidance: float | None,
              processors: Sequence[Processor], rules: ReplyRules | None = None) -> SamplingPlan:
        return SamplingPlan(temperature=temperature, top_p=top_p, repetition_penalty=self.repetition_penalty,
                            no_repeat_ngram_size=self.no_repeat_ngram_size,
                            guidance=self.guidance if guidance is None else guidance,
                            processors=tuple(processors), rules=rules, seed=seed)

    def stream(self, prompt: Prompt, *, temperature: float = DEFAULTS.temperature, top_p: float = DEFAULTS.top_p,
               max_new_tokens: int = DEFAULTS.max_new_tokens, seed: int | None = None, guidance: float | None = None,
               processors: Sequence[Processor] = (), rules: ReplyRules | None = None) -> Iterator[str]:
        """Yield the review as it is written, a token's worth at a time; closing the iterator stops the work.

        `rules` gives the prompt its decoding rules (assistant/model/rules). `processors` are transformers-style
        logits processors `(input_ids [B, T], scores [B, V]) -> scores`, run on the guided scores after the rules,
        before temperature and nucleus sampling."""
        fitted = self._fitted(prompt, max_new_tokens)
        plan = self._plan(temperature, top_p, seed, guidance, processors, rules)
        with closing(self._replies([fitted], plan, fitted.max_new_tokens)) as replies:  # closed with this one
            for pieces in replies:
                if pieces[0]:
                    yield pieces[0]

    def generate(self, prompt: Prompt, *, temperature: float = DEFAULTS.temperature, top_p: float = DEFAULTS.top_p,
                 max_new_tokens: int = DEFAULTS.max_new_tokens, seed: int | None = None, guidance: float | None = None,
                 processors: Sequence[Processor] = (), rules: ReplyRules | None = None) -> str:
        """The whole review at once (same text as joining `stream` with the same seed)."""
        return self.generate_many([prompt], temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                  seed=seed, batch_size=1, guidance=guidance, processors=processors, rules=rules)[0]

    def generate_many(self, prompts: Sequence[Prompt], *, temperature: float = DEFAULTS.temperature,
                      top_p: float = DEFAULTS.top_p, max_new_tokens: int = DEFAULTS.max_new_tokens,
                      seed: int | None = None, batch_size: int = 16, progress: bool = False,
                      guidance: float | None = None, processors: Sequence[Processor] = (),
                      rules: ReplyRules | None = None) -> list[str]:
        """Reviews for many requests, batched by prompt length (on CPU far faster per token than one by one)."""
        fitted = [self._fitted(p, max_new_tokens) for p in prompts]
        max_new_tokens = min((f.max_new_tokens for f in fitted), default=max_new_tokens)
        order = sorted(range(len(fitted)), key=lambda i: fitted[i].tokens)
        results: list[str] = [""] * len(fitted)
        batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="generating", unit="batch")
        plan = self._plan(temperature, top_p, seed, guidance, processors, rules)
        for number, batch in enumerate(batches):
            if seed is not None:  # each batch its own stream of random numbers, fixed by the seed
                plan = self._plan(temperature, top_p, seed + number, guidance, processors, rules)
            texts = [""] * len(batch)
            for pieces in self._replies([fitted[i] for i in batch], plan, max_new_tokens):
                texts = [t + p for t, p in zip(texts, pieces)]
            for i, text in zip(batch, texts):
                results[i] = text.strip()
        return results

    def best_of(self, prompt: Prompt, positive_probability: Callable[[list[str]], Sequence[float]], *,
                n: int = 4, temperature: float = DEFAULTS.temperature, top_p: float = DEFAULTS.top_p,
                max_new_tokens: int = DEFAULTS.max_new_tokens, seed: int | None = None,
                guidance: float | None = None, processors: Sequence[Processor] = (),
                rules: ReplyRules | None = None,
                critic_probability: Callable[[list[str]], Sequence[float | None]] | None = None,
                garbled: Callable[[list[str]], Sequence[bool] | None] | None = None) -> Drafts:
        """Sample n reviews in one batch and keep the best (`drafts.choose`): the one a sentiment scorer rates most
        on-target, or with `critic_probability` (texts -> P(a critic wrote it)) the most critic-like of those that
        read clearly as asked, with `garbled` (texts -> whether each has a word no one uses, or None when it
        cannot tell) among those without a made-up word first.

        `positive_probability` maps texts to P(positive); only non-empty drafts are scored, and an empty draft is
        chosen only when every draft is empty. Ties go to the earlier draft, so a seed fixes the choice too."""
        if n < 1:
            raise ValueError(f"best_of needs at least one draft, not {n}")
        fitted = self._fitted(prompt, max_new_tokens)
        texts = self.generate_many([fitted] * n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                   seed=seed, batch_size=n, guidance=guidance, processors=processors, rules=rules)
        written = [i for i, t in enumerate(texts) if t.strip()]

        def read(what: str, reader: Callable[[list[str]], Any] | None) -> list:
            """The reader's values over the written drafts, placed at their positions (None for an empty draft);
            [] without a reader or when it reads nothing (every value None: the word check not ready yet)."""
            values = list(reader([texts[i] for i in written])) if reader is not None and written else []
            if reader is not None and written and len(values) != len(written):
                raise ValueError(f"the {what} returned {len(values)} scores for {len(written)} drafts")
            if all(v is None for v in values):
                return []
            placed: list = [None] * n
            for i, v in zip(written, values):
                placed[i] = v
            return placed

        on_target = read("scorer", positive_probability) or [None] * n
        on_target = [None if p is None else (1.0 - float(p) if fitted.request.sentiment == "negative" else float(p))
                     for p in on_target]
        likeness = [None if v is None else float(v) for v in read("critic-likeness scorer", critic_probability)]
        flagged = [None if v is None else bool(v) for v in read("word check", garbled)]
        allowed = request_words(as_written(fitted.request))
        named = ([names_film(t, allowed) if t.strip() else None for t in texts]
                 if allowed is not None and allowed.details else [])
        return Drafts(chosen=choose(on_target, likeness, flagged, named), texts=texts, on_target=on_target,
                      likeness=likeness, garbled=flagged, named=named)

    def warm_up(self) -> None:
        """Short guided generations from a RAG-sized prompt, so the first person's reply does not pay for
        first-call set-up (kernels and buffers for long prompts are made on first use: 0.6 s here), nor run on
        the thread count that the set-up made look slow: after the first, each count is timed on a warm one."""
        quote = 'A critic, fresh: "' + "A warm, funny and sharply made film that earns its big finish. " * 4 + '"'
        request = ReviewRequest("positive", "Warm-up", None, [quote] * 4)
        started = time.perf_counter()
        remembered, fixed, self.remembered = self.remembered, self.threads, None  # every pass computed in full
        try:
            self.generate(request, temperature=0, max_new_tokens=3, guidance=2.0)
            if self.fast and not fixed:  # counts chosen by timing: each one timed on a warm reply
                generation_threads.forget()
                for count in generation_threads.options:
                    self.threads = count
                    self.generate(request, temperature=0, max_new_tokens=3, guidance=2.0)
        finally:
            self.remembered, self.threads = remembered, fixed
        self.stats = GenerationStats()
        log.info("generation warmed up in %.2f s", time.perf_counter() - started)


def chat_generator(model: Any, tokenizer: Any, settings: Settings, *, warm_up: bool = True) -> ReviewGenerator:
    """The chat's generator: the settings' sampling defaults and speed options (int8 weights where they run,
    assistant/model/runtime.py; the fast decode loop), warmed up. Takes the model over: int8 replaces its weights."""
    params = parameter_count(model)  # before int8 gives the tied input and output embeddings copies of their own
    if settings.int8_generation:  # fused projections for the lean forward, in the same pass (no lasting copies)
        fuse = fuse_layer if settings.fast_generation and LeanLlama.supports(model) else None
        model, _ = int8_model(model, prepare_layer=fuse)
    sampling = settings.sampling
    generator = ReviewGenerator(model, tokenizer, repetition_penalty=sampling.repetition_penalty,
                                no_repeat_ngram_size=sampling.no_repeat_ngram_size,
                                max_sentences=sampling.max_sentences, fast=settings.fast_generation,
                                threads=settings.generation_threads, remember_prompts=True)
    generator.params = params
    if warm_up:
        generator.warm_up()
    return generator
