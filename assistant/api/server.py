"""The OpenAI-compatible server: `GET /v1/models`, `POST /v1/chat/completions` (streamed or whole).

    serve()                                   # blocking; MRA_HOST (loopback) and MRA_API_PORT (8000)
    app = create_app(assistant=assistant)     # the FastAPI app over an Assistant already loaded

Every failure answers in OpenAI's error shape, never with a traceback: 401 without the key (MRA_API_KEY), 404 for
a model or path that is not here, 400 for a body that is not JSON or holds a bad value (OpenAI answers 400 for both,
so clients expect it; the body is read and checked here, so FastAPI's 422 never comes), 413 over the body bound, 500
for anything else (logged here, not sent). Replies are written off the event loop: a whole one in the thread pool, a streamed one by a thread of its
own that hands tokens over as they come; the model's own lock and the one compute thread queue concurrent requests.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from assistant.api.conversation import ApiChat, Turn
from assistant.api.guards import MAX_BODY_BYTES, BearerKey, BodyLimit, error_response
from assistant.api.schemas import Answer, ApiError, ChatRequest, error_body, sources_of
from assistant.chat.assistant import Assistant
from assistant.chat.replies import Reply
from assistant.settings import Settings, get_settings

log = logging.getLogger(__name__)

OWNED_BY = "movie-review-assistant"
IN_MEMORY = Path(":memory:")  # SQLite's own name for a database that is never written to disk
_CODES = {401: "invalid_api_key", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


def api_key(settings: Settings) -> str | None:
    """The key requests must send; None (an unset or empty MRA_API_KEY) lets every request in."""
    secret = settings.api_key.get_secret_value() if settings.api_key is not None else ""
    return secret or None


def load_assistant(settings: Settings) -> Assistant:
    """The chat's store and models, with a chat memory in RAM only: the API never touches the page's chats file."""
    return Assistant.load(settings.model_copy(update={"chats_db": IN_MEMORY}))


def create_app(settings: Settings | None = None, *, assistant: Assistant | None = None,
               max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The app over `assistant` (loaded from `settings` when not given); the key comes from `settings.api_key`."""
    settings = settings or (assistant.settings if assistant is not None else get_settings())
    chat = ApiChat(assistant if assistant is not None else load_assistant(settings))
    app = FastAPI(title="Movie review assistant", summary="OpenAI-compatible chat completions (docs/api.md)")
    app.state.chat = chat
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    if key := api_key(settings):
        app.add_middleware(BearerKey, key=key)  # added last, so it runs first
    _add_error_handlers(app)

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": mid, "object": "model", "created": 0, "owned_by": OWNED_BY}
                                           for mid in chat.models()]}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(raw: Request) -> JSONResponse | StreamingResponse:
        request = _read(await raw.body())  # read whatever the content type says: `curl -d` calls it a form
        turn = await run_in_threadpool(chat.prepare, request)  # reading the history runs the parser: off the loop
        answer = Answer(turn.model)
        if request.stream:
            usage = bool(request.stream_options and request.stream_options.include_usage)
            return ClosingStreamingResponse(_sse(chat, turn, answer, usage), media_type="text/event-stream",
                                            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        reply = await run_in_threadpool(_whole, chat, turn)
        counted, finish = await run_in_threadpool(chat.usage, reply)
        return JSONResponse(answer.completion(reply, counted, finish))

    return app


def _read(body: bytes) -> ChatRequest:
    try:
        data = json.loads(body)
    except ValueError:  # not JSON, or not UTF-8
        raise ApiError(400, "The request body is not valid JSON", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object", code="invalid_json")
    try:
        return ChatRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ApiError(400, f"{where}: {first['msg']}", param=where, code="invalid_value") from None


def _whole(chat: ApiChat, turn: Turn) -> Reply:
    *_, reply = chat.run(turn)
    assert isinstance(reply, Reply)  # run always ends with its Reply
    return reply


def _event(data: dict[str, Any] | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


async def _sse(chat: ApiChat, turn: Turn, answer: Answer, include_usage: bool) -> AsyncIterator[str]:
    """The reply as OpenAI streams it: a role chunk, a chunk per piece of text, a last chunk with the finish
    reason and the sources, (the usage,) then [DONE]. A failure midway is an error event, as OpenAI sends one."""
    extra = {"usage": None} if include_usage else {}
    yield _event(answer.chunk({"role": "assistant", "content": ""}, **extra))
    cancel = threading.Event()
    try:
        async for event in _in_thread(lambda: chat.run(turn, cancel)):
            if isinstance(event, str):
                yield _event(answer.chunk({"content": event}, **extra))
                continue
            counted, finish = await asyncio.to_thread(chat.usage, event)
            yield _event(answer.chunk({}, finish, sources=sources_of(event), notes=list(event.notes), **extra))
            if include_usage:
                yield _event(answer.usage_chunk(counted))
        yield _event("[DONE]")
    except Exception:  # the response has begun: the error goes in the stream, the details in the log
        log.exception("a streamed reply failed")
        yield _event(error_body("The server failed while writing the reply", "server_error"))
    finally:
        cancel.set()  # the client went away (or the reply is done): the generation stops at its next token


async def _in_thread(make: Callable[[], Iterator[Any]]) -> AsyncIterator[Any]:
    """Iterate a blocking iterator on one thread of its own, every step on that thread (LangGraph's context
    variables belong to the thread that set them), handing each item to the event loop as it comes."""
    loop, items = asyncio.get_running_loop(), asyncio.Queue()
    done = object()
    gone = threading.Event()

    def hand(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(items.put_nowait, item)
        except RuntimeError:  # the loop has closed (the server stopped): nobody reads any more
            gone.set()

    def pump() -> None:
        iterator = make()
        try:
            for item in iterator:
                if gone.is_set():
                    break
                hand(item)
        except BaseException as exc:  # handed over and raised on the loop's side
            hand(exc)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            hand(done)

    threading.Thread(target=pump, name="api-reply", daemon=True).start()
    try:
        while (item := await items.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        gone.set()


class ClosingStreamingResponse(StreamingResponse):
    """Closes its body iterator however the response ends (a client that went away cancels the send without
    closing it), so the reply's thread learns at once that nobody reads any more."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            closing = getattr(self.body_iterator, "aclose", None)
            if closing is not None:
                with anyio.CancelScope(shield=True):
                    await closing()


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        kind = "server_error" if exc.status_code >= 500 else "invalid_request_error"
        return error_response(exc.status_code, str(exc.detail), kind=kind, code=_CODES.get(exc.status_code),
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def server_error(_request: Request, exc: Exception) -> JSONResponse:
        log.error("request failed", exc_info=exc)  # the details stay here; the client is told only that it failed
        return error_response(500, "The server failed to answer this request", kind="server_error")


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(host: str | None = None, port: int | None = None, *, warm_up: bool = True) -> None:
    """Load the chat, then serve the API until interrupted (uvicorn, one process). AssistantError (one line)
    when there is nothing to answer with. `warm_up` readies the models in the background, as the page does."""
    import uvicorn

    settings = get_settings()
    host, port = host or settings.host, port or settings.api_port
    if not is_loopback(host) and not api_key(settings):
        log.warning("serving the network on %s with no key: anyone who can reach it can use it; set MRA_API_KEY",
                    host)
    app = create_app(settings)
    if warm_up:  # in the background, as the page does: the first request then waits its turn
        from assistant.chat.loading import warm_up_chat

        threading.Thread(target=warm_up_chat, args=(app.state.chat.assistant,), name="chat-warm-up",
                         daemon=True).start()
    log.info("OpenAI-compatible API on http://%s:%d/v1 (models: %s)", host, port, ", ".join(app.state.chat.models()))
    uvicorn.run(app, host=host, port=port, log_level="info")
