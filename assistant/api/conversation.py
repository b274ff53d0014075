"""A client's `messages` -> one chat turn, through the same graph, parse and router as the page, storing nothing.

    chat = ApiChat(assistant)
    turn = chat.prepare(ChatRequest.model_validate(body))   # ApiError: unknown model, no user message last
    for event in chat.run(turn): ...                         # str tokens as written, then the Reply

An OpenAI client sends the whole conversation every time, so the server keeps none: the chat graph is compiled
without a checkpointer and is handed the client's messages as the session's history. The page's history carries,
on each reply, the request it answered (that is how "now a negative one" finds the movie); a client sends only
text, so each earlier user message is read again, in order, by the graph's own parse step (a graph whose answer
step writes nothing), and the request it was read as goes on the reply that follows it. What a client cannot send
back is what an earlier reply was based on, so "why?" has no sources to explain; each reply's `sources` field says.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableLambda

from assistant.api.schemas import MODEL_IDS, ApiError, ChatMessage, ChatRequest, usage
from assistant.chat.assistant import MAX_TOP_K, Assistant
from assistant.chat.graph import build_graph
from assistant.chat.replies import Reply
from assistant.model.prompts import count_tokens
from assistant.settings import MAX_NEW_TOKENS

log = logging.getLogger(__name__)

API_THREAD = "api"  # the graph's thread id; nothing is checkpointed under it
REPLAYED_MESSAGES = 64  # earlier messages read again to resolve a follow-up (the parse itself reads fewer)
WHY_NOTE = ("This server keeps no conversation, so it cannot see what an earlier reply was based on: each reply's "
            "`sources` field lists the reviews it was given.")
SPEAKERS = ("user", "assistant")  # system and tool messages say nothing the parser could use


@dataclass
class Turn:
    """A checked request, ready to run: the message to answer, the history it follows, the graph's config."""

    model: str  # the id the client asked for ("tuned-rag")
    text: str
    history: list[AnyMessage]
    config: dict[str, Any]


def _replayed(_turn: dict[str, Any]) -> dict[str, Any]:
    return {"answer": "", "mode": "chat"}  # an earlier message is only read again: its reply is the client's


class ApiChat:
    """The chat for API requests over one loaded Assistant; thread-safe, as the Assistant is."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.settings = assistant.settings
        self.graph = build_graph(assistant, assistant.router)  # no memory: nothing a client sends is stored
        self._reader = build_graph(assistant, RunnableLambda(_replayed, name="replayed"))
        self._running = 0
        self._count_lock = threading.Lock()

    @property
    def running(self) -> int:
        """Turns being written now (a stream whose client went away counts until its generation has stopped)."""
        return self._running

    def models(self) -> list[str]:
        """The model ids that can answer: -rag needs the store, tuned a fine-tuned model."""
        loadable, rag = self.assistant.models_available(), self.assistant.rag_available
        return [mid for mid, (slot, with_rag) in MODEL_IDS.items() if slot in loadable and (rag or not with_rag)]

    def prepare(self, request: ChatRequest) -> Turn:
        """The request checked against what is here, and its history read: ApiError when it cannot be answered."""
        if request.model not in self.models():
            known = ", ".join(self.models()) or "none: no model or store could be loaded"
            raise ApiError(404, f"The model {request.model!r} does not exist here; available: {known}",
                           param="model", code="model_not_found")
        slot, rag = MODEL_IDS[request.model]
        said = [m for m in request.messages if m.role in SPEAKERS]
        if not said or said[-1].role != "user":
            raise ApiError(400, "The last user or assistant message must be the user's: it is what gets answered",
                           param="messages", code="invalid_value")
        budget = request.token_budget
        # The review model's bound, not an error: clients send generous max_tokens meant for chat models.
        sampling = self.settings.sampling.merged(temperature=request.temperature,
                                                 max_new_tokens=min(budget, MAX_NEW_TOKENS) if budget else None)
        config = {"configurable": {
            "thread_id": API_THREAD, "rag": "on" if rag else "off", "model": slot, "compare": False,
            "top_k": max(1, min(self.settings.top_k, MAX_TOP_K)), "seed": request.seed,
            "temperature": sampling.temperature, "max_new_tokens": sampling.max_new_tokens,
            "drafts": sampling.drafts, "guidance": sampling.guidance}}
        return Turn(request.model, said[-1].text(), self.history(said[:-1], slot), config)

    def history(self, messages: list[ChatMessage], slot: str) -> list[AnyMessage]:
        """The client's earlier messages as the chat's history: each reply carries the request it answered."""
        history: list[AnyMessage] = []
        asked: dict[str, Any] | None = None  # how the last user message was read
        for message in messages[-REPLAYED_MESSAGES:]:
            text = message.text()
            if message.role == "user":
                state = self._reader.invoke({"message": text, "messages": history},
                                            {"configurable": {"thread_id": API_THREAD, "model": slot, "seed": 0}})
                asked = state["reply"]["request"]
                history.append(HumanMessage(text))
            else:
                history.append(AIMessage(text, additional_kwargs={"request": asked} if asked else {}))
                asked = None
        return history

    def run(self, turn: Turn, cancel: threading.Event | None = None) -> Iterator[str | Reply]:
        """Yield the reply's text as it is written, then the Reply. Closing the iterator, or setting `cancel`
        (the client went away), stops the generation at its next token."""
        cancel = cancel or threading.Event()
        config = {**turn.config, "configurable": {**turn.config["configurable"], "cancel": cancel}}
        events = self.graph.stream({"message": turn.text, "messages": turn.history}, config,
                                   stream_mode=["custom", "updates"])
        final: dict[str, Any] = {}
        with self._count_lock:
            self._running += 1
        try:
            for mode, event in events:
                if mode == "custom":
                    yield event["token"]
                    continue
                for update in event.values():
                    final.update(update or {})
        finally:
            cancel.set()
            events.close()
            with self._count_lock:
                self._running -= 1
        reply = Reply.from_state(final["reply"])
        if reply.request.kind == "why":
            reply.notes.append(WHY_NOTE)
        yield reply

    def usage(self, reply: Reply) -> tuple[dict[str, int], str]:
        """(token counts, finish reason): "length" when the review used its whole token budget."""
        generator = self.assistant.generator(reply.model) if reply.model else None
        written = count_tokens(reply.text, generator.tokenizer) if generator is not None and reply.text else 0
        prompt = int(reply.prompt_tokens or 0)
        finish = "length" if reply.max_new_tokens and written >= reply.max_new_tokens else "stop"
        return usage(prompt, written), finish
