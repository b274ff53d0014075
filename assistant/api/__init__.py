"""The OpenAI-compatible HTTP API over the chat (`python -m assistant.api`, docs/api.md).

    from assistant.api.server import create_app, serve
    serve()                       # blocking: uvicorn on MRA_HOST:MRA_API_PORT
    app = create_app(assistant=assistant)   # the FastAPI app over a loaded Assistant (tests)

`schemas.py` says what a request may hold and how a reply is written back, `conversation.py` turns a client's
messages into a chat turn (the same graph, parse and router as the page, with nothing stored), `guards.py` holds
the key and the body bound, `server.py` the routes.
"""
