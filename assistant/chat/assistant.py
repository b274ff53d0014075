"""The assistant: the chat graph with its models, store and memory, behind a few calls.

    asst = Assistant.load(settings)
    reply = asst.reply("s1", "Write a positive review of Toy Story", rag=True)
    for event in asst.stream("s1", "now a negative one"): ...   # str tokens, then the Reply
    both = asst.compare("s1", "another")                         # {"rag": Reply, "no_rag": Reply}
    chain = asst.review_chain("tuned")                           # the LCEL review chain of one model
    asst.graph                                                   # the LangGraph chat, thread id = session id

Every session has an owner (`owner=`: a browser's token, or "cli"); another owner's session cannot be
read or continued. Each reply says plainly which model wrote it, what it was given, and every fallback
taken on the way.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationError

from assistant.chat.draft_words import DraftWords
from assistant.chat.graph import HISTORY_MESSAGES, build_graph, read_message
from assistant.chat.intent import ParsedRequest
from assistant.chat.memory import CLI_OWNER, ChatMemory, check_owner, check_session_id
from assistant.chat.replies import FINETUNE_HINT, INGEST_HINT, Reply
from assistant.chat.retrieval import ReviewRetrieval, Source
from assistant.chat.review_chain import build_review_chain
from assistant.chat.router import build_router
from assistant.data.titles import TitleIndex
from assistant.model.compute_thread import compute
from assistant.model.generation import ReviewGenerator
from assistant.model.llm import ReviewLLM, ReviewPrompt, stop_sequences
from assistant.model.rules import ReplyRules
from assistant.settings import Settings, get_settings

__all__ = ["Assistant", "AssistantError", "ParsedRequest", "Reply", "Source"]

log = logging.getLogger(__name__)

MODELS: tuple[str, ...] = ("tuned", "base")
MAX_TOP_K = 20


class AssistantError(RuntimeError):
    """Nothing to answer with (no store and no model); the message is one line naming the command to run."""


@dataclass
class _Slot:
    """One language model: its generator (or a remote LLM), loaded now or on first use, and its review chain."""

    generator: ReviewGenerator | None = None
    loader: Callable[[], tuple[ReviewGenerator, dict[str, Any]]] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    llm: Any = None  # ReviewLLM over the generator, or RemoteReviewLLM
    prompt: Any = None
    chain: Any = None


def _generator_info(generator: ReviewGenerator, kind: str) -> dict[str, Any]:
    model = generator.model
    name = getattr(model.config, "_name_or_path", "") or model.config.model_type
    return {"kind": kind, "name": str(name), "params": generator.params,
            "device": generator.device}


class Assistant:
    """Parses, retrieves, generates and remembers. Thread-safe; one instance serves every session."""

    def __init__(self, settings: Settings | None = None, *, store: Any = None,
                 generators: dict[str, ReviewGenerator | None] | None = None, memory: ChatMemory | None = None,
                 loaders: dict[str, Callable[[], tuple[ReviewGenerator, dict[str, Any]]]] | None = None,
                 titles: TitleIndex | None = None, warnings: list[str] | None = None,
                 model_info: dict[str, dict[str, Any]] | None = None, store_error: str | None = None,
                 embeddings_loader: Callable[[], Any] | None = None, probe: Any = None,
                 critic_scorer: Any = None, llms: dict[str, tuple[Any, Any]] | None = None,
                 draft_words: DraftWords | None = None) -> None:
        """`llms`: a model served otherwise than by a local generator, as (LLM, prompt template) per name;
        `draft_words`: the word check the drafts are ranked with (none by default)."""
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
            llm, prompt = (llms or {}).get(name) or (None, None)
            self._slots[name] = _Slot(generator=generator, loader=(loaders or {}).get(name), info=info, llm=llm,
                                      prompt=prompt)
        self._load_lock = threading.Lock()
        self._embeddings_loader = embeddings_loader  # the embedding model loads on the first retrieval
        self.probe = probe  # sentiment_probe.SentimentProbe that ranks drafts; None: one draft, streamed
        self.critic_scorer = critic_scorer  # critic_scorer.CriticScorer: among clear drafts, the most critic-like
        # among clear drafts, those without a made-up word first; without one (load() counts the store's), unchecked
        self.draft_words = draft_words if draft_words is not None else DraftWords()
        self.router = build_router(self)
        self.graph = build_graph(self, self.router, memory=self.memory)
        self._unsaved_graph = build_graph(self, self.router)  # remember=False: reads the session, keeps nothing

    @classmethod
    def load(cls, settings: Settings | None = None, *, strict: bool = False, embeddings: Any = None) -> Assistant:
        """Store and model(s), once. Missing pieces degrade the assistant (and are listed in `warnings`);
        AssistantError only when there is nothing to answer with, or with `strict` when anything is missing."""
        from assistant.chat.loading import load_parts

        settings = settings or get_settings()
        parts = compute.run(load_parts, settings, embeddings)  # see compute_thread.py: one OpenMP team
        assistant = cls(settings, **parts)
        warnings = assistant.warnings
        if not assistant._slots["tuned"].generator and not assistant._slots["tuned"].llm:
            assistant.generator("base")  # the only model there is: load it now, not on the first message
            if assistant._slots["base"].error:
                warnings.append(f"No language model either: {assistant._slots['base'].error}")
        if assistant.store is None and not assistant.models_available(loaded=True):
            raise AssistantError(f"Nothing to answer with: no review store (build it with: {INGEST_HINT}) and "
                                 f"no language model (train one with: {FINETUNE_HINT})")
        if strict and warnings:
            raise AssistantError(warnings[0])
        for warning in warnings:
            log.warning("%s", warning)
        return assistant

    # -- models ------------------------------------------------------------------------------------------------
    def generator(self, name: str) -> ReviewGenerator | None:
        """The named model's generator, loading it on first use; None when it cannot be had."""
        slot = self._slots[name]
        if slot.generator is None and slot.loader is not None and slot.error is None:
            with self._load_lock:
                if slot.generator is None and slot.error is None:
                    started = time.perf_counter()
                    try:
                        slot.generator, extra = compute.run(slot.loader)
                        slot.info = {**slot.info, **_generator_info(slot.generator, name), **extra}
                        log.info("loaded the %s model %s in %.1f s", name, slot.info.get("name"),
                                 time.perf_counter() - started)
                    except Exception as exc:  # any load failure means "not available", said once
                        slot.error = f"the {name} model could not be loaded: {str(exc).splitlines()[0]}"
                        log.warning("%s", slot.error)
        return slot.generator

    def llm(self, name: str) -> Any:
        """The named model as a LangChain LLM (ReviewLLM over its generator, or the remote one); None if none."""
        slot = self._slots[name]
        if slot.llm is None and self.generator(name) is not None:
            with self._load_lock:
                if slot.llm is None:
                    slot.prompt = ReviewPrompt.for_generator(slot.generator,
                                                             max_new_tokens=self.settings.sampling.max_new_tokens)
                    rules = ReplyRules.from_sampling(slot.generator.tokenizer, self.settings.sampling,
                                                     vocab_size=slot.generator.vocab_size,
                                                     device=slot.generator.device, films=self.titles)
                    slot.llm = ReviewLLM.from_sampling(slot.generator, self.settings.sampling,
                                                       draft_scorer=self._score_drafts,
                                                       critic_scorer=self._critic_likeness, rules=rules,
                                                       word_check=self._garbled_drafts)
        return slot.llm

    def review_chain(self, name: str = "tuned") -> Any:
        """The model's LCEL review chain (retriever -> context -> prompt -> LLM -> parser); None without it."""
        slot = self._slots[name]
        llm = self.llm(name)
        if llm is None:
            return None
        if slot.chain is None:
            self.ensure_embeddings()
            retrieval = ReviewRetrieval(store=self.store, settings=self.settings, titles=self.titles, probe=self.probe)
            tokenizer = getattr(slot.prompt, "tokenizer", None)
            slot.chain = build_review_chain(llm, slot.prompt, retrieval,
                                            stop=stop_sequences(tokenizer) if tokenizer is not None else None)
        return slot.chain

    def _score_drafts(self, texts: list[str]) -> list[float]:
        """P(positive) per draft, read by the sentiment probe from the store's embeddings."""
        return self.probe.score_texts(texts, self.store.embeddings)

    def _critic_likeness(self, texts: list[str]) -> list[float] | None:
        """P(a critic wrote it) per draft, read by the shipped critic-likeness scorer (a second embedding pass of a
        few short drafts: milliseconds beside writing them); None without a scorer. ValueError when the store's
        embeddings are not the ones the scorer reads."""
        if self.critic_scorer is None:
            return None
        if not texts:
            return []
        if self.store is None or self.store.embeddings is None:
            raise ValueError("there is no embedding model to read the drafts with")
        vectors = np.asarray(self.store.embeddings.embed_documents([t or " " for t in texts]), dtype=np.float32)
        return self.critic_scorer.critic_probability(texts, vectors).tolist()

    def _garbled_drafts(self, texts: list[str], shown: list[str]) -> list[bool] | None:
        """The current word check's readings (a test may swap `draft_words`); None while it is not ready."""
        return self.draft_words.garbled(texts, shown)

    def pick_model(self, wanted: str) -> tuple[str | None, Any, Any, list[str]]:
        """(name, review chain, LLM, notes) for the model asked for, or the other one, saying so."""
        if wanted not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, not {wanted!r}")
        other = "base" if wanted == "tuned" else "tuned"
        if self.llm(wanted) is not None:
            return wanted, self.review_chain(wanted), self.llm(wanted), []
        if self.llm(other) is None:
            return None, None, None, []
        if wanted == "tuned":
            note = (f"There is no fine-tuned model yet (train it with: {FINETUNE_HINT}); this review is from the "
                    f"base model {self._slots['base'].info.get('name', '')}, before fine-tuning.")
        else:
            note = (f"The base model is not available ({self._slots['base'].error or 'not loaded'}); this review "
                    "is from the tuned model.")
        return other, self.review_chain(other), self.llm(other), [note]

    def model_name(self, name: str | None) -> str | None:
        return self._slots[name].info.get("name") if name in self._slots else None

    def tuned_origin(self) -> str | None:
        """Whose fine-tune answers as 'tuned': "shipped" (the repo's adapter) or "own" (the user's)."""
        return self._slots["tuned"].info.get("origin")

    def models_available(self, loaded: bool = False) -> list[str]:
        """Models that are loaded (or, unless `loaded`, can still be loaded on first use)."""
        return [n for n, s in self._slots.items() if s.generator is not None or s.llm is not None
                or (not loaded and s.loader is not None and s.error is None)]

    # -- retrieval ---------------------------------------------------------------------------------------------
    @property
    def rag_available(self) -> bool:
        return self.store is not None and (self.store.embeddings is not None or self._embeddings_loader is not None)

    def ensure_embeddings(self) -> bool:
        """Load the embedding model on first use; False when there is no store or it cannot be loaded."""
        if self.store is None:
            return False
        if self.store.embeddings is None and self._embeddings_loader is not None:
            with self._load_lock:
                if self.store.embeddings is None:
                    started = time.perf_counter()
                    try:
                        self.store.embeddings = compute.run(self._embeddings_loader)
                    except Exception as exc:  # no embedding model means no retrieval, said once
                        self._embeddings_loader = None
                        self.store_error = f"the embedding model could not be loaded: {str(exc).splitlines()[0]}"
                        log.warning("%s", self.store_error)
                    else:
                        log.info("loaded the embedding model in %.1f s", time.perf_counter() - started)
        return self.store.embeddings is not None

    def status(self) -> dict[str, Any]:
        models = {}
        for name, slot in self._slots.items():
            models[name] = {**slot.info, "kind": name, "loaded": slot.generator is not None or slot.llm is not None,
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

    # -- turns -------------------------------------------------------------------------------------------------
    def parse(self, text: str, session_id: str | None = None, *, owner: str = CLI_OWNER) -> ParsedRequest:
        """How a message would be read in a session (nothing generated, nothing stored)."""
        history = self.memory.recent(session_id, owner, HISTORY_MESSAGES) if session_id else []
        return read_message(self, text, history)[0]

    def reply(self, session_id: str, text: str, **options: Any) -> Reply:
        """The whole reply at once; options as for `stream`."""
        final = None
        for event in self.stream(session_id, text, **options):
            if isinstance(event, Reply):
                final = event
        assert final is not None  # stream always ends with its Reply
        return final

    def stream(self, session_id: str, text: str, *, owner: str = CLI_OWNER, rag: bool = True,
               remember: bool = True, **options: Any) -> Iterator[str | Reply]:
        """Yield the reply's text as it is written (str), then the finished Reply.

        Options: model ("tuned" | "base"), top_k, temperature, max_new_tokens, seed, drafts, guidance; left None
        they come from the settings. With `drafts` > 1 a review is written as that many drafts and only the
        chosen one is yielded, at once, when it is ready. `guidance` steers each token away from the opposite
        sentiment (assistant/model/guidance.py); 1 turns it off."""
        config = self._config(session_id, owner, rag=rag, compare=False, **options)
        final: dict[str, Any] = {}
        for kind, payload in self._run(session_id, owner, text, config, remember):
            if kind == "custom":
                yield payload["token"]
            else:
                final.update(payload)
        yield Reply.from_state(final["reply"])

    def compare(self, session_id: str, text: str, *, owner: str = CLI_OWNER, remember: bool = True,
                **options: Any) -> dict[str, Reply]:
        """The same message answered with and without retrieval: same reading, same model, same seed."""
        config = self._config(session_id, owner, rag=True, compare=True, **options)
        final: dict[str, Any] = {}
        for kind, payload in self._run(session_id, owner, text, config, remember):
            if kind != "custom":
                final.update(payload)
        with_rag = Reply.from_state(final["reply"])
        return {"rag": with_rag, "no_rag": Reply.from_state(final["compare"]) if final.get("compare") else with_rag}

    def _config(self, session_id: str, owner: str, *, rag: bool, compare: bool, model: str = "tuned",
                top_k: int | None = None, temperature: float | None = None, max_new_tokens: int | None = None,
                seed: int | None = None, drafts: int | None = None, guidance: float | None = None) -> dict[str, Any]:
        """The graph's config for one turn, checked: ValueError (one line) for a bad id or value."""
        check_session_id(session_id)
        check_owner(owner)
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, not {model!r}")
        k = self.settings.top_k if top_k is None else int(top_k)
        try:
            sampling = self.settings.sampling.merged(temperature=temperature, max_new_tokens=max_new_tokens,
                                                     drafts=drafts, guidance=guidance)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        return {"configurable": {
            "thread_id": session_id, "owner": owner, "rag": "on" if rag else "off", "model": model,
            "compare": compare, "top_k": max(1, min(k, MAX_TOP_K)), "seed": seed, "temperature": sampling.temperature,
            "max_new_tokens": sampling.max_new_tokens, "drafts": sampling.drafts, "guidance": sampling.guidance}}

    def _run(self, session_id: str, owner: str, text: str, config: dict[str, Any],
             remember: bool) -> Iterator[tuple[str, dict[str, Any]]]:
        """The graph's "custom" events (tokens) and state updates for one turn."""
        self.memory.check_access(session_id, owner)
        cancel = threading.Event()  # set when the reader stops early: the generation stops with it
        config = {**config, "configurable": {**config["configurable"], "cancel": cancel}}
        if remember:
            events = self.graph.stream({"message": text}, config, stream_mode=["custom", "updates"],
                                       durability="exit")
        else:
            history = self.memory.recent(session_id, owner, HISTORY_MESSAGES)
            events = self._unsaved_graph.stream({"message": text, "messages": history}, config,
                                                stream_mode=["custom", "updates"])
        try:
            for mode, event in events:
                if mode == "custom":
                    yield mode, event
                    continue
                for update in event.values():
                    yield mode, update or {}
        finally:
            cancel.set()
            events.close()
        if remember:
            self.memory.prune(session_id)  # the turn's own checkpoint is written last, after the graph's pruning

    def close(self) -> None:
        self.memory.close()
