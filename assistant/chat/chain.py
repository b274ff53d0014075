"""The assistant: one chat message in, one reply out, remembering each session.

    asst = Assistant.load(settings)
    reply = asst.reply("s1", "Write a positive review of Toy Story", rag=True)
    for event in asst.stream("s1", "now a negative one"): ...   # str tokens, then the Reply
    both = asst.compare("s1", "another")                         # {"rag": Reply, "no_rag": Reply}

A turn is: parse the message against the session's last request (`intent`), then answer by kind:
a review from the language model, with retrieved reviews in its context (RAG) or without; the
critics' opinion counted from the data; or help and small talk. Each reply says plainly which
model wrote it, what it was given, and every fallback taken on the way.
"""
from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.messages import AIMessage
from pydantic import ValidationError

from assistant.chat.export import source_line
from assistant.chat.intent import ParsedRequest, parse, safe_phrase
from assistant.chat.memory import ChatMemory, check_session_id
from assistant.chat.opinion import (
    critics_opinion,
    opinion_text,
    review_counts,
    unknown_movie_text,
)
from assistant.chat.retrieval import Source, retrieve
from assistant.data.titles import TitleIndex
from assistant.model.drafts import (
    describe,
    fallback_record,
    probe_scorer,
    record,
    why_single,
)
from assistant.model.generation import ReviewGenerator
from assistant.model.prompts import (
    FittedPrompt,
    ReviewRequest,
    other_sentiment,
)
from assistant.settings import Settings, get_settings

__all__ = ["Assistant", "AssistantError", "ParsedRequest", "Reply", "Source"]

log = logging.getLogger(__name__)

MODELS: tuple[str, ...] = ("tuned", "base")
MODES: tuple[str, ...] = ("rag", "no_rag", "data", "chat")
INGEST_HINT = "python ingest.py"
FINETUNE_HINT = "python -m assistant.finetune"
MAX_TOP_K = 20


class AssistantError(RuntimeError):
    """Nothing to answer with (no store and no model); the message is one line naming the command to run."""


@dataclass
class Reply:
    text: str
    request: ParsedRequest
    sources: list[Source] = field(default_factory=list)
    mode: str = "chat"  # rag | no_rag | data | chat
    model: str | None = None  # tuned | base; None when no language model wrote the reply
    timings: dict[str, float | None] = field(
        default_factory=lambda: {"retrieval_s": 0.0, "first_token_s": None, "total_s": 0.0})
    notes: list[str] = field(default_factory=list)
    opinion: dict[str, Any] | None = None
    prompt: str | None = None  # exactly what the model was given
    prompt_tokens: int | None = None
    max_new_tokens: int | None = None
    window: int | None = None  # the model's context window the prompt was budgeted against
    seed: int | None = None
    model_name: str | None = None
    session_id: str = ""
    drafts: dict[str, Any] | None = None  # best-of-n: drafts.record / fallback_record; None for one live draft
    guidance: float | None = None  # sentiment guidance scale the review was written with (1 = off)

    def to_json(self) -> dict[str, Any]:
        """The machine-readable shape of `python -m assistant ask --json`."""
        r = self.request
        return {
            "reply": self.text,
            "sources": [s.to_dict() for s in self.sources],
            "request": {"kind": r.kind, "sentiment": r.sentiment, "movie": r.movie, "movie_key": r.movie_key,
                        "topic": r.topic, "fuzzy_score": r.fuzzy_score, "followup": r.followup,
                        "sentiment_from": r.sentiment_from, "suggestions": r.suggestions},
            "mode": self.mode, "model": self.model, "model_name": self.model_name,
            "timings": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.timings.items()},
            "notes": self.notes, "opinion": self.opinion, "seed": self.seed,
            "prompt_tokens": self.prompt_tokens, "max_new_tokens": self.max_new_tokens, "window": self.window,
            "session_id": self.session_id, "drafts": self.drafts, "guidance": self.guidance,
        }

    def memory_meta(self) -> dict[str, Any]:
        """What the session keeps of this reply, for follow-ups, "why?" and display."""
        return {"mode": self.mode, "model": self.model, "model_name": self.model_name,
                "request": self.request.to_dict(), "sources": [s.to_dict() for s in self.sources],
                "notes": self.notes, "opinion": self.opinion, "seed": self.seed, "drafts": self.drafts,
                "guidance": self.guidance, "timings": self.to_json()["timings"]}


@dataclass
class _Slot:
    """One language model: loaded now, or loadable on first use."""

    generator: ReviewGenerator | None = None
    loader: Callable[[], tuple[ReviewGenerator, dict[str, Any]]] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # one generation at a time per model


@dataclass
class _Turn:
    session_id: str
    parsed: ParsedRequest
    previous: ParsedRequest | None
    previous_meta: dict[str, Any] | None
    notes: list[str]
    started: float
    seed: int


def _generator_info(generator: ReviewGenerator, kind: str) -> dict[str, Any]:
    model = generator.model
    name = getattr(model.config, "_name_or_path", "") or model.config.model_type
    return {"kind": kind, "name": str(name), "params": sum(p.numel() for p in model.parameters()),
            "device": generator.device}


class Assistant:
    """Parses, retrieves, generates and remembers. Thread-safe; one instance serves every session."""

    def __init__(self, settings: Settings | None = None, *, store: Any = None,
                 generators: dict[str, ReviewGenerator | None] | None = None, memory: ChatMemory | None = None,
                 loaders: dict[str, Callable[[], tuple[ReviewGenerator, dict[str, Any]]]] | None = None,
                 titles: TitleIndex | None = None, warnings: list[str] | None = None,
                 model_info: dict[str, dict[str, Any]] | None = None, store_error: str | None = None,
                 embeddings_loader: Callable[[], Any] | None = None, probe: Any = None) -> None:
        self.settings = settings or get_settings()
        self.store = store
        self.store_error = store_error or (None if store is not None else f"no review store; build it with: "
                                           f"{INGEST_HINT}")
        self.titles = titles if titles is not None else (TitleIndex.from_store(store) if store is not None else None)
        self.memory = memory if memory is not None else ChatMemory.from_settings(self.settings)
        self.warnings = list(warnings or [])
        self._slots: dict[str, _Slot] = {}
        for name in MODELS:
            generator = (generators or {}).get(name)
            info = dict((model_info or {}).get(name) or {})
            if generator is not None:
                info = {**_generator_info(generator, name), **info}
            self._slots[name] = _Slot(generator=generator, loader=(loaders or {}).get(name), info=info)
        self._load_lock = threading.Lock()
        self._embeddings_loader = embeddings_loader  # the embedding model loads on the first retrieval
        self.probe = probe  # sentiment_probe.SentimentProbe that ranks drafts; None: one draft, streamed

    # -- loading -----------------------------------------------------------------------------------
    @classmethod
    def load(cls, settings: Settings | None = None, *, strict: bool = False, embeddings: Any = None) -> Assistant:
        """Store and model(s), once. Missing pieces degrade the assistant (and are listed in `warnings`);
        AssistantError only when there is nothing to answer with, or with `strict` when anything is missing."""
        from assistant.data.store import ReviewStore, StoreError
        from assistant.model.bases import load_base, load_tuned, tuned_dir
        from assistant.model.sentiment_probe import SentimentProbe

        settings = settings or get_settings()
        warnings: list[str] = []
        store, store_error = None, None
        try:
            store = ReviewStore.open(settings, embeddings)
        except StoreError as exc:
            store_error = str(exc)
            warnings.append(f"Retrieval unavailable: {exc}")

        generators: dict[str, ReviewGenerator | None] = {"tuned": None, "base": None}
        info: dict[str, dict[str, Any]] = {}
        base_name = settings.base_model
        try:
            tuned = load_tuned(settings)
            if tuned is None:
                warnings.append(f"No fine-tuned model in {tuned_dir(settings)}; replies come from the base model "
                                f"until you train it with: {FINETUNE_HINT}")
        except Exception as exc:  # a damaged model folder degrades to the base model
            tuned = None
            warnings.append(f"The fine-tuned model in {tuned_dir(settings)} could not be loaded "
                            f"({str(exc).splitlines()[0]}); retrain it with: {FINETUNE_HINT}")
        if tuned is not None:
            model, tokenizer, card = tuned
            generators["tuned"] = ReviewGenerator(model, tokenizer)
            base_name = card.get("base") or base_name
            method = card.get("method")
            label = {"lora": " + LoRA", "full": ", fully fine-tuned"}.get(method or "", " fine-tuned")
            info["tuned"] = {"kind": "tuned", "name": f"{card.get('base') or 'unknown base'}{label}",
                             "base": card.get("base"), "method": card.get("method"),
                             "path": str(tuned_dir(settings)), "train_minutes": card.get("train_minutes")}

        def load_base_generator() -> tuple[ReviewGenerator, dict[str, Any]]:
            model, tokenizer, base_info = load_base(base_name, settings)
            return ReviewGenerator(model, tokenizer), {"kind": "base", "name": base_info.name,
                                                       "source": base_info.source, "base": base_info.name}

        info["base"] = {"kind": "base", "name": base_name, "base": base_name}
        assistant = cls(settings, store=store, generators=generators, loaders={"base": load_base_generator},
                        warnings=warnings, model_info=info, store_error=store_error, embeddings_loader=None
                        if embeddings is not None else _embeddings_loader(settings),
                        # A property of the data, not of the model: it ranks the base model's drafts too.
                        probe=SentimentProbe.find(tuned_dir(settings)))
        if tuned is None:
            assistant.generator("base")  # the only model there is: load it now, not on the first message
            if assistant._slots["base"].error:
                warnings.append(f"No language model either: {assistant._slots['base'].error}")
        has_model = any(s.generator is not None for s in assistant._slots.values())
        if store is None and not has_model:
            raise AssistantError(f"Nothing to answer with: no review store (build it with: {INGEST_HINT}) and "
                                 f"no language model (train one with: {FINETUNE_HINT})")
        if strict and warnings:
            raise AssistantError(warnings[0])
        for warning in warnings:
            log.warning("%s", warning)
        return assistant

    def generator(self, name: str) -> ReviewGenerator | None:
        """The named model's generator, loading it on first use; None when it cannot be had."""
        slot = self._slots[name]
        if slot.generator is None and slot.loader is not None and slot.error is None:
            with self._load_lock:
                if slot.generator is None and slot.error is None:
                    started = time.perf_counter()
                    try:
                        slot.generator, extra = slot.loader()
                        slot.info = {**slot.info, **_generator_info(slot.generator, name), **extra}
                        log.info("loaded the %s model %s in %.1f s", name, slot.info.get("name"),
                                 time.perf_counter() - started)
                    except Exception as exc:  # any load failure means "not available", said once
                        slot.error = f"the {name} model could not be loaded: {str(exc).splitlines()[0]}"
                        log.warning("%s", slot.error)
        return slot.generator

    def _pick_model(self, wanted: str) -> tuple[str | None, ReviewGenerator | None, list[str]]:
        other = "base" if wanted == "tuned" else "tuned"
        generator = self.generator(wanted)
        if generator is not None:
            return wanted, generator, []
        fallback = self.generator(other)
        if fallback is None:
            return None, None, []
        if wanted == "tuned":
            note = (f"There is no fine-tuned model yet (train it with: {FINETUNE_HINT}); this review is from the "
                    f"base model {self._slots['base'].info.get('name', '')}, before fine-tuning.")
        else:
            note = (f"The base model is not available ({self._slots['base'].error or 'not loaded'}); this review "
                    "is from the tuned model.")
        return other, fallback, [note]

    # -- status ------------------------------------------------------------------------------------
    @property
    def rag_available(self) -> bool:
        return self.store is not None and (self.store.embeddings is not None or self._embeddings_loader is not None)

    def _ensure_embeddings(self) -> bool:
        if self.store is None:
            return False
        if self.store.embeddings is None and self._embeddings_loader is not None:
            with self._load_lock:
                if self.store.embeddings is None:
                    started = time.perf_counter()
                    try:
                        self.store.embeddings = self._embeddings_loader()
                    except Exception as exc:  # no embedding model means no retrieval, said once
                        self._embeddings_loader = None
                        self.store_error = f"the embedding model could not be loaded: {str(exc).splitlines()[0]}"
                        log.warning("%s", self.store_error)
                    else:
                        log.info("loaded the embedding model in %.1f s", time.perf_counter() - started)
        return self.store.embeddings is not None

    def models_available(self) -> list[str]:
        """Models that are loaded or can still be loaded on first use."""
        return [n for n, s in self._slots.items()
                if s.generator is not None or (s.loader is not None and s.error is None)]

    def status(self) -> dict[str, Any]:
        models = {}
        for name, slot in self._slots.items():
            models[name] = {**slot.info, "kind": name, "loaded": slot.generator is not None,
                            "available": name in self.models_available(), "error": slot.error}
        store = None
        if self.store is not None:
            counts = self.store.manifest.counts
            store = {"path": str(self.store.directory), "reviews": counts.get("reviews"),
                     "movies": counts.get("movies"), "chunks": counts.get("chunks", self.store.total),
                     "titled_movies": len(self.titles) if self.titles is not None else 0,
                     "embedding_model": self.store.manifest.embedding_model}
        available = self.models_available()
        return {
            "models": models, "models_available": available,
            "default_model": self.settings.default_model if self.settings.default_model in available
            else (available[0] if available else None),
            "store": store, "store_error": self.store_error, "rag_available": self.rag_available,
            "top_k": self.settings.top_k, "chats_db": str(self.memory.path), "warnings": list(self.warnings),
            "drafts": self.settings.sampling.drafts, "draft_scorer": self.probe is not None,
        }

    # -- public turn API ---------------------------------------------------------------------------
    def parse(self, text: str, session_id: str | None = None) -> ParsedRequest:
        """How a message would be read in a session (nothing generated, nothing stored)."""
        previous = self._previous(session_id)[0] if session_id else None
        return parse(text, self.titles, previous, max_chars=self.settings.max_message_chars,
                     min_score=self.settings.fuzzy_min_score)

    def reply(self, session_id: str, text: str, *, rag: bool = True, model: str = "tuned", top_k: int | None = None,
              temperature: float | None = None, max_new_tokens: int | None = None, seed: int | None = None,
              remember: bool = True, drafts: int | None = None, guidance: float | None = None) -> Reply:
        final = None
        for event in self.stream(session_id, text, rag=rag, model=model, top_k=top_k, temperature=temperature,
                                 max_new_tokens=max_new_tokens, seed=seed, remember=remember, drafts=drafts,
                                 guidance=guidance):
            if isinstance(event, Reply):
                final = event
        assert final is not None  # stream always ends with its Reply
        return final

    def stream(self, session_id: str, text: str, *, rag: bool = True, model: str = "tuned",
               top_k: int | None = None, temperature: float | None = None, max_new_tokens: int | None = None,
               seed: int | None = None, remember: bool = True, drafts: int | None = None,
               guidance: float | None = None) -> Iterator[str | Reply]:
        """Yield the reply's text as it is written (str), then the finished Reply.

        Sampling options left None come from settings.sampling. With `drafts` > 1 a review is written as that
        many drafts and only the chosen one is yielded, at once, when it is ready. `guidance` steers each token
        away from the opposite sentiment (assistant/model/guidance.py); 1 turns it off."""
        options = self._options(model, top_k, temperature, max_new_tokens, drafts, guidance)
        turn = self._prepare(session_id, text, seed)
        final = None
        for event in self._answer(turn, rag=rag, **options):
            if isinstance(event, Reply):
                final = event
            else:
                yield event
        assert final is not None
        if remember:
            self._remember(turn, final)
        yield final

    def compare(self, session_id: str, text: str, *, model: str = "tuned", top_k: int | None = None,
                temperature: float | None = None, max_new_tokens: int | None = None, seed: int | None = None,
                remember: bool = True, drafts: int | None = None, guidance: float | None = None) -> dict[str, Reply]:
        """The same message answered with and without retrieval: same reading, same model, same seed."""
        options = self._options(model, top_k, temperature, max_new_tokens, drafts, guidance)
        turn = self._prepare(session_id, text, seed)
        replies = {}
        for key, rag in (("rag", True), ("no_rag", False)):
            # Each answer is timed from its own start: the second must not count the first's generation.
            events = list(self._answer(replace(turn, notes=list(turn.notes), started=time.perf_counter()),
                                       rag=rag, **options))
            replies[key] = events[-1]
            if turn.parsed.kind != "review":  # nothing differs without a model: answer once
                replies["no_rag"] = replies["rag"]
                break
        if remember:
            self._remember(turn, replies["rag"], compare=replies["no_rag"])
        return replies

    def close(self) -> None:
        self.memory.close()

    # -- the turn ----------------------------------------------------------------------------------
    def _options(self, model: str, top_k: int | None, temperature: float | None, max_new_tokens: int | None,
                 drafts: int | None = None, guidance: float | None = None) -> dict[str, Any]:
        """The request's options, checked: ValueError (one line) for an unknown model or a value out of range."""
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, not {model!r}")
        k = self.settings.top_k if top_k is None else int(top_k)
        try:
            sampling = self.settings.sampling.merged(temperature=temperature, max_new_tokens=max_new_tokens,
                                                     drafts=drafts, guidance=guidance)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        return {"model": model, "top_k": max(1, min(k, MAX_TOP_K)), "temperature": sampling.temperature,
                "max_new_tokens": sampling.max_new_tokens, "drafts": sampling.drafts, "guidance": sampling.guidance}

    def _previous(self, session_id: str) -> tuple[ParsedRequest | None, dict[str, Any] | None]:
        """The session's last review or opinion request, and that reply's stored metadata."""
        for message in reversed(self.memory.recent(session_id, self.settings.history_messages)):
            if not isinstance(message, AIMessage):
                continue
            meta = message.additional_kwargs or {}
            request = ParsedRequest.from_dict(meta.get("request"))
            if request is not None and request.kind in ("review", "opinion"):
                return request, meta
        return None, None

    def _prepare(self, session_id: str, text: str, seed: int | None) -> _Turn:
        check_session_id(session_id)
        started = time.perf_counter()
        previous, meta = self._previous(session_id)
        parsed = parse(text, self.titles, previous, max_chars=self.settings.max_message_chars,
                       min_score=self.settings.fuzzy_min_score)
        notes: list[str] = []
        if parsed.truncated and parsed.text:
            notes.append(f"Your message was long ({parsed.original_chars:,} characters); I read the first "
                         f"{len(parsed.text):,}.")
        if parsed.movie_key and parsed.movie_query and (parsed.fuzzy_score or 0) < 100 \
                and parsed.followup not in ("carried", "another", "sentiment", "tone", "flip"):
            notes.append(f"I took \u201c{safe_phrase(parsed.movie_query)}\u201d to mean {parsed.movie}.")
        if parsed.kind == "review":
            self._resolve_sentiment(parsed, notes)
        seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        return _Turn(session_id, parsed, previous, meta, notes, started, seed)

    def _resolve_sentiment(self, parsed: ParsedRequest, notes: list[str]) -> None:
        """No sentiment asked for: side with the critics in the data, else write a positive one; say so."""
        if parsed.sentiment:
            return
        if parsed.movie_key and self.store is not None:
            counts = review_counts(self.store, parsed.movie_key)
            fresh, rotten = counts["positive"], counts["negative"]
            if fresh + rotten:
                parsed.sentiment = "positive" if fresh >= rotten else "negative"
                parsed.sentiment_from = "data"
                notes.append(f"You didn't say positive or negative: {fresh} of {fresh + rotten} critics in the data "
                             f"liked {parsed.movie}, so this review is {parsed.sentiment}. Ask for a "
                             f"{other_sentiment(parsed.sentiment)} one for the other side.")
                return
        parsed.sentiment, parsed.sentiment_from = "positive", "default"
        notes.append("You didn't say positive or negative, so this review is positive; ask for a negative one for "
                     "the other side.")

    def _answer(self, turn: _Turn, *, rag: bool, model: str, top_k: int, temperature: float,
                max_new_tokens: int, drafts: int = 1, guidance: float = 1.0) -> Iterator[str | Reply]:
        kind = turn.parsed.kind
        if kind == "review":
            yield from self._review(turn, rag=rag, model=model, top_k=top_k, temperature=temperature,
                                    max_new_tokens=max_new_tokens, drafts=drafts, guidance=guidance)
            return
        if kind == "opinion":
            reply = self._opinion(turn)
        elif kind == "why":
            reply = self._why(turn)
        elif kind == "smalltalk":
            reply = self._finish(turn, smalltalk_text(turn.parsed.text, self), mode="chat")
        elif kind == "help":
            reply = self._finish(turn, self.help_text(rag, turn.parsed), mode="chat")
        else:
            reply = self._finish(turn, empty_text(turn.parsed), mode="chat")
        yield reply.text
        yield reply

    def _finish(self, turn: _Turn, text: str, **fields: Any) -> Reply:
        total = time.perf_counter() - turn.started
        timings = {"retrieval_s": 0.0, "first_token_s": total, "total_s": total}
        timings.update(fields.pop("timings", {}))
        return Reply(text=text, request=turn.parsed, notes=turn.notes, timings=timings, seed=turn.seed,
                     session_id=turn.session_id, **fields)

    def _review(self, turn: _Turn, *, rag: bool, model: str, top_k: int, temperature: float,
                max_new_tokens: int, drafts: int = 1, guidance: float = 1.0) -> Iterator[str | Reply]:
        parsed, notes = turn.parsed, turn.notes
        name, generator, model_notes = self._pick_model(model)
        notes.extend(model_notes)
        if generator is None:
            text = ("I can't write reviews right now: no language model could be loaded. Train one with: "
                    f"{FINETUNE_HINT}")
            reply = self._finish(turn, text, mode="chat")
            yield reply.text
            yield reply
            return
        if parsed.movie and not parsed.movie_key and self.store is not None:
            close = f"; close titles: {', '.join(parsed.suggestions)}" if parsed.suggestions else ""
            notes.append(f"\u201c{parsed.movie}\u201d is not in the review data{close}.")
        retrieval = None
        if rag and not self._ensure_embeddings():
            notes.append(f"Retrieval is unavailable ({self.store_error}), so this review was written without "
                         f"context.")
        elif rag:
            exclude = [s.get("doc_id") for s in (turn.previous_meta or {}).get("sources") or []
                       if parsed.followup == "another"]
            try:
                retrieval = retrieve(
                    self.store, sentiment=parsed.sentiment, movie=parsed.movie, movie_key=parsed.movie_key,
                    topic=parsed.topic, tone=parsed.tone, k=top_k, exclude_ids=[d for d in exclude if d],
                    mmr=self.settings.mmr, fetch_k=self.settings.mmr_fetch_k, lambda_mult=self.settings.mmr_lambda,
                    min_similarity=self.settings.min_similarity, facts=self.settings.context_facts)
                notes.extend(retrieval.notes)
            except Exception as exc:  # a failed lookup costs the context, not the reply
                log.exception("retrieval failed")
                notes.append(f"Retrieval failed ({type(exc).__name__}: {exc}), so this review was written without "
                             f"context.")
        context = retrieval.context_items() if retrieval is not None else []
        request = ReviewRequest(parsed.sentiment, parsed.movie, parsed.topic, context)
        fitted = generator.fit(request, max_new_tokens)
        window, new_tokens = fitted.window, fitted.max_new_tokens
        kept = len(fitted.request.context)
        sources = [self._titled(s) for s in retrieval.sources[:kept]] if retrieval is not None else []
        if fitted.dropped:
            notes.append(f"{fitted.dropped} of {len(context)} retrieved documents did not fit "
                         f"the model's {window:,}-token window and were left out.")
        prompt = fitted.text
        why = why_single(drafts, probe=self.probe, store=self.store, embeddings_ready=self._ensure_embeddings,
                         temperature=temperature, store_error=self.store_error)
        if drafts > 1 and why is None:
            text, first_token, drafted = yield from self._drafts(turn, name, generator, fitted, drafts=drafts,
                                                                 temperature=temperature, max_new_tokens=new_tokens,
                                                                 guidance=guidance)
        else:
            text, first_token = yield from self._stream_draft(turn, name, generator, fitted, temperature=temperature,
                                                              max_new_tokens=new_tokens, guidance=guidance)
            drafted = fallback_record(drafts, why) if why else None
            if why:
                notes.append(f"Wrote one draft instead of {drafts}: {why}.")
        if not text:
            notes.append("The model wrote nothing this time; ask for another.")
        yield self._finish(
            turn, text, mode="rag" if retrieval is not None else "no_rag", model=name, sources=sources,
            prompt=prompt, prompt_tokens=fitted.tokens, max_new_tokens=new_tokens,
            window=window, model_name=self._slots[name].info.get("name"), drafts=drafted, guidance=guidance,
            timings={"retrieval_s": retrieval.seconds if retrieval is not None else 0.0,
                     "first_token_s": first_token, "total_s": time.perf_counter() - turn.started})

    def _stream_draft(self, turn: _Turn, name: str, generator: ReviewGenerator, fitted: FittedPrompt, *,
                      temperature: float, max_new_tokens: int,
                      guidance: float = 1.0) -> Generator[str, None, tuple[str, float | None]]:
        """One draft, yielded as it is written; returns (text, first_token_s)."""
        pieces: list[str] = []
        first_token = None
        with self._slots[name].lock:
            for raw in generator.stream(fitted, temperature=temperature, max_new_tokens=max_new_tokens,
                                        seed=turn.seed, guidance=guidance):
                piece = printable(raw)
                if not piece:
                    continue
                if first_token is None:
                    first_token = time.perf_counter() - turn.started
                pieces.append(piece)
                yield piece
        return "".join(pieces).strip(), first_token

    def _drafts(self, turn: _Turn, name: str, generator: ReviewGenerator, fitted: FittedPrompt, *, drafts: int,
                temperature: float, max_new_tokens: int, guidance: float = 1.0
                ) -> Generator[str, None, tuple[str, float | None, dict[str, Any]]]:
        """`drafts` drafts in one batch, ranked by the probe; yields the chosen one whole, once it is known
        (a draft streamed live might be the one thrown away). Returns (text, first_token_s, drafts record)."""
        scorer = probe_scorer(self.probe, self.store.embeddings)
        score_s, failure = 0.0, None

        def timed_scorer(texts: list[str]) -> list[float]:
            nonlocal score_s, failure
            started = time.perf_counter()
            try:
                return scorer([printable(t) for t in texts])
            except Exception as exc:  # the drafts are written by now: a failed ranking keeps the first, not none
                log.exception("scoring the drafts failed")
                failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                return [0.5] * len(texts)
            finally:
                score_s += time.perf_counter() - started

        started = time.perf_counter()
        with self._slots[name].lock:
            result = generator.best_of(fitted, timed_scorer, n=drafts, temperature=temperature,
                                       max_new_tokens=max_new_tokens, seed=turn.seed, guidance=guidance)
        drafted = record(result, generate_s=time.perf_counter() - started - score_s, score_s=score_s)
        if failure:
            drafted.update(scorer=None, on_target=[], why=f"scoring failed ({failure})")
            turn.notes.append(f"The {drafted['n']} drafts could not be ranked ({failure}); this is the first one "
                              "the model wrote.")
        log.info("drafts: chose %d of %d, on-target scores %s", result.chosen + 1, drafts, drafted["on_target"])
        text = printable(result.text).strip()
        first_token = None
        if text:
            first_token = time.perf_counter() - turn.started
            yield text
        return text, first_token, drafted

    def _titled(self, source: Source) -> Source:
        """The store's display title for a source (one pull of the data lower-cased its titles)."""
        title = self.titles.title(source.movie_key) if self.titles is not None and source.movie_key else None
        return replace(source, movie=title) if title else source

    def _opinion(self, turn: _Turn) -> Reply:
        parsed = turn.parsed
        if self.store is None:
            return self._finish(turn, f"I can't look up what critics said without the review store; build it "
                                      f"with: {INGEST_HINT}", mode="chat")
        if not parsed.movie:
            example = (self.titles.popular(1) if self.titles is not None else []) or ["Toy Story"]
            return self._finish(turn, f"Which movie? For example: what do critics think of {example[0]}?",
                                mode="chat")
        if not parsed.movie_key:
            movies = len(self.titles) if self.titles is not None else 0
            return self._finish(turn, unknown_movie_text(parsed.movie, parsed.suggestions, movies), mode="data",
                                opinion={"movie": parsed.movie, "found": False, "suggestions": parsed.suggestions})
        started = time.perf_counter()
        opinion = critics_opinion(self.store, parsed.movie_key, parsed.movie)
        sources = [Source(movie=parsed.movie, movie_key=parsed.movie_key, critic=q.get("critic"),
                          publication=q.get("publication"), sentiment=q["sentiment"], score=q.get("score"),
                          similarity=None, text=q["text"], doc_id=q.get("doc_id") or "",
                          top_critic=q.get("top_critic")) for q in opinion["quotes"]]
        return self._finish(turn, opinion_text(opinion, parsed.text), mode="data", sources=sources,
                            opinion={**opinion, "found": True},
                            timings={"retrieval_s": time.perf_counter() - started})

    def _why(self, turn: _Turn) -> Reply:
        meta = turn.previous_meta
        if not meta:
            return self._finish(turn, "There is nothing to explain yet: ask for a review first, for example "
                                      "\u201cWrite a positive review of Toy Story\u201d.", mode="chat")
        request = turn.previous or ParsedRequest(kind="review")
        sources = [Source.from_dict(s) for s in meta.get("sources") or []]
        about = f" of {request.movie}" if request.movie else ""
        mode, model = meta.get("mode"), meta.get("model")
        lines: list[str] = []
        if mode == "data":
            lines.append(f"Those figures{about} come straight from the review data: fresh and rotten reviews "
                         "counted in the store, the consensus from the movie's record, and quotes chosen as the most "
                         "typical of each side (nearest the average of their embeddings). No language model "
                         "was involved.")
        elif mode == "rag":
            lines.append(f"That {request.sentiment or ''} review{about} was written by the {model} model with "
                         f"{len(sources)} retrieved document(s) in its context (RAG on):")
            lines += [f"{i}. {source_line(s.to_dict())}" for i, s in enumerate(sources, 1)]
            lines.append("The model may borrow facts and phrasing from these; it is small and can still get "
                         "things wrong.")
        elif mode == "no_rag":
            lines.append(f"That {request.sentiment or ''} review{about} came from the {model} model alone: "
                         "retrieval was off, so nothing grounds it. Ask again with RAG on (or compare) to see "
                         "which reviews it would draw on.")
        else:
            lines.append("My last answer was not a generated review, so there is nothing behind it to show.")
        chose = describe(meta.get("drafts"), request.sentiment)
        if chose and mode in ("rag", "no_rag"):
            lines.append(f"It is one of {meta['drafts']['n']} drafts written at once: I {chose}, the one the "
                         f"{meta['drafts']['scorer']} read as most {request.sentiment}.")
        guidance = float(meta.get("guidance") or 1.0)
        if guidance > 1.0 and mode in ("rag", "no_rag") and request.sentiment:
            lines.append(f"Each word was steered away from what a {other_sentiment(request.sentiment)} review of "
                         f"the same request would say (sentiment guidance {guidance:g}).")
        if request.sentiment_from == "data":
            lines.append(f"It was {request.sentiment} because most critics in the data felt that way about "
                         f"{request.movie}.")
        elif request.sentiment_from == "default":
            lines.append("It was positive because you did not ask for a side.")
        return self._finish(turn, "\n".join(lines), mode="chat", sources=sources)

    def _remember(self, turn: _Turn, reply: Reply, compare: Reply | None = None) -> None:
        if turn.parsed.kind == "empty":
            return  # nothing worth keeping, and junk stays out of the history
        meta = reply.memory_meta()
        if compare is not None and compare is not reply:
            meta["compare"] = {"no_rag": {"text": compare.text, **compare.memory_meta()}}
        self.memory.add_turn(turn.session_id, turn.parsed.text, reply.text, meta)

    # -- canned texts ------------------------------------------------------------------------------
    def help_text(self, rag: bool = True, parsed: ParsedRequest | None = None) -> str:
        titles = (self.titles.popular(3) if self.titles is not None else []) + ["Toy Story", "The Matrix", "Gigli"]
        a, b, c = titles[0], titles[1], titles[2]
        lines = []
        if parsed is not None and not parsed.understood:
            lines.append("I didn't catch a request in that.")
            if parsed.suggestions:
                lines.append(f"If you meant a movie, close titles in the data: {', '.join(parsed.suggestions)}.")
            lines.append("")
        lines += [
            "I write short movie reviews, positive or negative, and tell you what critics in the data thought.",
            "Try:",
            f"- Write a positive review of {a}",
            f"- Give me a scathing one for {b}",
            "- A rave about a horror movie",
            f"- then: now a negative one / another / same movie but harsher / what about {c}?",
            f"- What do critics think of {b}?  or  Is {a} fresh?",
            "- why?  (what the last review was based on)",
        ]
        if not self.rag_available:
            lines.append(f"Retrieval is unavailable ({self.store_error}).")
        elif rag:
            reviews = self.store.manifest.counts.get("reviews", 0)
            lines.append(f"Retrieval (RAG) is on: reviews are first looked up among {reviews:,} critics' reviews "
                         "and shown as sources; turn it off to see the model alone.")
        else:
            lines.append("Retrieval (RAG) is off: the model writes alone; turn it on to ground it in real reviews.")
        return "\n".join(lines)


def _embeddings_loader(settings: Settings) -> Callable[[], Any]:
    def load() -> Any:
        from assistant.data.embeddings import make_embeddings

        return make_embeddings(settings)

    return load


_UNPRINTABLE = re.compile(r"[\ufffd\x00-\x08\x0b-\x1f\x7f]")


def printable(text: str) -> str:
    """Generated text without broken bytes or control characters (small models emit partial UTF-8)."""
    return _UNPRINTABLE.sub("", text)


_SMALLTALK = [
    (re.compile(r"^(?:thanks?|thank you|thx|ty|cheers)", re.I),
     "You're welcome! Ask for another review, or what critics thought of a movie, whenever you like."),
    (re.compile(r"^(?:bye|goodbye|see (?:you|ya)|good night)", re.I),
     "Bye! This conversation is saved; pick it up again any time."),
    (re.compile(r"^(?:how are you|how'?s it going|what'?s up|sup)\b", re.I),
     "All good, and ready to write. Which movie shall I review?"),
    (re.compile(r"^(?:ok(?:ay)?|k|cool|great|nice|awesome|lol|haha+|good (?:job|bot)|well done|(?:that|this) "
                r"(?:is|was))\b", re.I),
     "Glad to help. Ask for another one, the other side, or a different movie."),
]


def smalltalk_text(text: str, assistant: Assistant) -> str:
    example = ((assistant.titles.popular(1) if assistant.titles is not None else []) or ["Toy Story"])[0]
    hint = (f"Try \u201cWrite a positive review of {example}\u201d or \u201cWhat do critics think of "
            f"{example}?\u201d; say help for more.")
    for pattern, answer in _SMALLTALK:
        if pattern.search(text):
            return answer
    if re.search(r"^(?:who|what) are you|^are you|^who made you", text, re.I):
        kind = ("a small language model fine-tuned on critics' reviews" if "tuned" in assistant.models_available()
                else "a small pretrained language model (not fine-tuned yet)")
        reviews = assistant.store.manifest.counts.get("reviews", 0) if assistant.store is not None else 0
        data = f", plus a search over {reviews:,} Rotten Tomatoes critics' reviews" if reviews else ""
        return f"I'm a movie-review assistant: {kind}{data}. {hint}"
    return f"Hi! I write positive or negative movie reviews and can tell you what critics thought. {hint}"


def empty_text(parsed: ParsedRequest) -> str:
    if parsed.understood:
        return "Say something: for example \u201cWrite a positive review of Toy Story\u201d, or help."
    return ("I couldn't read that message (it looks like markup or binary data, with no words in it). "
            "Try plain text, for example \u201cWrite a positive review of Toy Story\u201d.")
