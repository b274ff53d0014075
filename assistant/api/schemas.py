"""What an OpenAI chat request may hold here, and the reply in OpenAI's shapes (with our `sources` and `notes`).

    request = ChatRequest.model_validate(body)          # pydantic: a bad field is a 400 naming it
    answer = Answer("tuned-rag")
    answer.completion(reply, counted, "stop")           # {"object": "chat.completion", ...}
    answer.chunk({"content": "Pixar"})                  # {"object": "chat.completion.chunk", ...}
    error_body("no such model", "invalid_request_error", param="model", code="model_not_found")

Unknown request fields (tools, presence_penalty, user, ...) are accepted and ignored, as OpenAI clients send many;
`n` above 1 and content other than text are refused, since nothing here could honour them.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from assistant.chat.replies import Reply

# The four names a client can ask for: (model slot, retrieval on).
MODEL_IDS: dict[str, tuple[str, bool]] = {"tuned-rag": ("tuned", True), "tuned": ("tuned", False),
                                          "base-rag": ("base", True), "base": ("base", False)}
MAX_MESSAGES = 1000  # a conversation longer than this is refused; only the latest are read anyway
MAX_SEED = 2**32 - 1  # the CLI's range (assistant/argtypes.py): every generator here takes it
SOURCE_FIELDS = ("critic", "publication", "movie", "sentiment", "text")


class TextPart(BaseModel):
    """One part of a message's content list: only text is read (an image or audio part is refused)."""

    model_config = ConfigDict(extra="allow")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, or the `sources` a client kept

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)  # the newer name for max_tokens
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    n: int = Field(default=1, ge=1, le=1)

    @property
    def token_budget(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class ApiError(Exception):
    """A request that cannot be answered: its HTTP status and OpenAI's error fields."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.kind, param=self.param, code=self.code)


def error_body(message: str, kind: str, *, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error object: what every failure answers with, never a traceback."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def sources_of(reply: Reply) -> list[dict[str, Any]]:
    return [{name: getattr(source, name) for name in SOURCE_FIELDS} for source in reply.sources]


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


@dataclass(frozen=True)
class Answer:
    """What every object of one answer shares (OpenAI repeats them in each chunk): id, model asked for, time."""

    model: str
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))

    def _envelope(self, kind: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "system_fingerprint": None, "choices": choices}

    def completion(self, reply: Reply, counted: dict[str, int], finish: str) -> dict[str, Any]:
        """The whole answer: OpenAI's chat.completion, plus the reply's `sources` and `notes`."""
        choice = {"index": 0, "message": {"role": "assistant", "content": reply.text, "refusal": None},
                  "logprobs": None, "finish_reason": finish}
        return {**self._envelope("chat.completion", [choice]), "usage": counted, "sources": sources_of(reply),
                "notes": list(reply.notes)}

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        """One streamed chat.completion.chunk; the last carries `finish` and, as `extra`, sources and notes."""
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**self._envelope("chat.completion.chunk", [choice]), **extra}

    def usage_chunk(self, counted: dict[str, int]) -> dict[str, Any]:
        """With stream_options.include_usage, OpenAI ends the stream with a chunk of no choices and the usage."""
        return {**self._envelope("chat.completion.chunk", []), "usage": counted}
