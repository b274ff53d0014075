"""What a request must pass before any route reads it: the key (when one is set) and a bound on the body's size.

    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(BearerKey, key="s3cret")   # added last = runs first: a stranger learns nothing else

Both are plain ASGI middleware, so a streamed reply passes through untouched, and both answer in OpenAI's error
shape. The body bound is checked twice: against a declared Content-Length before anything is read, and on the
bytes as they arrive, for a chunked body that declares none.
"""
from __future__ import annotations

import hmac

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.api.schemas import error_body

MAX_BODY_BYTES = 1 << 20  # 1 MiB: a long conversation is tens of KB; nothing here reads more than its last messages


def error_response(status: int, message: str, *, kind: str = "invalid_request_error", code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, kind, code=code), status_code=status, headers=headers)


class BodyTooLarge(HTTPException):
    """Raised from `receive` while the route reads the body: an HTTPException, so the route's reader lets it
    through and the app's handler answers 413 in OpenAI's shape."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"The request body is over the limit of {limit:,} bytes")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(413, str(BodyTooLarge(self.max_bytes).detail),
                                 code="request_too_large")(scope, receive, send)
            return
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, bounded, send)


class BearerKey:
    """With a key, every request must send `Authorization: Bearer <key>`; compared in constant time."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.key):
            await error_response(401, "Missing or wrong API key: send the header Authorization: Bearer <MRA_API_KEY>",
                                 code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        await self.app(scope, receive, send)
