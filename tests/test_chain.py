"""The assistant end to end on the tiny store and tiny model: RAG on/off, sessions, budget, opinions, bad input."""
from __future__ import annotations

import uuid

import numpy as np

import pytest

from assistant.chat.assistant import Assistant, AssistantError, Reply, Source
from assistant.chat.memory import STORED_MESSAGE_CHARS, ChatMemory
from assistant.model.prompts import CONTEXT_HEADER
from assistant.settings import MAX_NEW_TOKENS, Settings
from tests.tiny import StubProbe, tiny_artifacts, tiny_chat, tiny_loaded, with_probe  # noqa: F401 - fixtures

FAST = dict(max_new_tokens=6)


def sid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def asst(tiny_chat) -> Assistant:
    return tiny_chat


def test_rag_on_gives_sources_and_puts_them_in_the_prompt(asst):
    reply = asst.reply(sid(), "Write a positive review of Toy Story", rag=True, seed=1, **FAST)
    assert (reply.mode, reply.model, reply.request.sentiment, reply.request.movie) == \
           ("rag", "tuned", "positive", "Toy Story")
    reviews = [s for s in reply.sources if s.kind == "review"]
    assert reviews and all(isinstance(s, Source) for s in reply.sources)
    assert all(s.sentiment == "positive" and s.movie == "Toy Story" for s in reviews)
    assert all(isinstance(s.similarity, float) for s in reply.sources)
    assert CONTEXT_HEADER in reply.prompt
    for source in reviews:  # every source shown was in the model's context
        assert source.critic in reply.prompt and " ".join(source.text.split()[:3]) in reply.prompt
    assert 'Write a positive review of "Toy Story".' in reply.prompt
    assert set(reply.timings) == {"retrieval_s", "first_token_s", "total_s"} and reply.timings["retrieval_s"] > 0


def test_rag_off_gives_no_sources_and_no_context(asst):
    reply = asst.reply(sid(), "Write a positive review of Toy Story", rag=False, seed=1, **FAST)
    assert reply.mode == "no_rag" and reply.sources == [] and CONTEXT_HEADER not in reply.prompt
    assert reply.prompt.rstrip().endswith('Write a positive review of "Toy Story".\nReview:')


def test_compare_answers_one_request_both_ways_and_remembers_one_turn(asst):
    session = sid()
    both = asst.compare(session, "thumbs down on gigli", **FAST)
    rag, plain = both["rag"], both["no_rag"]
    assert (rag.mode, plain.mode) == ("rag", "no_rag")
    assert rag.request == plain.request and rag.seed == plain.seed and rag.model == plain.model
    assert rag.sources and not plain.sources
    messages = asst.memory.messages(session, "cli")
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["compare"]["no_rag"]["text"] == plain.text


def test_a_seed_makes_a_reply_repeatable(asst):
    first = asst.reply(sid(), "a rave about the matrix", seed=7, remember=False, **FAST)
    again = asst.reply(sid(), "a rave about the matrix", seed=7, remember=False, **FAST)
    assert first.text == again.text and first.prompt == again.prompt


def test_stream_yields_text_then_the_reply(asst):
    events = list(asst.stream(sid(), "give me a scathing one for Gigli", **FAST))
    *pieces, final = events
    assert isinstance(final, Reply) and pieces and all(isinstance(p, str) for p in pieces)
    assert "".join(pieces).strip() == final.text


def test_follow_ups_resolve_within_their_session_only(asst):
    a, b, c = sid(), sid(), sid()
    asst.reply(a, "Write a positive review of Gigli", **FAST)
    asst.reply(b, "Write a positive review of Toy Story", **FAST)
    follow_a = asst.reply(a, "now a negative one", **FAST)
    follow_b = asst.reply(b, "now a negative one", **FAST)
    assert (follow_a.request.movie, follow_a.request.sentiment) == ("Gigli", "negative")
    assert (follow_b.request.movie, follow_b.request.sentiment) == ("Toy Story", "negative")
    assert asst.reply(c, "now a negative one", **FAST).request.movie is None  # nothing to follow in a new session
    harsher = asst.reply(a, "same movie but harsher", **FAST)
    assert (harsher.request.movie, harsher.request.sentiment, harsher.request.tone) == ("Gigli", "negative", "harsher")
    switched = asst.reply(a, "what about the matrix?", **FAST)
    assert (switched.request.movie, switched.request.sentiment) == ("The Matrix", "negative")
    assert len(asst.memory.messages(a, "cli")) == 8 and len(asst.memory.messages(b, "cli")) == 4


def test_conversation_survives_a_restart(asst, tmp_path):
    session = sid()
    asst.reply(session, "Write a negative review of Gigli", **FAST)
    asst.memory.close()
    restarted = Assistant(asst.settings, store=asst.store, titles=asst.titles,
                          generators={"tuned": asst.generator("tuned")}, memory=ChatMemory(tmp_path / "chats.sqlite"))
    again = restarted.reply(session, "another", **FAST)
    assert (again.request.movie, again.request.sentiment, again.request.followup) == ("Gigli", "negative", "another")


def _tokens_used(asst: Assistant, reply: Reply) -> int:
    used = len(asst.generator(reply.model).tokenizer(reply.prompt, add_special_tokens=False)["input_ids"])
    assert used == reply.prompt_tokens
    return used


@pytest.mark.parametrize("message", [
    "Write a positive review of Toy Story",
    "write a negative review of toy story about " + "the plot and the acting " * 4000,
    "a rave about a horror movie " + "x" * 100_000,
])
def test_the_prompt_never_exceeds_the_window(asst, message):
    session = sid()
    for _ in range(3):  # a longer chat changes nothing: history resolves the request, it is not pasted in
        reply = asst.reply(session, message, top_k=20, **FAST)
        assert _tokens_used(asst, reply) + reply.max_new_tokens <= reply.window
    assert reply.request.topic is None or len(reply.request.topic.split()) <= 12


def test_a_long_reply_squeezes_the_context_and_says_what_was_left_out(asst):
    # the tiny store's longest context (its five fresh reviews of The Matrix behind the facts card)
    reply = asst.reply(sid(), "Write a positive review of The Matrix", top_k=20, max_new_tokens=MAX_NEW_TOKENS)
    assert reply.max_new_tokens <= MAX_NEW_TOKENS
    assert _tokens_used(asst, reply) + reply.max_new_tokens <= reply.window
    assert any("did not fit" in n for n in reply.notes)
    for source in reply.sources:  # only what the model actually saw is reported
        assert " ".join(source.text.split()[:3]) in reply.prompt


def test_critics_opinion_counts_the_fixture(asst):
    gigli = asst.reply(sid(), "What do critics think of Gigli?")
    assert gigli.mode == "data" and gigli.model is None
    op = gigli.opinion
    # critics 2013: Basil, Ivo, Finn rotten, Gus fresh; 2020: Kai rotten, Juno fresh; Kaggle: Laila rotten, Pia fresh
    assert (op["fresh"], op["rotten"], op["fresh_pct"], op["verdict"]) == (3, 5, 38, "rotten")
    assert op["consensus"] in ("Gigli is a baffling misfire.", "Gigli is a consensus pick.")
    assert "3 fresh and 5 rotten" in gigli.text and op["consensus"] in gigli.text
    assert 1 <= len(op["quotes"]) <= 3 and all(q["critic"] and q["publication"] for q in op["quotes"])
    assert {q["verdict"] for q in op["quotes"]} == {"fresh", "rotten"}
    assert [s.critic for s in gigli.sources] == [q["critic"] for q in op["quotes"]]

    toy = asst.reply(sid(), "is toy story fresh?").opinion
    # Ada, Basil, Cora, Juno, Laila fresh; Dev, Elsa, Omar rotten; Gus Hale's "none" is unrated
    assert (toy["fresh"], toy["rotten"], toy["unrated"], toy["verdict"]) == (5, 3, 1, "fresh")
    assert asst.reply(sid(), "is Toy Story fresh?").text.startswith("Yes.")
    assert asst.reply(sid(), "Is Gigli fresh?").text.startswith("No.")


def test_unknown_movie_is_said_plainly_with_close_titles(asst):
    reply = asst.reply(sid(), "what do critics think of Gigil?")
    assert reply.mode == "data" and "not in the review data" in reply.text and "Gigli" in reply.text
    review = asst.reply(sid(), "give me a scathing one for Cats", **FAST)
    assert review.mode == "rag" and review.request.movie == "Cats" and review.request.movie_key is None
    assert any("not in the review data" in n for n in review.notes)
    assert all(s.movie != "Cats" and s.sentiment == "negative" for s in review.sources)


def test_filter_fallback_is_said(asst, monkeypatch):
    original = asst.store.max_marginal_relevance_search  # what the store's MMR retriever asks

    def no_rotten_toy_story(query, k=4, fetch_k=20, lambda_mult=0.5, filter=None, **kwargs):
        if (filter or {}).get("movie_key") == "toy story" and (filter or {}).get("sentiment"):
            return []
        return original(query, k, fetch_k, lambda_mult, filter, **kwargs)

    monkeypatch.setattr(asst.store, "max_marginal_relevance_search", no_rotten_toy_story)
    reply = asst.reply(sid(), "Write a negative review of Toy Story", **FAST)
    assert any("no rotten reviews of Toy Story" in n for n in reply.notes)
    assert reply.sources and all(s.movie == "Toy Story" for s in reply.sources)


def test_no_sentiment_sides_with_the_data(asst):
    gigli = asst.reply(sid(), "Write a review of Gigli", **FAST)
    assert (gigli.request.sentiment, gigli.request.sentiment_from) == ("negative", "data")
    assert any("3 of 8 critics" in n for n in gigli.notes)
    assert asst.reply(sid(), "Toy Story", **FAST).request.sentiment == "positive"


def test_why_explains_the_last_review(asst):
    session = sid()
    review = asst.reply(session, "Write a positive review of Toy Story", guidance=1.0, **FAST)
    why = asst.reply(session, "why?")
    assert why.mode == "chat" and "retrieved" in why.text
    assert [s.doc_id for s in why.sources] == [s.doc_id for s in review.sources]
    assert "nothing to explain" in asst.reply(sid(), "why?").text
    assert "steered" not in why.text  # guidance off: nothing to say about it


def test_guidance_is_recorded_and_explained(asst):
    session = sid()
    review = asst.reply(session, "Write a negative review of Toy Story", guidance=2.5, **FAST)
    assert review.guidance == 2.5 and review.to_json()["guidance"] == 2.5
    with pytest.raises(ValueError, match="guidance"):  # out of range: refused in one line, not silently clamped
        asst.reply(sid(), "Write a negative review of Toy Story", guidance=99, **FAST)
    why = asst.reply(session, "why?")
    assert "away from what a positive review" in why.text and "guidance 2.5" in why.text


def test_help_and_small_talk_show_the_commands(asst):
    hello = asst.reply(sid(), "hi")
    assert hello.mode == "chat" and "Write a positive review of" in hello.text
    helped = asst.reply(sid(), "what can you do?", rag=False)
    assert "What do critics think of" in helped.text and "off" in helped.text


@pytest.mark.parametrize("message", [
    "", "   \n ", "x" * 100_000, "\x00\x01\x02\xff" * 1000, bytes(range(256)).decode("latin-1"),
    "<script>alert(1)</script><img src=x onerror=alert(2)>", "# Title\n**bold** [a](javascript:alert(1))",
    "what do critics think of Zzyzx Road?", "Write a review", "\ud800 broken surrogate",
])
def test_bad_input_gets_a_sensible_reply(asst, message):
    session = sid()
    reply = asst.reply(session, message, **FAST)
    assert isinstance(reply, Reply) and reply.request.kind in ("review", "opinion", "help", "smalltalk", "why", "empty")
    assert reply.text or reply.notes
    assert "<script" not in reply.text and "onerror" not in reply.text
    stored = asst.memory.messages(session, "cli")
    assert all(len(m["content"]) <= STORED_MESSAGE_CHARS + 64 for m in stored)
    if reply.request.kind == "empty":
        assert stored == []


def test_bad_arguments_raise_clear_errors(asst):
    with pytest.raises(ValueError, match="session id"):
        asst.reply("../../etc", "hi")
    with pytest.raises(ValueError, match="model"):
        asst.reply(sid(), "hi", model="gpt-5")


def test_without_a_store_rag_is_unavailable_and_said(asst, tmp_path):
    bare = Assistant(asst.settings, store=None, generators={"tuned": asst.generator("tuned")},
                     memory=ChatMemory(tmp_path / "bare.sqlite"))
    reply = bare.reply(sid(), "Write a positive review of Toy Story", rag=True, **FAST)
    assert reply.mode == "no_rag" and reply.sources == []
    assert any("python ingest.py" in n for n in reply.notes)
    assert "python ingest.py" in bare.reply(sid(), "what do critics think of Gigli?").text
    status = bare.status()
    assert status["rag_available"] is False and status["store"] is None


def test_without_a_tuned_model_the_base_answers_labelled_as_base(asst, tmp_path):
    base_only = Assistant(asst.settings, store=asst.store, titles=asst.titles,
                          generators={"tuned": None, "base": asst.generator("tuned")},
                          memory=ChatMemory(tmp_path / "base.sqlite"))
    reply = base_only.reply(sid(), "Write a positive review of Toy Story", model="tuned", **FAST)
    assert reply.model == "base" and any("python -m assistant.finetune" in n for n in reply.notes)
    assert base_only.status()["models_available"] == ["base"]


def test_load_finds_the_tiny_artifacts_and_loads_the_base_on_demand(tiny_loaded):
    status = tiny_loaded.status()
    assert status["rag_available"] and status["models"]["tuned"]["loaded"]
    assert status["store"]["titled_movies"] == 3 and status["store"]["reviews"] > 0
    assert set(status["models_available"]) == {"tuned", "base"}
    reply = tiny_loaded.reply(sid(), "Write a negative review of Gigli", model="base", remember=False, **FAST)
    assert reply.model == "base" and reply.model_name == "scratch"
    assert tiny_loaded.status()["models"]["base"]["loaded"]


def test_load_with_nothing_names_both_commands(tmp_path):
    empty = Settings(index_dir=tmp_path / "i", models_dir=tmp_path / "m", chats_db=tmp_path / "c.sqlite",
                     base_model=str(tmp_path / "no-such-base"))
    with pytest.raises(AssistantError) as error:
        Assistant.load(empty)
    message = str(error.value)
    assert "python ingest.py" in message and "python -m assistant.finetune" in message and "\n" not in message


def test_load_without_a_store_degrades(tiny_artifacts, tmp_path, embeddings):
    settings = tiny_artifacts.model_copy(update={"index_dir": tmp_path / "none", "chats_db": tmp_path / "c.sqlite"})
    degraded = Assistant.load(settings, embeddings=embeddings)
    assert not degraded.rag_available and any("python ingest.py" in w for w in degraded.status()["warnings"])
    with pytest.raises(AssistantError, match=r"python ingest\.py"):
        Assistant.load(settings, embeddings=embeddings, strict=True)


# ---- best-of-n drafts ---------------------------------------------------------------------------------------------

@pytest.fixture
def probed(asst) -> Assistant:
    asst.probe = StubProbe()
    assert asst.draft_words.ready.wait(60)  # the store's vocabulary, counted in the background: choices repeat
    assert asst.draft_words.garbled(["A film."]) is not None  # load() counted it: the drafts are word-checked
    return asst


def test_one_draft_streams_as_before_and_never_scores(probed):
    probed.settings = probed.settings.model_copy(update={"sampling": probed.settings.sampling.merged(drafts=1)})
    plain = list(probed.stream(sid(), "a rave about the matrix", seed=11, remember=False, **FAST))
    again = list(probed.stream(sid(), "a rave about the matrix", seed=11, remember=False, drafts=1, **FAST))
    assert [e for e in plain if isinstance(e, str)] == [e for e in again if isinstance(e, str)]
    assert again[-1].text == plain[-1].text and again[-1].drafts is None and again[-1].to_json()["drafts"] is None
    assert probed.probe.calls == []


@pytest.mark.parametrize("sentiment", ["positive", "negative"])
def test_drafts_keep_the_one_the_probe_reads_most_on_target(probed, sentiment):
    session = sid()
    events = list(probed.stream(session, f"Write a {sentiment} review of Toy Story", seed=5, drafts=3, **FAST))
    *pieces, reply = events
    assert isinstance(reply, Reply) and all(isinstance(p, str) for p in pieces) and len(pieces) <= 1
    [(scored, embeddings)] = probed.probe.calls  # one batch of drafts, scored once
    assert embeddings is probed.store.embeddings and 1 <= len(scored) <= 3
    pick = max if sentiment == "positive" else min
    best = pick(scored, key=StubProbe.score)
    assert reply.text == best.strip() and "".join(pieces) == reply.text
    drafts = reply.drafts
    assert (drafts["n"], drafts["scorer"]) == (3, "embedding probe")
    readings = [s for s in drafts["on_target"] if s is not None]
    expected = [StubProbe.score(t) if sentiment == "positive" else 1 - StubProbe.score(t) for t in scored]
    assert readings == pytest.approx(expected, abs=1e-4)
    assert drafts["on_target"][drafts["chosen"]] == pytest.approx(max(expected), abs=1e-4)
    t = reply.timings
    assert 0 < t["first_token_s"] <= t["total_s"] and drafts["generate_s"] > 0 and drafts["score_s"] >= 0
    assert reply.to_json()["drafts"] == drafts
    assert probed.memory.messages(session, "cli")[-1]["drafts"] == drafts
    why = probed.reply(session, "why?").text
    assert f"I chose draft {drafts['chosen'] + 1} of 3" in why and f"most {sentiment}" in why


class StubCritic:
    """Stands in for the critic-likeness scorer: shorter drafts read as more critic-like."""

    embedding_dim = 384

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], tuple[int, ...]]] = []

    def critic_probability(self, texts, vectors):
        self.calls.append((list(texts), tuple(vectors.shape)))
        return np.array([1.0 / (1 + len(t)) for t in texts])


def test_drafts_keep_the_most_critic_like_of_those_that_read_clearly_as_asked(probed, monkeypatch):
    from assistant.model import drafts as drafts_module

    monkeypatch.setattr(drafts_module, "CLEAR_SENTIMENT", 0.3)  # the stub probe's readings are arbitrary
    told_apart = 0
    for seed in range(5, 11):
        probed.critic_scorer = StubCritic()
        session = sid()
        reply = probed.reply(session, "Write a positive review of Toy Story", seed=seed, drafts=4, **FAST)
        drafts = reply.drafts
        [(read, shape)] = probed.critic_scorer.calls  # the written drafts, read once, with the store's embeddings
        assert shape == (len(read), 384) and drafts["scorer"] == "embedding probe, then critic-likeness"
        assert [s for s in drafts["likeness"] if s is not None] == pytest.approx([1 / (1 + len(t)) for t in read],
                                                                                  abs=1e-4)
        clear = [i for i, s in enumerate(drafts["on_target"]) if s is not None and s >= 0.3]
        if not clear:
            continue
        garbled = drafts.get("garbled") or [None] * drafts["n"]  # the tiny model's words: some are made up
        sound = [i for i in clear if not garbled[i]] or clear
        named = drafts.get("named") or []  # the context names the film's people: a draft naming them comes first
        sound = [i for i in sound if i < len(named) and named[i]] or sound
        best = max(sound, key=lambda i: drafts["likeness"][i])
        assert drafts["chosen"] == best
        if best != max(clear, key=lambda i: drafts["on_target"][i]):
            told_apart += 1
            why = probed.reply(session, "why?").text
            assert f"I chose draft {best + 1} of 4" in why and "the one most like a critic's quote" in why
    assert told_apart, "no seed's drafts told critic-likeness from sentiment: the test shows nothing"


class StubWords:
    """Stands in for the word check: the shortest draft of each batch has a made-up word."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[str]]] = []

    def garbled(self, texts, shown):
        self.calls.append((list(texts), list(shown)))
        shortest = min(len(t) for t in texts)
        return [len(t) == shortest for t in texts]


def test_drafts_with_a_made_up_word_lose_to_a_clear_one_without(probed, monkeypatch):
    from assistant.model import drafts as drafts_module

    monkeypatch.setattr(drafts_module, "CLEAR_SENTIMENT", 0.0)  # every draft is clear: only the words decide
    probed.critic_scorer, probed.draft_words = StubCritic(), StubWords()
    checked = 0
    for seed in range(5, 9):
        session = sid()
        reply = probed.reply(session, "Write a negative review of Toy Story", seed=seed, drafts=4, **FAST)
        drafts = reply.drafts
        (read, shown), = probed.draft_words.calls[-1:]
        assert any("Toy Story" in s for s in shown)  # told what the model was shown: the title, the context
        flags = [f for f in drafts["garbled"] if f is not None]
        assert flags == [len(t) == min(map(len, read)) for t in read]
        written = [i for i, s in enumerate(drafts["on_target"]) if s is not None]
        sound = [i for i in written if not drafts["garbled"][i]]
        if not sound:
            continue
        checked += 1
        assert not drafts["garbled"][drafts["chosen"]]
        named = drafts.get("named") or []
        sound = [i for i in sound if i < len(named) and named[i]] or sound  # then one naming the film's people
        assert drafts["chosen"] == max(sound, key=lambda i: drafts["likeness"][i])  # then the most critic-like
        if any(drafts["garbled"]):
            assert "without a word no review uses" in probed.reply(session, "why?").text
    assert checked, "no seed left a draft without a made-up word: the test shows nothing"


def test_a_word_check_that_fails_leaves_the_drafts_ranked_without_it(probed, monkeypatch, caplog):
    from assistant.model import drafts as drafts_module

    class Broken:
        def garbled(self, texts, shown):
            raise OSError("the vocabulary file vanished")

    monkeypatch.setattr(drafts_module, "CLEAR_SENTIMENT", 0.0)
    probed.critic_scorer, probed.draft_words = StubCritic(), Broken()
    reply = probed.reply(sid(), "Write a negative review of Toy Story", seed=5, drafts=4, **FAST)
    drafts = reply.drafts
    assert reply.text and drafts["words_unread"] == "the vocabulary file vanished" and "garbled" not in drafts
    written = [i for i, s in enumerate(drafts["on_target"]) if s is not None]
    assert drafts["chosen"] == max(written, key=lambda i: drafts["likeness"][i])  # the most critic-like, as before
    assert "without the word check" in caplog.text


def test_a_critic_scorer_that_cannot_read_the_drafts_leaves_them_ranked_by_sentiment(probed, caplog):
    class Mismatched(StubCritic):
        def critic_probability(self, texts, vectors):
            raise ValueError("the critic-likeness scorer reads 10-dimensional embeddings, not 384-dimensional ones")

    probed.critic_scorer = Mismatched()
    reply = probed.reply(sid(), "Write a negative review of Toy Story", seed=5, drafts=3, remember=False, **FAST)
    drafts = reply.drafts
    assert drafts["scorer"] == "embedding probe" and "likeness" not in drafts
    assert "10-dimensional" in drafts["likeness_unread"] and "ranked by sentiment alone" in caplog.text
    written = [s for s in drafts["on_target"] if s is not None]
    assert drafts["on_target"][drafts["chosen"]] == max(written)


def test_drafts_are_repeatable_for_a_seed(probed):
    first = probed.reply(sid(), "thumbs down on gigli", seed=3, drafts=4, remember=False, **FAST)
    again = probed.reply(sid(), "thumbs down on gigli", seed=3, drafts=4, remember=False, **FAST)
    assert first.text == again.text and first.drafts["chosen"] == again.drafts["chosen"]
    assert first.drafts["on_target"] == again.drafts["on_target"] and len(first.drafts["on_target"]) == 4


def test_the_model_lock_is_held_while_drafts_are_written(probed, monkeypatch):
    generator = probed.generator("tuned")
    held: list[bool] = []
    original = generator.best_of

    def watched(*args, **kwargs):
        held.append(probed.llm("tuned").lock.locked())
        return original(*args, **kwargs)

    monkeypatch.setattr(generator, "best_of", watched)
    probed.reply(sid(), "Write a positive review of Gigli", drafts=2, remember=False, **FAST)
    assert held == [True] and not probed.llm("tuned").lock.locked()


def test_drafts_count_is_checked_and_comes_from_settings_by_default(probed):
    many = probed.reply(sid(), "Write a positive review of Gigli", drafts=8, remember=False, **FAST)
    assert many.drafts["n"] == 8 and len(many.drafts["on_target"]) == 8
    for wrong in (0, 50):
        with pytest.raises(ValueError, match="drafts"):
            probed.reply(sid(), "Write a positive review of Gigli", drafts=wrong, remember=False, **FAST)
    assert probed.reply(sid(), "Write a positive review of Gigli", drafts=1, remember=False, **FAST).drafts is None
    probed.settings = probed.settings.model_copy(update={"sampling": probed.settings.sampling.merged(drafts=2)})
    assert probed.reply(sid(), "Write a positive review of Gigli", remember=False, **FAST).drafts["n"] == 2


def test_without_a_probe_one_draft_is_streamed_and_the_note_says_why(asst):
    assert asst.probe is None
    single = asst.reply(sid(), "Write a negative review of Gigli", seed=9, drafts=1, remember=False, **FAST)
    asked = asst.reply(sid(), "Write a negative review of Gigli", seed=9, drafts=3, remember=False, **FAST)
    assert asked.text == single.text  # the very draft one live stream writes
    assert any(n.startswith("Wrote one draft instead of 3") and "sentiment probe" in n for n in asked.notes)
    assert (asked.drafts["n"], asked.drafts["asked"], asked.drafts["scorer"]) == (1, 3, None)
    assert not any("draft" in n for n in single.notes)
    session = sid()
    first = asst.reply(session, "Write a negative review of Gigli", drafts=3, **FAST)
    again = asst.reply(session, "now a positive one", drafts=3, **FAST)
    assert any(n.startswith("Wrote one draft instead of 3") for n in first.notes)
    assert not any("draft" in n for n in again.notes)  # said once per session, still recorded on every reply
    assert (again.drafts["n"], again.drafts["asked"], again.drafts["why"]) == (1, 3, first.drafts["why"])


def test_drafts_fall_back_without_embeddings_a_matching_probe_or_sampling(probed, tmp_path):
    import numpy as np

    from assistant.model.sentiment_probe import SentimentProbe

    no_store = Assistant(probed.settings, store=None, generators={"tuned": probed.generator("tuned")},
                         memory=ChatMemory(tmp_path / "n.sqlite"), probe=probed.probe)
    reply = no_store.reply(sid(), "Write a positive review of Gigli", drafts=3, **FAST)
    assert reply.drafts["n"] == 1 and any("embedding model that scores them is unavailable" in n for n in reply.notes)
    greedy = probed.reply(sid(), "Write a positive review of Gigli", drafts=3, temperature=0, **FAST)
    assert greedy.drafts["n"] == 1 and any("temperature 0" in n for n in greedy.notes)
    probed.probe = SentimentProbe(np.zeros(10, dtype=np.float32), 0.0)
    wrong = probed.reply(sid(), "Write a positive review of Gigli", drafts=3, **FAST)
    assert wrong.drafts["n"] == 1 and any("10-dimensional" in n for n in wrong.notes)


def test_a_failing_scorer_keeps_the_first_draft_and_says_so(probed, monkeypatch):
    def broken(texts, embeddings):
        raise RuntimeError("embedding model gone")

    monkeypatch.setattr(probed.probe, "score_texts", broken)
    reply = probed.reply(sid(), "Write a positive review of Gigli", drafts=3, remember=False, **FAST)
    assert reply.text and (reply.drafts["n"], reply.drafts["scorer"]) == (3, None)
    assert any("could not be ranked (RuntimeError: embedding model gone)" in n for n in reply.notes)


def test_drafts_work_for_the_base_model_and_in_compare(probed, tmp_path):
    base_only = Assistant(probed.settings, store=probed.store, titles=probed.titles,
                          generators={"tuned": None, "base": probed.generator("tuned")},
                          memory=ChatMemory(tmp_path / "base.sqlite"), probe=probed.probe)
    reply = base_only.reply(sid(), "Write a negative review of Toy Story", model="base", drafts=3, **FAST)
    assert reply.model == "base" and reply.drafts["n"] == 3
    both = probed.compare(sid(), "Write a positive review of The Matrix", drafts=2, **FAST)
    assert both["rag"].drafts["n"] == both["no_rag"].drafts["n"] == 2


def test_load_finds_the_probe_beside_the_tuned_model(tiny_artifacts, tmp_path, embeddings):
    settings = tiny_artifacts.model_copy(update={"chats_db": tmp_path / "c.sqlite"})
    without = Assistant.load(settings, embeddings=embeddings)
    assert without.probe is None and without.status()["draft_scorer"] is False
    without.close()
    loaded = Assistant.load(with_probe(settings, tmp_path, embeddings), embeddings=embeddings)
    assert loaded.probe is not None and loaded.status()["draft_scorer"] is True
    reply = loaded.reply(sid(), "Write a positive review of Toy Story", drafts=3, remember=False, **FAST)
    scores = [s for s in reply.drafts["on_target"] if s is not None]
    assert reply.drafts["n"] == 3 and scores and all(0 <= s <= 1 for s in scores)
    loaded.close()


def test_sampling_out_of_range_is_a_one_line_error(asst):
    with pytest.raises(ValueError, match="max_new_tokens"):
        asst.reply(sid(), "Write a negative review of The Matrix", max_new_tokens=100_000)
    with pytest.raises(ValueError, match="guidance"):
        asst.reply(sid(), "Write a negative review of The Matrix", guidance=0.5)


def test_a_reader_that_stops_early_stops_the_generation(asst):
    generator = asst.generator("tuned")
    ask = dict(max_new_tokens=120, seed=4, remember=False, guidance=1.0)
    before = generator.stats.new_tokens
    whole = asst.reply(sid(), "Write a positive review of Toy Story", **ask)
    written = generator.stats.new_tokens - before
    assert written > 40, "the tiny model should write a long reply with this seed"
    before = generator.stats.new_tokens
    events = asst.stream(sid(), "Write a positive review of Toy Story", **ask)
    assert next(events) and isinstance(whole, Reply)
    events.close()  # the page reran, or the terminal went away
    assert generator.stats.new_tokens - before < written / 2
    assert not asst.llm("tuned").lock.locked()


def test_another_leaves_out_the_reviews_shown_last_time(asst):
    session = sid()
    first = asst.reply(session, "Write a negative review of Gigli", top_k=2, **FAST)
    again = asst.reply(session, "another", top_k=2, **FAST)
    seen = {s.doc_id for s in first.sources if s.kind == "review"}
    fresh = {s.doc_id for s in again.sources if s.kind == "review"}
    assert again.request.followup == "another" and len(seen) == len(fresh) == 2 and not seen & fresh
    assert all(s.sentiment == "negative" and s.movie == "Gigli" for s in again.sources if s.kind == "review")
