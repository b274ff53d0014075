"""The chat as LangChain parts: the review chain composes from replaceable parts, RAG is one config switch,
it streams and batches; the local LLM streams tokens and honours stop sequences and configured sampling;
an OpenAI-compatible server streams through the same chain; the graph's memory is replaceable too."""
from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.llms import LLM
from langchain_core.outputs import GenerationChunk
from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import Field

from assistant.chat.assistant import Assistant
from assistant.chat.graph import build_graph
from assistant.chat.retrieval import Retrieval
from assistant.chat.review_chain import build_review_chain, configurable_model
from assistant.chat.router import LLMInfo
from assistant.model.llm import ReviewLLM, ReviewPrompt
from assistant.model.prompts import CONTEXT_HEADER, END_MARKER
from assistant.settings import Sampling
from tests.tiny import StubProbe, tiny_artifacts, tiny_chat, tiny_loaded  # noqa: F401 - fixtures


class RecordingLLM(LLM):
    """A fake model: records each prompt it is given and streams fixed tokens."""

    tokens: list[str] = Field(default_factory=lambda: ["Pure", " joy", "."])
    prompts: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _call(self, prompt: str, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> str:
        return "".join(c.text for c in self._stream(prompt, stop, run_manager))

    def _stream(self, prompt: str, stop: Any = None, run_manager: Any = None, **kwargs: Any
                ) -> Iterator[GenerationChunk]:
        self.prompts.append(prompt)
        for token in self.tokens:
            if run_manager:
                run_manager.on_llm_new_token(token)
            yield GenerationChunk(text=token)


REVIEW = Document("A joyous, inventive ride for every age.", id="r1",
                  metadata={"critic": "Ada Lumen", "publication": "Evening Ledger", "sentiment": "positive",
                            "movie": "Toy Story", "movie_key": "toy story", "doc_id": "r1", "kind": "review"})


@pytest.fixture
def parts(tiny_loaded):
    asks: list[dict] = []

    def fake_retrieval(ask: dict) -> Retrieval:
        asks.append(ask)
        return Retrieval(documents=[REVIEW], similarities=[0.9], movie_key=ask.get("movie_key"))

    prompt = ReviewPrompt.for_generator(tiny_loaded.generator("tuned"))
    return RecordingLLM(), prompt, RunnableLambda(fake_retrieval), asks


def test_the_review_chain_composes_from_replaceable_parts(parts):
    llm, prompt, retrieval, asks = parts
    chain = build_review_chain(llm, prompt, retrieval)
    out = chain.invoke({"sentiment": "positive", "movie": "Toy Story"})
    assert out["answer"] == "Pure joy." and asks == [{"sentiment": "positive", "movie": "Toy Story"}]
    assert out["prompt"].to_string() == llm.prompts[-1]  # the fitted prompt is exactly what the model was given
    assert CONTEXT_HEADER in llm.prompts[-1] and "Ada Lumen (Evening Ledger)" in llm.prompts[-1]
    assert out["prompt"].fitted.request.context == out["context"] and out["retrieval"].documents == [REVIEW]


def test_rag_is_one_config_switch_on_one_runnable(parts):
    llm, prompt, retrieval, asks = parts
    chain = build_review_chain(llm, prompt, retrieval)
    assert {"rag", "max_new_tokens"} <= {spec.id for spec in chain.config_specs}  # the fake LLM has no sampling
    off = chain.invoke({"sentiment": "positive", "movie": "Toy Story"}, {"configurable": {"rag": "off"}})
    assert off["retrieval"] is None and off["context"] == [] and asks == []  # the retriever was not asked
    assert CONTEXT_HEADER not in llm.prompts[-1] and 'Write a positive review of "Toy Story".' in llm.prompts[-1]
    on = chain.with_config(configurable={"rag": "on"}).invoke({"sentiment": "positive", "movie": "Toy Story"})
    assert on["retrieval"] is not None and CONTEXT_HEADER in llm.prompts[-1]


def test_the_chain_streams_tokens_and_batches(parts):
    llm, prompt, retrieval, _ = parts
    chain = build_review_chain(llm, prompt, retrieval)
    chunks = list(chain.stream({"sentiment": "negative", "movie": "Gigli"}))
    assert [c["answer"] for c in chunks if "answer" in c] == ["Pure", " joy", "."]
    assert "retrieval" in chunks[1] and "prompt" in chunks[3]  # how it was made comes first
    assert list(chain.pick("answer").stream({"sentiment": "negative"}, {"configurable": {"rag": "off"}})) == \
           ["Pure", " joy", "."]
    outs = chain.batch([{"sentiment": "positive", "movie": "Toy Story"}, {"sentiment": "negative", "movie": "Gigli"}],
                       {"configurable": {"rag": "off"}})
    assert [o["answer"] for o in outs] == ["Pure joy."] * 2
    assert 'Write a negative review of "Gigli".' in outs[1]["prompt"].to_string()


def test_the_local_llm_streams_tokens_with_stop_sequences_and_configured_sampling(tiny_loaded):
    generator = tiny_loaded.generator("tuned")
    llm = ReviewLLM.from_sampling(generator, Sampling(guidance=1.0, max_new_tokens=12))
    prompt = ReviewPrompt.for_generator(generator).format(sentiment="positive", movie="Toy Story")
    tokens = list(llm.stream(prompt, seed=3))
    whole = "".join(tokens)
    assert len(tokens) > 2 and whole == llm.invoke(prompt, seed=3)  # streamed as written, same text at once
    stop = whole.strip()[len(whole.strip()) // 2:][:2]
    assert llm.invoke(prompt, seed=3, stop=[stop]) == whole[:whole.find(stop)]
    configured = configurable_model(llm)
    greedy = {"configurable": {"temperature": 0.0, "max_new_tokens": 4}}
    first, again = configured.invoke(prompt, greedy), configured.invoke(prompt, {**greedy, "seed": 99})
    assert first == again and len(generator.tokenizer(first)["input_ids"]) <= 4
    with pytest.raises(ValueError, match="guidance"):
        llm.invoke(prompt, guidance=0.5)


def test_praise_is_written_with_more_guidance_than_pans(tiny_loaded, monkeypatch):
    generator = tiny_loaded.generator("tuned")
    given, stream = [], generator.stream

    def recording(prompt, **sampling):
        given.append(sampling["guidance"])
        return stream(prompt, **sampling)

    monkeypatch.setattr(generator, "stream", recording)
    llm = ReviewLLM.from_sampling(generator, Sampling(guidance=3.0, praise_guidance=1.0, max_new_tokens=3))
    praise, pan = (ReviewPrompt.for_generator(generator).format(sentiment=s, movie="Gigli")
                   for s in ("positive", "negative"))
    recorder = LLMInfo()
    llm.invoke(praise, {"callbacks": [recorder]})
    assert recorder.info["guidance"] == 4.0  # the reply reports the scale it was written with
    llm.invoke(pan)
    llm.invoke(praise, guidance=1.0)  # off stays off
    llm.invoke(praise, guidance=4.5)  # a request's own scale gets it too, up to the bound
    assert given == [4.0, 3.0, 1.0, 5.0]
    llm.invoke(praise, praise_guidance=0.5)  # per call, as every sampling field
    assert given[-1] == 3.5
    with pytest.raises(ValueError, match="praise_guidance"):
        llm.invoke(praise, praise_guidance=-3.0)  # would steer toward the other sentiment
    assert ReviewLLM._guidance_for("no review instruction here", 3.0, 1.0) == 3.0
    same = ReviewLLM.from_sampling(generator, Sampling(guidance=3.0, praise_guidance=0.0, max_new_tokens=3))
    same.invoke(praise)
    assert given[-1] == 3.0


def test_the_llm_reports_its_drafts_to_callbacks(tiny_loaded):
    generator, probe = tiny_loaded.generator("tuned"), StubProbe()
    llm = ReviewLLM.from_sampling(generator, Sampling(guidance=1.0, max_new_tokens=5),
                                  draft_scorer=lambda texts: probe.score_texts(texts, None))
    prompt = ReviewPrompt.for_generator(generator).format(sentiment="negative", movie="Gigli")
    recorder = LLMInfo()
    text = llm.invoke(prompt, {"callbacks": [recorder]}, drafts=3, seed=1)
    [(scored, _)] = probe.calls
    assert recorder.info["drafts"]["n"] == 3 and text == min(scored, key=StubProbe.score).strip()
    recorder = LLMInfo()
    llm.invoke(prompt, {"callbacks": [recorder]}, drafts=3, temperature=0.0)
    assert recorder.info["drafts"]["n"] == 1 and "temperature 0" in recorder.info["notes"][0]


def test_the_graphs_memory_is_replaceable(tiny_chat):
    graph = build_graph(tiny_chat, tiny_chat.router, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "fake-memory", "rag": "off", "max_new_tokens": 4}}
    first = graph.invoke({"message": "Write a negative review of Gigli"}, config)
    assert first["reply"]["request"]["movie"] == "Gigli" and len(first["messages"]) == 2
    follow = graph.invoke({"message": "what about the matrix?"}, config)["reply"]["request"]
    assert (follow["movie"], follow["sentiment"]) == ("The Matrix", "negative")
    assert tiny_chat.memory.recent("fake-memory", None, 10) == []  # nothing went to the SQLite file


# ---- an OpenAI-compatible server ------------------------------------------------------------------------------

TOKENS = ["Gigli", " is", " a", " slog", ".", END_MARKER, " ignored"]


class FakeServer(ThreadingHTTPServer):
    """/v1/completions streaming server-sent events, one token per event. After the first token it waits until
    the test has seen it, so a reply that arrived only at the end would fail the test."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Completions)
        self.requests: list[dict] = []
        self.first_seen = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Completions(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, **body})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for i, token in enumerate(TOKENS):
            event = {"id": "cmpl-1", "object": "text_completion", "created": 0, "model": body["model"],
                     "choices": [{"index": 0, "text": token, "logprobs": None, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
            if i == 0:
                self.server.first_seen.wait(timeout=30)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    yield fake
    fake.shutdown()
    fake.server_close()


def test_an_openai_compatible_server_streams_through_the_same_chain(server, tiny_artifacts, tmp_path, embeddings):
    settings = tiny_artifacts.model_copy(update={"llm_endpoint": server.url, "llm_model": "movie-reviews",
                                                 "chats_db": tmp_path / "chats.sqlite"})
    asst = Assistant.load(settings, embeddings=embeddings)
    assert asst.generator("tuned") is None and asst.status()["models"]["tuned"]["device"] == "remote"
    events = []
    for event in asst.stream(uuid.uuid4().hex, "Write a negative review of Gigli", guidance=2.0, drafts=3,
                             max_new_tokens=20):
        events.append(event)
        server.first_seen.set()
    *tokens, reply = events
    assert tokens[0] == "Gigli" and len(tokens) >= 4 and reply.text == "Gigli is a slog."  # cut at the end marker
    [request] = server.requests
    assert request["path"] == "/v1/completions" and request["model"] == "movie-reviews" and request["stream"]
    assert request["prompt"] == reply.prompt and CONTEXT_HEADER in reply.prompt  # the fitted prompt, as given
    assert request["max_tokens"] == reply.max_new_tokens == 20 and END_MARKER in request["stop"]
    assert (reply.mode, reply.model, reply.guidance, reply.drafts) == ("rag", "tuned", 1.0, None)
    assert any("cannot do sentiment guidance or drafts" in n for n in reply.notes) and reply.sources
    assert "movie-reviews at http://127.0.0.1" in reply.model_name
    asst.close()


def test_the_assistant_takes_any_llm(tiny_chat, tmp_path):
    from assistant.chat.memory import ChatMemory

    llm = RecordingLLM(tokens=["A", " dud", "."])
    prompt = ReviewPrompt.for_generator(tiny_chat.generator("tuned"))
    asst = Assistant(tiny_chat.settings, store=tiny_chat.store, titles=tiny_chat.titles,
                     memory=ChatMemory(tmp_path / "fake-llm.sqlite"), llms={"tuned": (llm, prompt)})
    events = list(asst.stream("f1", "Write a negative review of Gigli", drafts=1))
    *tokens, reply = events
    assert tokens == ["A", " dud", "."] and reply.text == "A dud." and reply.model == "tuned"
    assert reply.prompt == llm.prompts[-1] and reply.sources and reply.mode == "rag"
    assert asst.reply("f1", "now a positive one").request.movie == "Gigli"  # memory as ever
    asst.close()


def test_the_chat_hands_its_model_the_fitted_prompt_never_text_to_read_back(tiny_chat, monkeypatch):
    """The rules and the guidance scale come from the prompt's structure, through the configurable chain."""
    import assistant.model.llm as llm_module

    monkeypatch.setattr(llm_module, "fit_text", lambda *a, **k: pytest.fail("the prompt's text was read back"))
    for rag in (True, False):
        reply = tiny_chat.reply("fitted", "Write a negative review of Toy Story", rag=rag, temperature=0.5,
                                max_new_tokens=4, remember=False)
        assert reply.model == "tuned" and bool(reply.sources) == rag


def test_the_chat_keeps_names_to_the_context_only_with_retrieval(tiny_chat, tiny_loaded, tmp_path):
    from assistant.chat.memory import ChatMemory
    from assistant.model.prompts import fit_text
    from assistant.model.rules import NamedLead, NamesRule, VerdictFirst
    from assistant.model.rules.critic_length import CriticLength
    from assistant.model.rules.critic_opening import CriticOpening
    from assistant.model.rules.real_words import RealWords

    rag = tiny_chat.reply("names", "Write a positive review of Toy Story", rag=True, max_new_tokens=4, remember=False)
    bare = tiny_chat.reply("names", "Write a positive review of Toy Story", rag=False, max_new_tokens=4,
                           remember=False)
    assert rag.sources and not bare.sources
    def rules_of(llm, prompt: str) -> tuple:
        """The rules the model's LLM writes this prompt's reply under."""
        return llm.rules.for_prompt(fit_text(prompt, llm.generator.tokenizer, 512, 4))

    with_rag = rules_of(tiny_chat.llm("tuned"), rag.prompt)
    lead = [p for p in with_rag if isinstance(p, NamedLead)]
    assert [type(p) for p in with_rag] == [VerdictFirst, CriticOpening, CriticLength, RealWords, NamesRule,
                                           *[NamedLead] * len(lead)]
    opening = next(p for p in with_rag if isinstance(p, CriticOpening))  # after a first-sentence lead's name
    assert set(opening.lead) == (set(lead[0].phrases) if lead and lead[0].sentence == 1 else set())
    # without retrieval no names rule: only the rules every review gets
    assert [type(p) for p in rules_of(tiny_chat.llm("tuned"), bare.prompt)] == [VerdictFirst, CriticOpening,
                                                                                CriticLength, RealWords]
    rule = next(p for p in with_rag if isinstance(p, NamesRule))
    assert rule.boost == tiny_chat.settings.sampling.name_boost

    def processors_with(prompt: str, **sampling) -> list:
        """The processors the chat gives `prompt` when its sampling settings are changed as given."""
        settings = tiny_chat.settings.model_copy(update={"sampling": tiny_chat.settings.sampling.merged(**sampling)})
        memory = ChatMemory(tmp_path / f"{'-'.join(sampling)}.sqlite")
        chat = Assistant(settings, store=tiny_loaded.store, titles=tiny_loaded.titles, memory=memory,
                         generators={"tuned": tiny_loaded.generator("tuned"), "base": None})
        try:
            return list(rules_of(chat.llm("tuned"), prompt))
        finally:
            memory.close()

    assert next(p for p in processors_with(rag.prompt, name_boost=5.0) if isinstance(p, NamesRule)).boost == 5.0
    assert not any(isinstance(p, NamesRule) for p in processors_with(rag.prompt, context_names=False))
    assert not any(isinstance(p, NamedLead) for p in processors_with(rag.prompt, name_lead=0))
    assert [type(p) for p in processors_with(bare.prompt, verdict_first=False)] == [CriticOpening, CriticLength,
                                                                                    RealWords]
    assert processors_with(bare.prompt, verdict_first=False, real_words=False, critic_opening=0.0) == []  # both


def test_a_password_in_the_endpoint_is_never_logged_nor_shown(server, tiny_artifacts, tmp_path, embeddings, caplog):
    secret_url = server.url.replace("http://", "http://reviewer:s3cret-pass@") + "?api_key=tok-123"
    settings = tiny_artifacts.model_copy(update={"llm_endpoint": secret_url, "llm_model": "movie-reviews",
                                                 "chats_db": tmp_path / "chats.sqlite"})
    with caplog.at_level(logging.DEBUG):
        asst = Assistant.load(settings, embeddings=embeddings)
        status = json.dumps(asst.status())
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("s3cret-pass", "tok-123", "reviewer"):
        assert secret not in logged and secret not in status, secret
    assert "movie-reviews at http://***@127.0.0.1" in logged
    asst.close()
