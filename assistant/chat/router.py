"""The answer to one message: a router runnable (`RunnableBranch`) over what the message asks for.

    review    -> the model's review chain (review_chain.py), for the model asked for or the one there is
    opinion   -> the critics' opinion, counted from the data (opinion.py)
    why       -> what the last review was based on
    help, smalltalk, empty -> texts no model writes (replies.py)

Input: a `Turn`, the message as the chat graph's parse step read it with the request's options; sampling comes
in the config's `configurable`. Every branch streams `Chunk`s: "answer" is the reply's text as it is written, the
other keys say how it was made; `add_chunk` merges them and `to_reply` makes the merged whole the `Reply`.

The router is built over a context object (the `Assistant`): store, titles, settings, probe, and
`pick_model(name)` / `ensure_embeddings()`.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import (
    Runnable,
    RunnableBranch,
    RunnableConfig,
    RunnableLambda,
)
from langchain_core.runnables.config import merge_configs

from assistant.chat.intent import ParsedRequest
from assistant.chat.opinion import critics_opinion, opinion_text, unknown_movie_text
from assistant.chat.replies import (
    FINETUNE_HINT,
    INGEST_HINT,
    Reply,
    empty_text,
    help_text,
    smalltalk_text,
    why_text,
)
from assistant.chat.retrieval import Retrieval, Source
from assistant.model.drafts import fallback_record, why_single


@dataclass(frozen=True)
class Turn:
    """One message as the router takes it: the parse step's reading and the request's options."""

    kind: str  # the parsed request's kind: review | opinion | why | help | smalltalk | empty
    parsed: ParsedRequest
    previous: ParsedRequest | None  # the session's last review or opinion request
    previous_meta: dict[str, Any] | None  # that request's reply as remembered (its sources, ...)
    notes: list[str] = field(default_factory=list)  # the reading's notes, shown with the reply
    seed: int = 0
    started: float = 0.0  # perf_counter when the message arrived
    model: str = "tuned"  # the model asked for
    top_k: int = 4  # reviews to retrieve
    rag: bool = True  # retrieved reviews go into the prompt


class Chunk(TypedDict, total=False):
    """What a branch streams; a reply is the merge of its chunks (`add_chunk`)."""

    answer: str  # the reply's text as it is written: appended, piece by piece
    mode: str  # how it was made: "chat" (a fixed text) | "data" (counted) | "rag" | "no_rag" (the model)
    model: str | None  # which model wrote it
    notes: list[str]  # what the user should know about how
    sources: list[Source]  # the reviews it rests on
    opinion: dict[str, Any]  # the critics' opinion, counted (opinion.py)
    retrieval_s: float
    drafts: dict[str, Any] | None  # the draft record when one draft was written instead of several
    guidance: float  # the sentiment guidance scale asked of the model
    llm_info: dict[str, Any]  # what the model reported at the end (drafts ranked, notes)
    # the review chain's steps (review_chain.py): the request it passed through, then what it made of it
    sentiment: str | None
    movie: str | None
    movie_key: str | None
    topic: str | None
    tone: str | None
    k: int
    exclude_ids: list[str]
    retrieval: Retrieval
    context: list[Any]  # the retrieved documents formatted for the prompt
    prompt: Any  # the fitted prompt (a PromptValue with `.fitted`)


def add_chunk(out: Chunk, chunk: Chunk) -> str:
    """Merge one streamed chunk into `out`: the answer's text is appended, every other key replaced. Returns the
    text it added ("" for none)."""
    text = ""
    for key, value in chunk.items():
        if key == "answer":
            text = value or ""
            out["answer"] = out.get("answer", "") + text
        else:
            out[key] = value  # type: ignore[literal-required]  # the keys are Chunk's own
    return text


class LLMInfo(BaseCallbackHandler):
    """What the model reported about its generation (drafts ranked, notes), from `on_llm_end`."""

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        for generations in response.generations:
            for generation in generations:
                self.info.update(generation.generation_info or {})


def build_router(ctx: Any) -> Runnable:
    """The router runnable: one branch per kind of message, the review chain's branch last (the default)."""

    def kind_is(kind: str) -> Any:
        return lambda turn: turn.kind == kind

    def review(turn: Turn, config: RunnableConfig) -> Iterator[Chunk]:
        yield from review_answer(ctx, turn, config)  # a generator function, so the branch streams

    return RunnableBranch(
        (kind_is("opinion"), RunnableLambda(lambda turn: opinion_answer(ctx, turn), name="critics_opinion")),
        (kind_is("why"), RunnableLambda(lambda turn: why_answer(turn), name="why")),
        (kind_is("help"), RunnableLambda(lambda turn: help_answer(ctx, turn), name="help")),
        (kind_is("smalltalk"), RunnableLambda(lambda turn: smalltalk_answer(ctx, turn), name="smalltalk")),
        (kind_is("empty"), RunnableLambda(lambda turn: Chunk(answer=empty_text(turn.parsed), mode="chat"),
                                          name="empty")),
        RunnableLambda(review, name="review"),
    ).with_config(run_name="router")


# ---- the branches ------------------------------------------------------------------------------------------------

def opinion_answer(ctx: Any, turn: Turn) -> Chunk:
    parsed, store, titles = turn.parsed, ctx.store, ctx.titles
    if store is None:
        return {"answer": f"I can't look up what critics said without the review store; build it with: "
                          f"{INGEST_HINT}", "mode": "chat"}
    if not parsed.movie:
        example = (titles.popular(1) if titles is not None else []) or ["Toy Story"]
        return {"answer": f"Which movie? For example: what do critics think of {example[0]}?", "mode": "chat"}
    if not parsed.movie_key:
        movies = len(titles) if titles is not None else 0
        return {"answer": unknown_movie_text(parsed.movie, parsed.suggestions, movies), "mode": "data",
                "opinion": {"movie": parsed.movie, "found": False, "suggestions": parsed.suggestions}}
    started = time.perf_counter()
    opinion = critics_opinion(store, parsed.movie_key, parsed.movie)
    sources = [Source(movie=parsed.movie, movie_key=parsed.movie_key, critic=q.get("critic"),
                      publication=q.get("publication"), sentiment=q["sentiment"], score=q.get("score"),
                      similarity=None, text=q["text"], doc_id=q.get("doc_id") or "",
                      top_critic=q.get("top_critic")) for q in opinion["quotes"]]
    return {"answer": opinion_text(opinion, parsed.text), "mode": "data", "sources": sources,
            "opinion": {**opinion, "found": True}, "retrieval_s": time.perf_counter() - started}


def why_answer(turn: Turn) -> Chunk:
    text, sources = why_text(turn.previous, turn.previous_meta)
    return {"answer": text, "mode": "chat", "sources": sources}


def help_answer(ctx: Any, turn: Turn) -> Chunk:
    titles = ctx.titles.popular(3) if ctx.titles is not None else []
    reviews = ctx.store.manifest.counts.get("reviews", 0) if ctx.store is not None else 0
    return {"answer": help_text(titles=titles, parsed=turn.parsed, rag=turn.rag, reviews=reviews,
                                rag_error=None if ctx.rag_available else str(ctx.store_error)), "mode": "chat"}


def smalltalk_answer(ctx: Any, turn: Turn) -> Chunk:
    example = ((ctx.titles.popular(1) if ctx.titles is not None else []) or ["Toy Story"])[0]
    reviews = ctx.store.manifest.counts.get("reviews", 0) if ctx.store is not None else 0
    text = smalltalk_text(turn.parsed.text, example=example, tuned="tuned" in ctx.models_available(),
                          reviews=reviews)
    return {"answer": text, "mode": "chat"}


def review_answer(ctx: Any, turn: Turn, config: RunnableConfig) -> Iterator[Chunk]:
    """The review chain of the model asked for (or the one there is), streamed; first a chunk saying how."""
    parsed, notes = turn.parsed, []
    name, chain, llm, model_notes = ctx.pick_model(turn.model)
    notes.extend(model_notes)
    if chain is None:
        yield {"answer": "I can't write reviews right now: no language model could be loaded. Train one with: "
                         f"{FINETUNE_HINT}", "mode": "chat", "notes": notes}
        return
    if parsed.movie and not parsed.movie_key and ctx.store is not None:
        close = f"; close titles: {', '.join(parsed.suggestions)}" if parsed.suggestions else ""
        notes.append(f"\u201c{parsed.movie}\u201d is not in the review data{close}.")
    rag = turn.rag
    if rag and not ctx.ensure_embeddings():
        notes.append(f"Retrieval is unavailable ({ctx.store_error}), so this review was written without context.")
        rag = False
    sampling = dict(config.get("configurable") or {})
    drafts, guidance = int(sampling.get("drafts") or 1), float(sampling.get("guidance") or 1.0)
    drafted = None
    cannot = [what for what, asked in (("sentiment guidance", guidance > 1), ("drafts", drafts > 1)) if asked]
    if cannot and hasattr(llm, "unsupported"):  # a remote server: it writes one plain draft
        notes.append(f"The model is served by {llm.openai_api_base}, which cannot do {' or '.join(cannot)} (they "
                     "need the local model); this review was written without.")
        drafts, guidance = 1, 1.0
    else:
        why = why_single(drafts, probe=ctx.probe, store=ctx.store, embeddings_ready=ctx.ensure_embeddings,
                         temperature=float(sampling.get("temperature") or 0.0), store_error=ctx.store_error)
        if why:
            drafted = fallback_record(drafts, why)
            said = ((turn.previous_meta or {}).get("drafts") or {}).get("why")
            if said != why:  # not again on each review right after one that said it
                notes.append(f"Wrote one draft instead of {drafts}: {why}.")
            drafts = 1
    exclude = [s.get("doc_id") for s in (turn.previous_meta or {}).get("sources") or []
               if parsed.followup == "another"]
    ask = {"sentiment": parsed.sentiment, "movie": parsed.movie, "movie_key": parsed.movie_key,
           "topic": parsed.topic, "tone": parsed.tone, "k": turn.top_k, "exclude_ids": [d for d in exclude if d]}
    yield {"mode": "rag" if rag else "no_rag", "model": name, "notes": notes, "drafts": drafted,
           "guidance": guidance}
    recorder = LLMInfo()
    run = merge_configs(config, {"callbacks": [recorder], "configurable": {
        "rag": "on" if rag else "off", "seed": turn.seed, "drafts": drafts, "guidance": guidance}})
    yield from chain.stream(ask, run)
    yield {"llm_info": recorder.info}


# ---- the Reply ---------------------------------------------------------------------------------------------------

def to_reply(ctx: Any, turn: Turn, out: Chunk, *, session_id: str, started: float,
             first_token: float | None) -> Reply:
    """The router's merged output as the Reply: text, sources, the prompt as given, notes, timings."""
    notes = list(turn.notes) + list(out.get("notes") or [])
    fields: dict[str, Any] = {"mode": out.get("mode") or "chat", "model": out.get("model"),
                              "opinion": out.get("opinion"), "sources": list(out.get("sources") or [])}
    retrieval_s = float(out.get("retrieval_s") or 0.0)
    if "answer" in out and "prompt" in out:  # a review
        retrieval, value, info = out.get("retrieval"), out["prompt"], out.get("llm_info") or {}
        fitted = getattr(value, "fitted", None)
        if retrieval is not None:
            notes.extend(retrieval.notes)
            retrieval_s = retrieval.seconds
            if retrieval.failed:
                fields["mode"], retrieval = "no_rag", None
        kept = len(fitted.request.context) if fitted is not None else len(out.get("context") or [])
        if fitted is not None and fitted.dropped:
            notes.append(f"{fitted.dropped} of {len(out.get('context') or [])} retrieved documents did not fit "
                         f"the model's {fitted.window:,}-token window and were left out.")
        notes.extend(info.get("notes") or [])
        fields.update(
            sources=[titled(ctx, s) for s in retrieval.sources[:kept]] if retrieval is not None else [],
            prompt=value.to_string(), prompt_tokens=fitted.tokens if fitted else None,
            max_new_tokens=info.get("max_new_tokens") or (fitted.max_new_tokens if fitted else None),
            window=fitted.window if fitted else None, model_name=ctx.model_name(out.get("model")),
            tuned_origin=ctx.tuned_origin() if out.get("model") == "tuned" else None,
            drafts=info.get("drafts") or out.get("drafts"), guidance=info.get("guidance", out.get("guidance")))
    text = str(out.get("answer") or "").strip()
    if fields["model"] is not None and not text:
        notes.append("The model wrote nothing this time; ask for another.")
    total = time.perf_counter() - started
    first = first_token if fields["model"] is not None else total  # None: the model wrote nothing
    return Reply(text=text, request=turn.parsed, notes=notes, seed=turn.seed, session_id=session_id,
                 timings={"retrieval_s": retrieval_s, "first_token_s": first, "total_s": total}, **fields)


def titled(ctx: Any, source: Source) -> Source:
    """The store's display title for a source (one pull of the data lower-cased its titles)."""
    title = ctx.titles.title(source.movie_key) if ctx.titles is not None and source.movie_key else None
    return replace(source, movie=title) if title else source
