"""What `Assistant.load` finds on disk: the store, the tuned model (or the server that serves it), the base
model's loader, what ranks the drafts (the probe, the critic scorer, the store's words), and a warning for
everything missing."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.chat.replies import FINETUNE_HINT
from assistant.model.generation import ReviewGenerator, chat_generator
from assistant.settings import Settings

log = logging.getLogger(__name__)


def load_parts(settings: Settings, embeddings: Any = None) -> dict[str, Any]:
    """Keyword arguments for `Assistant(settings, **parts)`."""
    from assistant.chat.draft_words import DraftWords
    from assistant.data.garbled import vocabulary_cache
    from assistant.data.store import ReviewStore, StoreError
    from assistant.model.bases import load_base, tuned_dir
    from assistant.model.critic_scorer import CriticScorer
    from assistant.model.sentiment_probe import SentimentProbe

    warnings: list[str] = []
    store, store_error = None, None
    try:
        store = ReviewStore.open(settings, embeddings)
    except StoreError as exc:
        store_error = str(exc)
        warnings.append(f"Retrieval unavailable: {exc}")

    generators: dict[str, ReviewGenerator | None] = {"tuned": None, "base": None}
    info: dict[str, dict[str, Any]] = {}
    llms: dict[str, tuple[Any, Any]] = {}
    base_name = settings.base_model
    remote = _remote(settings, tuned_dir(settings), warnings) if settings.llm_endpoint else None
    if remote is not None:
        llms["tuned"], info["tuned"] = remote[:2], {"kind": "tuned", "origin": "own", **remote[2]}
        tuned = None
    else:
        tuned = _tuned(settings, warnings)
    probe_dir = tuned_dir(settings)
    if tuned is not None:
        model, tokenizer, card, origin, folder = tuned
        generators["tuned"] = chat_generator(model, tokenizer, settings)
        base_name = card.get("base") or base_name
        label = {"lora": " + LoRA", "full": ", fully fine-tuned"}.get(card.get("method") or "", " fine-tuned")
        info["tuned"] = {"kind": "tuned", "name": f"{card.get('base') or 'unknown base'}{label}",
                         "origin": origin, "base": card.get("base"), "method": card.get("method"),
                         "path": str(folder), "train_minutes": card.get("train_minutes")}
        probe_dir = folder

    def load_base_generator() -> tuple[ReviewGenerator, dict[str, Any]]:
        model, tokenizer, base_info = load_base(base_name, settings)
        return chat_generator(model, tokenizer, settings), {"kind": "base", "name": base_info.name,
                                                           "source": base_info.source, "base": base_info.name}

    info["base"] = {"kind": "base", "name": base_name, "base": base_name}
    return {"store": store, "store_error": store_error, "generators": generators, "llms": llms,
            "loaders": {"base": load_base_generator}, "warnings": warnings, "model_info": info,
            "embeddings_loader": None if embeddings is not None else _embeddings_loader(settings),
            # A property of the data, not of the model: it ranks the base model's drafts too.
            "probe": SentimentProbe.find(probe_dir),
            # Shipped with the code; it ranks the drafts the probe reads clearly as asked (assistant/model/drafts.py)
            "critic_scorer": CriticScorer.shipped(),
            # Among those, drafts without a made-up word first: the store's vocabulary, counted in the background
            "draft_words": DraftWords.counting(store, vocabulary_cache(store)) if store is not None else None}


def _tuned(settings: Settings, warnings: list[str]) -> tuple[Any, Any, dict[str, Any], str, Path] | None:
    """(model, tokenizer, card, origin, folder) of the fine-tuned model that answers as 'tuned': the user's own
    ("own") unless `settings.tuned_model` asks for the shipped one or there is none, else the shipped adapter
    merged into its base ("shipped"); None when neither can be had, with one warning line saying why."""
    from assistant.model.bases import load_tuned, tuned_dir
    from assistant.model.shipped import ShippedAdapterError, shipped_dir
    from assistant.model.shipped.adapter import load_shipped

    own_problem = ""
    if settings.tuned_model == "own":
        try:
            own = load_tuned(settings)
        except Exception as exc:  # a damaged model folder degrades to the shipped model, else the base
            own, own_problem = None, (f"your fine-tuned model in {tuned_dir(settings)} could not be loaded "
                                      f"({str(exc).splitlines()[0]})")
        if own is not None:
            return (*own, "own", tuned_dir(settings))
    try:
        model, tokenizer, card = load_shipped(settings)
    except (ShippedAdapterError, OSError) as exc:
        shipped_problem = str(exc).splitlines()[0]
    else:
        if own_problem:
            warnings.append(f"{own_problem[0].upper()}{own_problem[1:]}; the shipped fine-tuned model answers "
                            f"instead (retrain yours with: {FINETUNE_HINT})")
        return model, tokenizer, card, "shipped", shipped_dir()
    own_part = own_problem or (f"none trained in {tuned_dir(settings)}" if settings.tuned_model == "own"
                               else "tuned_model is 'shipped', so yours is not used")
    warnings.append(f"No fine-tuned model: the shipped one is unusable ({shipped_problem})"
                    + (f" and {own_part}" if own_part else "")
                    + f"; replies come from the base model until you train one with: {FINETUNE_HINT}")
    return None


def _remote(settings: Settings, model_dir: Any, warnings: list[str]) -> tuple[Any, Any, dict[str, Any]] | None:
    """(LLM, prompt, info) for the server in MRA_LLM_ENDPOINT, reading the served model's tokenizer from the
    tuned model's folder; None, with a warning, when that folder has no tokenizer."""
    from assistant.model.llm import ReviewPrompt
    from assistant.model.remote import load_remote

    try:
        llm, info = load_remote(settings, model_dir)
    except Exception as exc:  # no tokenizer to fit prompts with: the local model answers instead
        warnings.append(f"MRA_LLM_ENDPOINT is set, but the served model's tokenizer could not be read from "
                        f"{model_dir} ({str(exc).splitlines()[0]}); the local model answers instead.")
        return None
    prompt = ReviewPrompt(tokenizer=llm.tokenizer, window=llm.window, max_new_tokens=settings.sampling.max_new_tokens)
    log.info("reviews are written by %s", info["name"])
    return llm, prompt, info


def _embeddings_loader(settings: Settings) -> Callable[[], Any]:
    def load() -> Any:
        from assistant.data.embeddings import make_embeddings

        return make_embeddings(settings)

    return load


def warm_up_chat(assistant: Any, model: str | None = None) -> float:
    """Ready everything a first review request touches, so the first person to ask does not wait for it: the
    default model (loaded and warmed up), the embedding model, the store's facts and the chat graph. Without
    this the first request took 3-5 s more than the rest (bench/latency.md). One request through the unsaved
    graph writing a single token, about a well-known movie; nothing is remembered. Returns the seconds it took;
    a failure is logged, never raised (the chat then warms up on its first real request instead)."""
    started = time.perf_counter()
    model = model or assistant.settings.default_model
    try:
        titles = assistant.titles.popular(1) if assistant.titles is not None else []
        message = f"Write a positive review of {titles[0] if titles else 'Toy Story'}"
        for _ in assistant.stream("warm-up", message, rag=assistant.rag_available, model=model, max_new_tokens=1,
                                  seed=0, remember=False):
            pass
    except Exception as exc:  # noqa: BLE001 - a warm-up must not stop the app from starting
        log.warning("chat warm-up failed (%s: %s); the first request will be slower", type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "")
    seconds = time.perf_counter() - started
    log.info("chat warmed up in %.1f s", seconds)
    return seconds
