"""The review model as LangChain parts: `ReviewPrompt` (a prompt template that fits the request to the model's
window once) and `ReviewLLM` (an `LLM` over `generation.ReviewGenerator` that streams tokens as they are written).

    prompt = ReviewPrompt.for_generator(generator)
    llm = ReviewLLM.from_sampling(generator, settings.sampling)
    for token in (prompt | llm).stream({"sentiment": "negative", "movie": "Gigli"}): ...

The sampling settings are the LLM's fields (defaults from `settings.Sampling`), so `configurable_fields`,
`.bind(temperature=...)` and per-call keyword arguments all work as for any LangChain LLM. Best-of-n drafts
(`drafts` > 1 with a `draft_scorer`) write the drafts in one batch and yield the chosen one whole; what was
done is reported in the last chunk's `generation_info` ("drafts", "notes"), which callbacks receive in
`on_llm_end`.

LangChain hands an LLM its prompt as text. `ReviewLLM` keeps the structure of the prompts `ReviewPrompt` fitted
(`FittedPromptValue.fitted`), looked up by their text, so the decoding rules and the guidance scale are read from
the request itself; only a prompt handed over as bare text is read back (`prompts.fit_text`).
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.llms import LLM
from langchain_core.outputs import Generation, GenerationChunk, LLMResult
from langchain_core.prompt_values import PromptValue, StringPromptValue
from langchain_core.prompts import BasePromptTemplate
from pydantic import ConfigDict, Field, PrivateAttr

from assistant.model.drafts import fallback_record, record
from assistant.model.generation import context_window
from assistant.model.prompts import (
    END_MARKER,
    FittedPrompt,
    ReviewRequest,
    end_marker,
    fit_prompt,
    fit_text,
    plan_budget,
    shown_texts,
)
from assistant.model.rules import ReplyRules
from assistant.settings import Sampling

log = logging.getLogger(__name__)

DEFAULTS = Sampling()
KEPT_PROMPTS = 32  # fitted prompts an LLM keeps by text: enough for the calls under way (a batch, a comparison)
_UNPRINTABLE = re.compile(r"[\ufffd\x00-\x08\x0b-\x1f\x7f]")


def clean_generated(text: str) -> str:
    """Generated text without broken bytes or control characters (small models emit partial UTF-8)."""
    return _UNPRINTABLE.sub("", text)


def stop_sequences(tokenizer: Any) -> list[str]:
    """What ends a review for this tokenizer, as LLM stop sequences (a remote server needs them spelled out)."""
    return sorted({END_MARKER, end_marker(tokenizer)})


# ---- the prompt ----------------------------------------------------------------------------------------------

class FittedPromptValue(StringPromptValue):
    """The prompt's text, with the fitting that produced it (kept context, token counts, review budget)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    fitted: FittedPrompt


class ReviewPrompt(BasePromptTemplate):
    """{sentiment, movie, topic, context} -> the model's prompt, fitted once to its window (`prompts.fit_prompt`).

    `context` is the list of formatted context items, best first; the ones that do not fit are dropped and
    counted in `fitted.dropped`. The value's text is exactly what the model is given."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    input_variables: list[str] = Field(default_factory=lambda: ["sentiment"])
    optional_variables: list[str] = Field(default_factory=lambda: ["movie", "topic", "context"])
    tokenizer: Any = Field(exclude=True)
    window: int
    max_new_tokens: int = DEFAULTS.max_new_tokens

    @classmethod
    def for_generator(cls, generator: Any, **fields: Any) -> ReviewPrompt:
        return cls(tokenizer=generator.tokenizer, window=context_window(generator.model), **fields)

    @property
    def _prompt_type(self) -> str:
        return "review-prompt"

    def format_prompt(self, **kwargs: Any) -> FittedPromptValue:
        request = ReviewRequest(kwargs["sentiment"], kwargs.get("movie"), kwargs.get("topic"),
                                list(kwargs.get("context") or []))
        fitted = fit_prompt(request, self.tokenizer, self.window, self.max_new_tokens)
        return FittedPromptValue(text=fitted.text, fitted=fitted)

    def format(self, **kwargs: Any) -> str:
        return self.format_prompt(**kwargs).to_string()


# ---- the model -----------------------------------------------------------------------------------------------

class StopCut:
    """Cuts a stream at the first stop sequence, holding back text that may be the start of one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""
        self.done = False

    def feed(self, piece: str) -> str:
        text = self.pending + piece
        cuts = [text.find(s) for s in self.stops if s in text]
        if cuts:
            self.done, self.pending = True, ""
            return text[:min(cuts)]
        hold = max((k for s in self.stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        self.pending = text[len(text) - hold:] if hold else ""
        return text[:len(text) - hold]

    def flush(self) -> str:
        rest, self.pending = self.pending, ""
        return rest


def cut_at_stop(text: str, stops: Sequence[str] | None) -> str:
    cuts = [text.find(s) for s in stops or () if s and s in text]
    return text[:min(cuts)] if cuts else text


class ReviewLLM(LLM):
    """A local causal LM (`ReviewGenerator`) as a LangChain LLM. One generation at a time per model (`lock`)."""

    generator: Any = Field(exclude=True)
    temperature: float = DEFAULTS.temperature
    top_p: float = DEFAULTS.top_p
    max_new_tokens: int = DEFAULTS.max_new_tokens
    guidance: float = DEFAULTS.guidance
    praise_guidance: float = DEFAULTS.praise_guidance  # added to `guidance` for positive reviews (settings)
    drafts: int = DEFAULTS.drafts
    seed: int | None = None
    draft_scorer: Callable[[list[str]], Sequence[float]] | None = Field(default=None, exclude=True)
    # texts -> P(a critic wrote it), or None when there is no scorer: among the drafts that read clearly as asked,
    # the most critic-like is kept
    critic_scorer: Callable[[list[str]], Sequence[float] | None] | None = Field(default=None, exclude=True)
    # (texts, the words the model was shown) -> whether each has a word no one uses, or None when it cannot tell
    # yet: among the clear drafts, those without a made-up word are kept first
    word_check: Callable[[list[str], list[str]], Sequence[bool] | None] | None = Field(default=None, exclude=True)
    # The decoding rules each prompt is written under (assistant/model/rules), built from its fitted request
    rules: ReplyRules | None = Field(default=None, exclude=True)
    lock: Any = Field(default_factory=threading.Lock, exclude=True)
    _fitted_prompts: OrderedDict = PrivateAttr(default_factory=OrderedDict)  # text -> FittedPrompt, the latest few
    _fitted_lock: Any = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def from_sampling(cls, generator: Any, sampling: Sampling, **fields: Any) -> ReviewLLM:
        return cls(generator=generator, temperature=sampling.temperature, top_p=sampling.top_p,
                   max_new_tokens=sampling.max_new_tokens, guidance=sampling.guidance, drafts=sampling.drafts,
                   praise_guidance=sampling.praise_guidance, **fields)

    @property
    def _llm_type(self) -> str:
        return "review-generator"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_new_tokens": self.max_new_tokens,
                "guidance": self.guidance, "praise_guidance": self.praise_guidance, "drafts": self.drafts,
                "seed": self.seed}

    def _sampling(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """This call's sampling: the fields, overridden by keyword arguments, checked by `Sampling`."""
        merged = {**self._identifying_params, **{k: v for k, v in overrides.items() if v is not None}}
        checked = DEFAULTS.merged(temperature=merged["temperature"], top_p=merged["top_p"],
                                  max_new_tokens=merged["max_new_tokens"], guidance=merged["guidance"],
                                  praise_guidance=merged["praise_guidance"], drafts=merged["drafts"])
        tokenizer, window = self.generator.tokenizer, context_window(self.generator.model)
        # The same review budget the prompt was fitted with (prompts.plan_budget), so what the reply reports
        # as max_new_tokens is what the model was allowed.
        budget = plan_budget(tokenizer, window, checked.max_new_tokens)[0]
        return {"temperature": checked.temperature, "top_p": checked.top_p, "max_new_tokens": budget,
                "guidance": checked.guidance, "praise_guidance": checked.praise_guidance, "drafts": checked.drafts,
                "seed": merged["seed"]}

    @staticmethod
    def _guidance_for(sentiment: str, guidance: float, praise: float) -> float:
        """The scale a review of this sentiment is written with: `praise` more for a positive review while guidance
        is on, whether the scale came from the settings or the request (Sampling.praise_guidance says why)."""
        return DEFAULTS.merged(guidance=guidance, praise_guidance=praise).scale_for(sentiment)

    def _convert_input(self, model_input: LanguageModelInput) -> PromptValue:
        """Every LangChain entry point (invoke, stream, batch and their async twins) passes its input here before
        the prompt becomes text: a fitted prompt's structure is kept for `_fitted`."""
        value = super()._convert_input(model_input)
        fitted = getattr(value, "fitted", None)
        if isinstance(fitted, FittedPrompt):
            with self._fitted_lock:
                self._fitted_prompts[fitted.text] = fitted
                self._fitted_prompts.move_to_end(fitted.text)
                while len(self._fitted_prompts) > KEPT_PROMPTS:
                    self._fitted_prompts.popitem(last=False)
        return value

    def _fitted(self, prompt: str, max_new_tokens: int) -> FittedPrompt:
        """The prompt as `ReviewPrompt` fitted it, with this call's review budget; a prompt given as bare text is
        read back (ValueError when it is not a review prompt)."""
        with self._fitted_lock:
            fitted = self._fitted_prompts.get(prompt)
        if fitted is None:
            return fit_text(prompt, self.generator.tokenizer, context_window(self.generator.model), max_new_tokens)
        return fitted.with_budget(max_new_tokens)

    def _call(self, prompt: str, stop: list[str] | None = None,
              run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> str:
        return "".join(chunk.text for chunk in self._stream(prompt, stop, run_manager, **kwargs))

    def _generate(self, prompts: list[str], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> LLMResult:
        """As `_stream`, whole: `invoke` and `batch` report the same generation_info as a stream."""
        generations = []
        for prompt in prompts:
            whole = GenerationChunk(text="")
            for chunk in self._stream(prompt, stop, run_manager, **kwargs):
                whole += chunk
            generations.append([Generation(text=whole.text, generation_info=whole.generation_info)])
        return LLMResult(generations=generations)

    def _stream(self, prompt: str, stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[GenerationChunk]:
        sampling = self._sampling(kwargs)
        fitted = self._fitted(prompt, sampling["max_new_tokens"])
        sampling["guidance"] = self._guidance_for(fitted.request.sentiment, sampling["guidance"],
                                                  sampling.pop("praise_guidance"))
        drafts = sampling.pop("drafts")
        extra = {"rules": self.rules} if self.rules is not None else {}
        info: dict[str, Any] = {"guidance": sampling["guidance"], "max_new_tokens": sampling["max_new_tokens"]}
        with self.lock:
            if drafts > 1 and self.draft_scorer is not None and sampling["temperature"] > 0:
                text, info["drafts"], info["notes"] = self._best_of(fitted, drafts, sampling, extra)
                chunk = GenerationChunk(text=cut_at_stop(text, stop))
                if chunk.text:
                    if run_manager:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
            else:
                if drafts > 1:
                    why = ("at temperature 0 every draft would be the same" if sampling["temperature"] <= 0
                           else "no draft scorer was given")
                    info["drafts"] = fallback_record(drafts, why)
                    info["notes"] = [f"Wrote one draft instead of {drafts}: {why}."]
                yield from self._stream_one(fitted, stop, run_manager, sampling, extra)
        yield GenerationChunk(text="", generation_info=info)

    def _stream_one(self, prompt: FittedPrompt, stop: list[str] | None, run_manager: CallbackManagerForLLMRun | None,
                    sampling: dict[str, Any], extra: dict[str, Any]) -> Iterator[GenerationChunk]:
        cut = StopCut(stop or [])
        pieces = self.generator.stream(prompt, **sampling, **extra)
        try:
            for raw in pieces:
                text = cut.feed(clean_generated(raw))
                if text:
                    chunk = GenerationChunk(text=text)
                    if run_manager:
                        run_manager.on_llm_new_token(text, chunk=chunk)
                    yield chunk
                if cut.done:
                    break
        finally:
            pieces.close()  # ends the generation thread when the reader stops early
        rest = cut.flush()
        if rest and not cut.done:
            yield GenerationChunk(text=rest)

    def _best_of(self, prompt: FittedPrompt, n: int, sampling: dict[str, Any],
                 extra: dict[str, Any]) -> tuple[str, dict[str, Any], list[str]]:
        """n drafts in one batch, ranked by the scorer: (chosen text, drafts record, notes)."""
        score_s = 0.0
        errors: dict[str, Exception] = {}

        def timed(name: str, scorer: Callable[[list[str]], Any], fallback: float | None) -> Callable[[list[str]], list]:
            """`scorer` over the cleaned drafts, timed into score_s; on failure (kept in `errors`) every draft
            gets `fallback`: the drafts are written by now, and a failed ranking keeps one rather than none."""
            def read(texts: list[str]) -> list:
                nonlocal score_s
                started = time.perf_counter()
                try:
                    values = scorer([clean_generated(t) for t in texts])
                    if values is None and fallback is None:  # "no scorer now" (the critic scorer, the word check)
                        return [None] * len(texts)
                    if len(values) != len(texts):
                        raise ValueError(f"{len(values)} readings for {len(texts)} drafts")
                    return [float(v) for v in values]
                except Exception as exc:
                    errors[name] = exc
                    return [fallback] * len(texts)
                finally:
                    score_s += time.perf_counter() - started
            return read

        started = time.perf_counter()
        critic = timed("critic", self.critic_scorer, None) if self.critic_scorer is not None else None
        shown = shown_texts(prompt.request)  # a word the model was shown is no made-up word
        words = (timed("words", lambda texts: self.word_check(texts, shown), None)
                 if self.word_check is not None else None)
        result = self.generator.best_of(prompt, timed("sentiment", self.draft_scorer, 0.5), n=n,
                                        critic_probability=critic, garbled=words, **sampling, **extra)
        drafted = record(result, generate_s=time.perf_counter() - started - score_s, score_s=score_s)
        notes = []
        if "sentiment" in errors:
            exc = errors["sentiment"]
            log.error("scoring the drafts failed", exc_info=exc)
            failure = f"{type(exc).__name__}: {_first_line(exc)}"
            drafted.update(scorer=None, on_target=[], why=f"scoring failed ({failure})")
            notes.append(f"The {n} drafts could not be ranked ({failure}); this is the first one the model wrote.")
        elif "critic" in errors:  # ranked by sentiment alone rather than not at all
            unread = _first_line(errors["critic"]) or type(errors["critic"]).__name__
            log.warning("drafts ranked by sentiment alone: the critic-likeness scorer could not read them (%s)", unread)
            drafted["likeness_unread"] = unread
        if "words" in errors:  # ranked without it rather than not at all
            drafted["words_unread"] = _first_line(errors["words"]) or type(errors["words"]).__name__
            log.warning("drafts ranked without the word check: %s", drafted["words_unread"])
        log.info("drafts: chose %d of %d, on-target scores %s", result.chosen + 1, n, drafted["on_target"])
        return clean_generated(result.text).strip(), drafted, notes


def _first_line(exc: Exception) -> str:
    """What a record or a note says of a failure: its message's first line ("" when it has none)."""
    return str(exc).splitlines()[0] if str(exc) else ""
