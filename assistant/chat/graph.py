"""The chat with memory: a LangGraph `StateGraph`, parse -> answer -> remember, checkpointed in SQLite.

    graph = build_graph(assistant, router, memory=memory)
    config = {"configurable": {"thread_id": "s1", "owner": "cli", "rag": "on", "model": "tuned"}}
    graph.invoke({"message": "Write a positive review of Toy Story"}, config)["reply"]      # Reply.to_state()
    for mode, event in graph.stream({"message": "now a negative one"}, config,
                                    stream_mode=["custom", "updates"], durability="exit"): ...

The thread id is the session id. `parse` reads the message against the session's last review or opinion request
(deterministically: intent.py), `answer` runs the router (router.py) and writes the reply's text to the
"custom" stream as it is written ({"token": ..., "reply": "reply" | "rag" | "no_rag"}), `remember` adds the
exchange to the session's messages, trims the oldest and records the session under its owner. `configurable`
carries the request's options: owner, rag ("on" | "off"), model, top_k, compare, and the sampling fields of the
review chain.
"""
from __future__ import annotations

import random
import threading
import time
import unicodedata
import uuid
from contextlib import closing
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    RemoveMessage,
    trim_messages,
)
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

from assistant.chat.intent import ParsedRequest, parse, safe_phrase
from assistant.chat.memory import CLI_OWNER, MemoryState, clip
from assistant.chat.opinion import review_counts
from assistant.chat.replies import Reply
from assistant.chat.router import to_reply
from assistant.model.prompts import other_sentiment


class Stopped(Exception):
    """The caller stopped reading, so the model stops writing."""


class StopWhenSet(BaseCallbackHandler):
    """Stops a generation at its next token once `event` is set (the reader went away): raising from a callback
    is how a LangChain run is interrupted from outside, whichever thread the model runs in."""

    raise_error = True

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        if self.event.is_set():
            raise Stopped


class ChatState(MemoryState, total=False):
    message: str  # this turn's message (the input)
    turn: dict[str, Any]  # parse's reading: parsed request, notes, seed, the previous request and its reply's meta
    reply: dict[str, Any]  # Reply.to_state()
    compare: dict[str, Any] | None  # the same message answered without retrieval, when comparing
    stored: int  # messages the session keeps after this turn


def previous_request(messages: list[AnyMessage]) -> tuple[ParsedRequest | None, dict[str, Any] | None]:
    """The last review or opinion request among these messages, and that reply's stored metadata."""
    for message in reversed(messages):
        if not isinstance(message, AIMessage):
            continue
        meta = message.additional_kwargs or {}
        request = ParsedRequest.from_dict(meta.get("request"))
        if request is not None and request.kind in ("review", "opinion"):
            return request, meta
    return None, None


def read_message(ctx: Any, text: str, messages: list[AnyMessage]) -> tuple[ParsedRequest, dict[str, Any] | None,
                                                                            ParsedRequest | None]:
    """(the message as read, the previous request's reply meta, the previous request)."""
    previous, meta = previous_request(messages[-ctx.settings.history_messages:])
    parsed = parse(text, ctx.titles, previous, max_chars=ctx.settings.max_message_chars,
                   min_score=ctx.settings.fuzzy_min_score)
    return parsed, meta, previous


def _resolve_sentiment(store: Any, parsed: ParsedRequest, notes: list[str]) -> None:
    """No sentiment asked for: side with the critics in the data, else write a positive one; say so."""
    if parsed.sentiment:
        return
    if parsed.movie_key and store is not None:
        counts = review_counts(store, parsed.movie_key)
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


def build_graph(ctx: Any, router: Runnable, *, memory: Any = None, checkpointer: Any = None) -> Any:
    """The compiled chat graph. With `memory` (a ChatMemory) it checkpoints there, keeps to the owner's sessions
    (`configurable` "owner", default the CLI's) and records each turn in the sessions list; another
    `checkpointer` keeps the messages only; with neither it remembers nothing (give it `messages` to read)."""

    def whose(config: RunnableConfig) -> tuple[str, str]:
        conf = config.get("configurable") or {}
        return str(conf.get("thread_id") or ""), str(conf.get("owner") or CLI_OWNER)

    def parse_step(state: ChatState, config: RunnableConfig) -> dict[str, Any]:
        started = time.perf_counter()
        if memory is not None:
            memory.check_access(*whose(config))  # another owner's session is not continued
        parsed, meta, previous = read_message(ctx, state["message"], state.get("messages") or [])
        notes: list[str] = []
        if parsed.truncated and parsed.text:
            notes.append(f"Your message was long ({parsed.original_chars:,} characters); I read the first "
                         f"{len(parsed.text):,}.")
        if parsed.movie_key and parsed.movie_query and (parsed.fuzzy_score or 0) < 100 \
                and parsed.followup not in ("carried", "another", "sentiment", "tone", "flip"):
            notes.append(f"I took \u201c{safe_phrase(parsed.movie_query)}\u201d to mean {parsed.movie}.")
        if parsed.kind == "review":
            _resolve_sentiment(ctx.store, parsed, notes)
        seed = (config.get("configurable") or {}).get("seed")
        seed = int(seed) if seed is not None else random.SystemRandom().randrange(2**31)
        return {"turn": {"parsed": parsed.to_dict(), "previous": previous.to_dict() if previous else None,
                         "previous_meta": meta, "notes": notes, "seed": seed, "started": started}}

    def answer_step(state: ChatState, config: RunnableConfig) -> dict[str, Any]:
        conf = config.get("configurable") or {}
        saved = state["turn"]
        turn = {**saved, "parsed": ParsedRequest.from_dict(saved["parsed"]),
                "previous": ParsedRequest.from_dict(saved["previous"]), "kind": saved["parsed"]["kind"],
                "model": conf.get("model") or ctx.settings.default_model,
                "top_k": int(conf.get("top_k") or ctx.settings.top_k)}
        session_id = str(conf.get("thread_id") or "")
        write = get_stream_writer()
        cancel = conf.get("cancel")  # a threading.Event the caller sets when it stops reading

        def answer(rag: bool, label: str, started: float) -> Reply:
            out: dict[str, Any] = {}
            first = None
            run = merge_configs(config, {"callbacks": [StopWhenSet(cancel)]}) if cancel is not None else config
            try:
                with closing(router.stream({**turn, "rag": rag}, run)) as chunks:
                    for chunk in chunks:
                        for key, value in chunk.items():
                            if key != "answer":
                                out[key] = value
                                continue
                            if value and first is None:
                                first = time.perf_counter() - started
                            if value:
                                write({"token": value, "reply": label})
                            out["answer"] = out.get("answer", "") + value
            except Stopped:
                pass  # nobody reads this reply any more: what was written is all there is
            return to_reply(ctx, turn, out, session_id=session_id, started=started, first_token=first)

        if conf.get("compare"):
            # Each answer is timed from its own start: the second must not count the first's generation.
            with_rag = answer(True, "rag", time.perf_counter())
            if turn["kind"] != "review":  # nothing differs without a model: answer once
                return {"reply": with_rag.to_state(), "compare": None}
            return {"reply": with_rag.to_state(), "compare": answer(False, "no_rag", time.perf_counter()).to_state()}
        reply = answer(conf.get("rag", "on") not in ("off", False), "reply", float(saved["started"]))
        return {"reply": reply.to_state(), "compare": None}

    def remember_step(state: ChatState, config: RunnableConfig) -> dict[str, Any]:
        existing = list(state.get("messages") or [])
        parsed = state["turn"]["parsed"]
        if parsed["kind"] == "empty":  # nothing worth keeping, and junk stays out of the history
            return {"stored": len(existing)}
        reply = Reply.from_state(state["reply"])
        meta = reply.memory_meta()
        if state.get("compare"):
            other = Reply.from_state(state["compare"])
            meta["compare"] = {"no_rag": {"text": other.text, **other.memory_meta()}}
        now, limit = time.time(), ctx.settings.stored_message_chars
        # The question as typed (what the page showed when it was sent), less control and bidi characters;
        # pages and exports escape its markup. The chain's reading of it is in the reply's "request".
        typed = "".join(ch if ch in "\n\t" or unicodedata.category(ch)[0] != "C" else " " for ch in state["message"])
        new = [HumanMessage(clip(typed.strip() or parsed["text"], limit), id=uuid.uuid4().hex,
                            additional_kwargs={"time": now}),
               AIMessage(clip(reply.text, limit), id=uuid.uuid4().hex, additional_kwargs={"time": now, **meta})]
        kept = trim_messages(existing + new, max_tokens=ctx.settings.max_session_messages, token_counter=len,
                             strategy="last")
        keep = {m.id for m in kept}
        if memory is not None:  # the sessions list, and the superseded checkpoints go
            session_id, owner = whose(config)
            memory.record_turn(session_id, owner, parsed["text"], len(kept))
        return {"messages": [RemoveMessage(id=m.id) for m in existing if m.id not in keep] + new,
                "stored": len(kept)}

    builder = StateGraph(ChatState)
    builder.add_node("parse", parse_step)
    builder.add_node("answer", answer_step)
    builder.add_node("remember", remember_step)
    builder.add_edge(START, "parse")
    builder.add_edge("parse", "answer")
    builder.add_edge("answer", "remember")
    builder.add_edge("remember", END)
    saver = checkpointer if checkpointer is not None else (memory.saver if memory is not None else None)
    return builder.compile(checkpointer=saver, name="movie_review_chat")
