"""The OpenAI-compatible API, driven by the official `openai` client against a real server on a free port, over
the tiny store and the tiny tuned model (no base model, so `base` and `base-rag` are not offered)."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import openai
import pytest
import uvicorn
from pydantic import SecretStr

from assistant.api.server import create_app
from assistant.chat.assistant import Assistant
from assistant.chat.memory import ANY_OWNER, ChatMemory
from tests.tiny import tiny_artifacts, tiny_loaded  # noqa: F401 - fixtures

KEY = "test-key-0123456789"
ASK = "Write a positive review of Toy Story"
SOURCE_KEYS = {"critic", "publication", "movie", "sentiment", "text"}


@pytest.fixture(scope="module")
def api_assistant(tiny_loaded, tmp_path_factory):  # noqa: F811
    """The tiny tuned model and store, with a chat database of its own that the API must leave empty."""
    memory = ChatMemory(tmp_path_factory.mktemp("api") / "chats.sqlite")
    yield Assistant(tiny_loaded.settings.model_copy(update={"chats_db": memory.path}), store=tiny_loaded.store,
                    titles=tiny_loaded.titles, memory=memory,
                    generators={"tuned": tiny_loaded.generator("tuned"), "base": None})
    memory.close()


@pytest.fixture(scope="module")
def server(api_assistant):
    settings = api_assistant.settings.model_copy(update={"api_key": SecretStr(KEY)})
    app = create_app(settings, assistant=api_assistant, max_body_bytes=64_000)
    runner = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not runner.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert runner.started, "the server did not start"
    port = runner.servers[0].sockets[0].getsockname()[1]
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}/v1", chat=app.state.chat, assistant=api_assistant)
    runner.should_exit = True
    thread.join(10)


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0, timeout=60)


def ask(client, text=ASK, model="tuned-rag", **options):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], **options)


def post(server, body, headers=None, **kwargs):
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json", **(headers or {})}
    return httpx.post(f"{server.url}/chat/completions", headers=headers, timeout=60, **kwargs,
                      **({} if "content" in kwargs else {"json": body}))


def is_openai_error(response, status):
    body = response.json()
    return response.status_code == status and set(body["error"]) == {"message", "type", "param", "code"}


# ---- what it answers -----------------------------------------------------------------------------------------

def test_models_are_those_available(client):
    assert [m.id for m in client.models.list()] == ["tuned-rag", "tuned"]  # no base model loaded here


def test_complete_with_sources_honouring_seed_temperature_and_max_tokens(client):
    first = ask(client, seed=7, temperature=0.9, max_tokens=12)
    again = ask(client, seed=7, temperature=0.9, max_tokens=12)
    other = ask(client, seed=8, temperature=0.9, max_tokens=12)
    assert first.object == "chat.completion" and first.model == "tuned-rag"
    text = first.choices[0].message.content
    assert text and text == again.choices[0].message.content != other.choices[0].message.content
    assert 0 < first.usage.completion_tokens <= 12 and first.usage.prompt_tokens > 0
    sources = first.model_extra["sources"]
    assert sources and all(set(s) == SOURCE_KEYS and s["movie"] == "Toy Story" for s in sources)
    greedy = {ask(client, seed=seed, temperature=0, max_tokens=12).choices[0].message.content for seed in (1, 2)}
    assert len(greedy) == 1  # temperature 0: the seed no longer matters


def test_without_rag_there_are_no_sources(client):
    reply = ask(client, model="tuned", seed=3, max_tokens=8)
    assert reply.choices[0].message.content and reply.model_extra["sources"] == []


def test_stream_is_the_same_reply_as_openai_streams_it(client, server):
    whole = ask(client, seed=11, max_tokens=16)
    chunks = list(ask(client, seed=11, max_tokens=16, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == whole.choices[0].message.content
    assert len({(c.id, c.created) for c in chunks}) == 1  # one answer: every chunk names it the same
    last, usage = chunks[-2], chunks[-1]
    assert last.choices[0].finish_reason in ("stop", "length")
    assert last.model_extra["sources"] == whole.model_extra["sources"]
    assert usage.choices == [] and usage.usage.completion_tokens == whole.usage.completion_tokens
    with httpx.stream("POST", f"{server.url}/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                      json={"model": "tuned", "stream": True, "max_tokens": 4,
                            "messages": [{"role": "user", "content": ASK}]}, timeout=60) as raw:
        assert raw.headers["content-type"].startswith("text/event-stream")
        body = raw.read().decode()
    events = body.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(e.startswith("data: {") for e in events[:-2])
    assert json.loads(events[-3][6:])["choices"][0]["finish_reason"] in ("stop", "length")


def test_follow_up_takes_the_movie_from_the_messages(client, server):
    earlier = [{"role": "system", "content": "You are helpful."},
               {"role": "user", "content": "Write a positive review of The Matrix"},
               {"role": "assistant", "content": "A dazzling ride."}]
    follow = client.chat.completions.create(
        model="tuned-rag", seed=5, max_tokens=8,
        messages=earlier + [{"role": "user", "content": [{"type": "text", "text": "now a negative one"}]}])
    sources = follow.model_extra["sources"]
    assert sources and {s["movie"] for s in sources} == {"The Matrix"}
    alone = ask(client, "now a negative one", seed=5, max_tokens=8)
    assert {s["movie"] for s in alone.model_extra["sources"]} != {"The Matrix"}
    # The conversation is the client's: nothing of it is written to the chat database.
    assert server.assistant.memory.list_sessions(ANY_OWNER) == []
    assert server.assistant.memory.messages("api", ANY_OWNER) == []


def test_earlier_requests_are_read_as_the_chat_reads_them(server):
    """No side asked for: the data's (Gigli: 3 fresh, 5 rotten) goes on the reply, so "the other side" flips it."""
    from assistant.api.schemas import ChatMessage
    from assistant.chat.graph import read_message

    said = [ChatMessage(role="user", content="Write a review of Gigli"), ChatMessage(role="assistant", content="Bad.")]
    history = server.chat.history(said, "tuned")
    asked = history[-1].additional_kwargs["request"]
    assert (asked["movie"], asked["sentiment"], asked["sentiment_from"]) == ("Gigli", "negative", "data")
    flipped = read_message(server.assistant, "now the other side", history)[0]
    assert (flipped.movie, flipped.sentiment, flipped.followup) == ("Gigli", "positive", "flip")


def test_why_says_where_the_sources_are(client):
    reply = client.chat.completions.create(model="tuned-rag", messages=[
        {"role": "user", "content": "Write a review of Gigli"}, {"role": "assistant", "content": "Bad."},
        {"role": "user", "content": "why?"}])
    assert reply.choices[0].message.content and any("`sources`" in n for n in reply.model_extra["notes"])


def test_two_requests_at_once_are_both_answered(client, server):
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(ask, client, seed=seed, max_tokens=24) for seed in (21, 22)]
        streamed = pool.submit(lambda: "".join(c.choices[0].delta.content or "" for c in
                                               ask(client, seed=23, max_tokens=24, stream=True) if c.choices))
        replies = [f.result(timeout=120) for f in futures]
        assert streamed.result(timeout=120)
    assert all(r.choices[0].message.content and r.model_extra["sources"] for r in replies)
    assert server.chat.running == 0


@pytest.mark.parametrize("stream", [False, True])
def test_the_server_answers_while_a_reply_is_being_written(client, server, monkeypatch, stream):
    """A reply held up in its generation must not hold up the event loop: other requests are still answered."""
    release, real = threading.Event(), server.chat.graph

    class Held:
        def stream(self, *args, **kwargs):
            release.wait(30)
            yield from real.stream(*args, **kwargs)

    monkeypatch.setattr(server.chat, "graph", Held())
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(lambda: list(ask(client, model="tuned", max_tokens=4, stream=True)) if stream
                           else ask(client, model="tuned", max_tokens=4))
        deadline = time.monotonic() + 10
        while not server.chat.running and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.chat.running == 1  # the reply is under way, and held
        assert [m.id for m in openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0,
                                            timeout=5).models.list()] == ["tuned-rag", "tuned"]
        assert not held.done()
        release.set()
        assert held.result(timeout=60)


def test_a_client_that_leaves_mid_stream_stops_the_generation(client, server, monkeypatch):
    generator = server.assistant.generator("tuned")
    monkeypatch.setattr(generator, "max_sentences", 0)  # a review ends after one sentence; this needs a long reply
    options = dict(model="tuned", seed=4, temperature=1.0, max_tokens=256)
    before = generator.stats.new_tokens
    ask(client, **options)
    whole = generator.stats.new_tokens - before
    assert whole > 100  # the precondition: this reply is long enough to leave in the middle of
    before = generator.stats.new_tokens
    stream = ask(client, stream=True, **options)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    stream.close()
    deadline = time.monotonic() + 30
    while server.chat.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.chat.running == 0
    assert generator.stats.new_tokens - before < whole


# ---- how it refuses --------------------------------------------------------------------------------------------

def test_a_body_sent_as_a_form_is_still_read_as_json(server):
    body = json.dumps({"model": "tuned", "max_tokens": 4, "messages": [{"role": "user", "content": ASK}]})
    response = post(server, None, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]


def test_serve_listens_where_the_settings_say(monkeypatch, caplog):
    import assistant.api.server as server_module
    from assistant.settings import Settings

    calls = []
    monkeypatch.setattr(server_module, "get_settings", lambda: Settings(host="0.0.0.0", api_port=8123))
    monkeypatch.setattr(server_module, "create_app", lambda settings: SimpleNamespace(
        state=SimpleNamespace(chat=SimpleNamespace(models=lambda: ["tuned"]))))
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    server_module.serve(warm_up=False)
    server_module.serve(host="127.0.0.1", port=9000, warm_up=False)
    assert [(c["host"], c["port"]) for c in calls] == [("0.0.0.0", 8123), ("127.0.0.1", 9000)]
    assert "no key" in caplog.text  # the network, without a key: said once, for the first call only
    assert caplog.text.count("no key") == 1


def test_the_key_is_required(server):
    for key in ("wrong-key", KEY[:-1]):
        with pytest.raises(openai.AuthenticationError) as caught:
            ask(openai.OpenAI(base_url=server.url, api_key=key, max_retries=0))
        assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    for headers in ({}, {"Authorization": f"Basic {KEY}"}, {"Authorization": KEY}):
        response = httpx.get(f"{server.url}/models", headers=headers)
        assert is_openai_error(response, 401) and response.headers["www-authenticate"] == "Bearer"


def test_without_a_key_setting_no_key_is_asked(api_assistant):
    from fastapi.testclient import TestClient

    app = create_app(api_assistant.settings.model_copy(update={"api_key": None}), assistant=api_assistant)
    with TestClient(app) as test_client:
        assert test_client.get("/v1/models").json()["data"][0]["id"] == "tuned-rag"


def test_unknown_or_unavailable_models_are_404(client):
    for model in ("gpt-4o", "base", "base-rag"):
        with pytest.raises(openai.NotFoundError) as caught:
            ask(client, model=model)
        assert caught.value.code == "model_not_found" and "tuned-rag" in caught.value.message


@pytest.mark.parametrize("body, param", [
    ({"model": "tuned", "messages": [{"role": "user", "content": ASK}], "temperature": 5}, "temperature"),
    ({"model": "tuned", "messages": [{"role": "user", "content": ASK}], "max_tokens": 0}, "max_tokens"),
    ({"model": "tuned", "messages": [{"role": "user", "content": ASK}], "n": 2}, "n"),
    ({"model": "tuned", "messages": [{"role": "user", "content": ASK}], "seed": -1}, "seed"),
    ({"model": "tuned", "messages": []}, "messages"),
    ({"model": "tuned"}, "messages"),
    ({"messages": [{"role": "user", "content": ASK}]}, "model"),
    ({"model": "tuned", "messages": [{"role": "robot", "content": ASK}]}, "messages.0.role"),
    ({"model": "tuned", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "messages.0.content"),
    ({"model": "tuned", "messages": [{"role": "user", "content": ASK}, {"role": "assistant", "content": "x"}]},
     "messages"),
])
def test_invalid_bodies_are_400_naming_the_field(server, body, param):
    response = post(server, body)
    assert is_openai_error(response, 400)
    assert response.json()["error"]["param"].startswith(param) and response.json()["error"]["code"] == "invalid_value"


def test_malformed_json_is_400(server):
    for raw in (b"{not json", b"", b"\xff\xfe", b"[]", b"null"):
        response = post(server, None, content=raw)
        assert is_openai_error(response, 400) and response.json()["error"]["code"] == "invalid_json"
        assert response.json()["error"]["param"] is None


def test_a_body_over_the_bound_is_413_declared_or_streamed(server):
    big = json.dumps({"model": "tuned", "messages": [{"role": "user", "content": "a" * 70_000}]}).encode()
    declared = post(server, None, content=big)
    assert is_openai_error(declared, 413) and declared.json()["error"]["code"] == "request_too_large"
    chunked = post(server, None, content=(big[i:i + 8192] for i in range(0, len(big), 8192)))
    assert "content-length" not in chunked.request.headers
    assert is_openai_error(chunked, 413) and chunked.json()["error"]["code"] == "request_too_large"


def test_other_failures_are_a_plain_500(server, monkeypatch):
    class Broken:
        def stream(self, *args, **kwargs):
            raise RuntimeError("secret detail at /home/someone/var/models")

    monkeypatch.setattr(server.chat, "graph", Broken())
    response = post(server, {"model": "tuned", "messages": [{"role": "user", "content": ASK}]})
    assert is_openai_error(response, 500) and "secret" not in response.text and "Traceback" not in response.text
    with pytest.raises(openai.APIError) as caught:  # a stream has begun: the failure is its last event
        list(ask(openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0), model="tuned", stream=True))
    assert "secret" not in str(caught.value) and caught.value.type == "server_error"
    assert is_openai_error(httpx.get(f"{server.url}/nothing-here", headers={"Authorization": f"Bearer {KEY}"}), 404)
