"""The chat with memory: a LangGraph `StateGraph`, parse -> answer -> remember, checkpointed in SQLite.

    graph = build_graph(assistant, router, memory=memory)
    config = {"configurable": {"thread_id": "s1", "owner": "cli", "rag": "on", "model": "tuned"}}
    graph.invoke({"message": "Write a positive review of Toy Story"}, config)["reply"]      # Reply.to_state()
    for mode, event in graph.stream({"message": "now a negative one"}, config,
                                    stream_mode=["custom", "updates"], durability="exit"): ...

The thread id is the session id. The nodes are the module's `parse_step`, `answer_step` and `remember_step`, and
the state is `ChatState` (typed, plain data: it is checkpointed). `parse` reads the message against the session's
last review or opinion request (deterministically: intent.py) into a `TurnState`; `answer` runs the router
(router.py) on it as a `Turn` and writes the reply's text to the "custom" stream as it is written ({"token": ...,
"reply": "reply" | "rag" | "no_rag"}); `remember` adds the exchange to the session's messages, trims the oldest to
the memory's limits and records the session under its owner. `configurable`
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
from dataclasses import replace
from functools import partial
from typing import Any, TypedDict

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

from assistant.chat.intent import ParsedRequest, parse
from assistant.chat.memory import (
    CLI_OWNER,
    MAX_SESSION_MESSAGES,
    STORED_MESSAGE_CHARS,
    MemoryState,
    clip,
)
from assistant.chat.message_parts import safe_phrase
from assistant.chat.opinion import review_counts
from assistant.chat.replies import Reply
from assistant.chat.router import Chunk, Turn, add_chunk, to_reply
from assistant.model.prompts import other_sentiment

HISTORY_MESSAGES = 12  # recent messages searched for the request a follow-up ("now a negative one") refers to


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


class TurnState(TypedDict):
    """The parse step's reading of one message, as plain data: the state is checkpointed with the session, and
    only plain data and messages are revived from it (memory.py)."""

    parsed: dict[str, Any]  # ParsedRequest.to_dict() of the message
    previous: dict[str, Any] | None  # the session's last review or opinion request, as read then
    previous_meta: dict[str, Any] | None  # that request's reply as remembered (sources, ...)
    notes: list[str]  # what the reading says to the user ("I took ... to mean ...")
    seed: int  # sampling seed: the one asked for, else a fresh one (a comparison's answers share it)
    started: float  # perf_counter when the message arrived: the reply's timings count from here


class ChatState(MemoryState, total=False):
    """One turn of the chat graph: `message` in; `turn`, `reply` (and `compare`) out; `messages` kept."""

    message: str  # this turn's message (the input)
    turn: TurnState
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
    previous, meta = previous_request(messages[-HISTORY_MESSAGES:])
    parsed = parse(text, ctx.titles, previous)
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


# ---- parse: the message as read against the session -------------------------------------------------------

def whose(config: RunnableConfig) -> tuple[str, str]:
    """(session id, owner) of a turn's config; the owner defaults to the CLI's."""
    conf = config.get("configurable") or {}
    return str(conf.get("thread_id") or ""), str(conf.get("owner") or CLI_OWNER)


def reading_notes(parsed: ParsedRequest) -> list[str]:
    """What the user should know about how the message was read: cut short, or a title taken to mean another."""
    notes: list[str] = []
    if parsed.truncated and parsed.text:
        notes.append(f"Your message was long ({parsed.original_chars:,} characters); I read the first "
                     f"{len(parsed.text):,}.")
    if parsed.movie_key and parsed.movie_query and (parsed.fuzzy_score or 0) < 100 \
            and parsed.followup not in ("carried", "another", "sentiment", "tone", "flip"):
        notes.append(f"I took \u201c{safe_phrase(parsed.movie_query)}\u201d to mean {parsed.movie}.")
    return notes


def turn_seed(config: RunnableConfig) -> int:
    """The seed asked for, else a fresh one."""
    seed = (config.get("configurable") or {}).get("seed")
    return int(seed) if seed is not None else random.SystemRandom().randrange(2**31)


def parse_step(state: ChatState, config: RunnableConfig, *, ctx: Any, memory: Any = None) -> dict[str, Any]:
    """Node `parse`: read the message against the session's last request; a review without a side gets one."""
    started = time.perf_counter()
    if memory is not None:
        memory.check_access(*whose(config))  # another owner's session is not continued
    parsed, meta, previous = read_message(ctx, state["message"], state.get("messages") or [])
    notes = reading_notes(parsed)
    if parsed.kind == "review":
        _resolve_sentiment(ctx.store, parsed, notes)
    turn = TurnState(parsed=parsed.to_dict(), previous=previous.to_dict() if previous else None,
                     previous_meta=meta, notes=notes, seed=turn_seed(config), started=started)
    return {"turn": turn}


# ---- answer: the router, streamed ------------------------------------------------------------------------------

def router_turn(ctx: Any, saved: TurnState, config: RunnableConfig) -> Turn:
    """The parse step's reading with the request's options, as the router takes it."""
    conf = config.get("configurable") or {}
    parsed = ParsedRequest.from_dict(saved["parsed"])
    return Turn(kind=saved["parsed"]["kind"], parsed=parsed, previous=ParsedRequest.from_dict(saved["previous"]),
                previous_meta=saved["previous_meta"], notes=list(saved["notes"]), seed=saved["seed"],
                started=saved["started"], model=conf.get("model") or ctx.settings.default_model,
                top_k=int(conf.get("top_k") or ctx.settings.top_k))


def stream_answer(ctx: Any, router: Runnable, turn: Turn, config: RunnableConfig, label: str,
                  started: float) -> Reply:
    """Run the router on the turn, writing the reply's text to the "custom" stream as it comes ({"token",
    "reply": label}); stops quietly when the caller's `cancel` event is set."""
    conf = config.get("configurable") or {}
    session_id = str(conf.get("thread_id") or "")
    cancel = conf.get("cancel")  # a threading.Event the caller sets when it stops reading
    run = merge_configs(config, {"callbacks": [StopWhenSet(cancel)]}) if cancel is not None else config
    write = get_stream_writer()
    out: Chunk = {}
    first = None
    try:
        with closing(router.stream(turn, run)) as chunks:
            for chunk in chunks:
                text = add_chunk(out, chunk)
                if text:
                    if first is None:
                        first = time.perf_counter() - started
                    write({"token": text, "reply": label})
    except Stopped:
        pass  # nobody reads this reply any more: what was written is all there is
    return to_reply(ctx, turn, out, session_id=session_id, started=started, first_token=first)


def answer_step(state: ChatState, config: RunnableConfig, *, ctx: Any, router: Runnable) -> dict[str, Any]:
    """Node `answer`: the reply, and with `compare` the same message answered without retrieval too."""
    conf = config.get("configurable") or {}
    turn = router_turn(ctx, state["turn"], config)
    if conf.get("compare"):
        # Each answer is timed from its own start: the second must not count the first's generation.
        with_rag = stream_answer(ctx, router, replace(turn, rag=True), config, "rag", time.perf_counter())
        if turn.kind != "review":  # nothing differs without a model: answer once
            return {"reply": with_rag.to_state(), "compare": None}
        without = stream_answer(ctx, router, replace(turn, rag=False), config, "no_rag", time.perf_counter())
        return {"reply": with_rag.to_state(), "compare": without.to_state()}
    rag = conf.get("rag", "on") not in ("off", False)
    reply = stream_answer(ctx, router, replace(turn, rag=rag), config, "reply", turn.started)
    return {"reply": reply.to_state(), "compare": None}


# ---- remember: the exchange joins the session ------------------------------------------------------------------

def exchange_messages(state: ChatState, limit: int) -> list[AnyMessage]:
    """This turn's message and reply as the session keeps them: clipped, stamped, the reply's meta attached."""
    reply = Reply.from_state(state["reply"])
    meta = reply.memory_meta()
    if state.get("compare"):
        other = Reply.from_state(state["compare"])
        meta["compare"] = {"no_rag": {"text": other.text, **other.memory_meta()}}
    now = time.time()
    # The question as typed (what the page showed when it was sent), less control and bidi characters;
    # pages and exports escape its markup. The chain's reading of it is in the reply's "request".
    typed = "".join(ch if ch in "\n\t" or unicodedata.category(ch)[0] != "C" else " " for ch in state["message"])
    return [HumanMessage(clip(typed.strip() or state["turn"]["parsed"]["text"], limit), id=uuid.uuid4().hex,
                         additional_kwargs={"time": now}),
            AIMessage(clip(reply.text, limit), id=uuid.uuid4().hex, additional_kwargs={"time": now, **meta})]


def remember_step(state: ChatState, config: RunnableConfig, *, memory: Any = None) -> dict[str, Any]:
    """Node `remember`: add the exchange, trim the oldest messages to the memory's limits, record the session."""
    existing = list(state.get("messages") or [])
    parsed = state["turn"]["parsed"]
    if parsed["kind"] == "empty":  # nothing worth keeping, and junk stays out of the history
        return {"stored": len(existing)}
    new = exchange_messages(state, memory.stored_chars if memory is not None else STORED_MESSAGE_CHARS)
    most = memory.max_messages if memory is not None else MAX_SESSION_MESSAGES
    kept = trim_messages(existing + new, max_tokens=most, token_counter=len, strategy="last")
    keep = {m.id for m in kept}
    if memory is not None:  # the sessions list, and the superseded checkpoints go
        session_id, owner = whose(config)
        memory.record_turn(session_id, owner, parsed["text"], len(kept))
    return {"messages": [RemoveMessage(id=m.id) for m in existing if m.id not in keep] + new,
            "stored": len(kept)}


def build_graph(ctx: Any, router: Runnable, *, memory: Any = None, checkpointer: Any = None) -> Any:
    """The compiled chat graph. With `memory` (a ChatMemory) it checkpoints there, keeps to the owner's sessions
    (`configurable` "owner", default the CLI's) and records each turn in the sessions list; another
    `checkpointer` keeps the messages only; with neither it remembers nothing (give it `messages` to read)."""
    builder = StateGraph(ChatState)
    builder.add_node("parse", partial(parse_step, ctx=ctx, memory=memory))
    builder.add_node("answer", partial(answer_step, ctx=ctx, router=router))
    builder.add_node("remember", partial(remember_step, memory=memory))
    builder.add_edge(START, "parse")
    builder.add_edge("parse", "answer")
    builder.add_edge("answer", "remember")
    builder.add_edge("remember", END)
    saver = checkpointer if checkpointer is not None else (memory.saver if memory is not None else None)
    return builder.compile(checkpointer=saver, name="movie_review_chat")
