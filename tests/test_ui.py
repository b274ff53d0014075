"""The page through streamlit.testing.v1.AppTest, with the real Assistant on the tiny model and store."""
from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from assistant.settings import Settings
from tests.tiny import tiny_artifacts, tiny_env  # noqa: F401 - tiny_artifacts is a pytest fixture
from ui.jobs import Builder, Job, get_builder
from ui.runtime import probe

APP = str(Path(__file__).resolve().parent.parent / "ui" / "app.py")
TIMEOUT = 120  # the first run loads the embedding model and the tiny LM


@pytest.fixture(scope="module")
def tiny(tiny_artifacts: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The shared tiny store and model with a chat database of this module's own, exported as MRA_*
    variables: AppTest runs the page in this process."""
    settings = tiny_artifacts.model_copy(update={"chats_db": tmp_path_factory.mktemp("ui-chats") / "chats.sqlite"})
    yield from _environment(settings)


def _environment(settings: Settings) -> Iterator[Settings]:
    env = tiny_env(settings)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield settings
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def open_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def send(at: AppTest, text: str) -> AppTest:
    at.chat_input[0].set_value(text).run()
    assert not at.exception, at.exception
    return at


def assistant_messages(at: AppTest) -> list:
    return [m for m in at.chat_message if m.name == "assistant"]


def source_expanders(message) -> list:
    return [e for e in message.expander if e.label.startswith("Sources")]


def test_message_gets_a_streamed_reply(tiny: Settings) -> None:
    at = send(open_app(), "Write a positive review of Toy Story")
    user, reply = at.chat_message[0], at.chat_message[1]
    assert user.name == "user" and user.markdown[0].value == "Write a positive review of Toy Story"
    assert reply.name == "assistant"
    assert reply.markdown[0].value.strip(), "the reply has text"
    assert any("with RAG" in c.value for c in reply.caption)


def test_rag_toggle_makes_sources_appear_and_disappear(tiny: Settings) -> None:
    at = open_app()
    assert at.toggle(key="rag").value is True and not at.toggle(key="rag").disabled
    send(at, "Write a negative review of The Matrix")
    assert source_expanders(assistant_messages(at)[-1]), "RAG on: the reply lists its sources"
    at.toggle(key="rag").set_value(False).run()
    send(at, "Write a negative review of The Matrix")
    last = assistant_messages(at)[-1]
    assert not source_expanders(last), "RAG off: no sources"
    assert any("without RAG" in c.value for c in last.caption)
    at.toggle(key="rag").set_value(True).run()
    send(at, "Write a positive review of Gigli")
    assert source_expanders(assistant_messages(at)[-1])
    assert len(source_expanders(assistant_messages(at)[0])) == 1, "earlier replies keep their own sources"


def test_compare_mode_answers_both_ways_side_by_side(tiny: Settings) -> None:
    at = open_app()
    at.toggle(key="compare").set_value(True).run()
    send(at, "Write a positive review of The Matrix")
    replies = assistant_messages(at)
    assert len(replies) == 1
    titles = [m.value for m in replies[0].markdown if m.value in ("**With RAG**", "**Without RAG**")]
    assert titles == ["**With RAG**", "**Without RAG**"]
    assert len(source_expanders(replies[0])) == 1, "only the RAG answer has sources"


def test_new_chat_clears_the_view_and_saved_chats_reopen(tiny: Settings) -> None:
    at = send(open_app(), "Write a positive review of Toy Story")
    first_session = at.session_state["session_id"]
    assert len(at.chat_message) == 2
    at.button(key="chat_new").click().run()
    assert len(at.chat_message) == 0
    assert at.session_state["session_id"] != first_session
    at.button(key=f"chat_open_{first_session}").click().run()
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert source_expanders(at.chat_message[1]), "a reopened reply still shows its sources"


def test_rename_download_and_delete_a_chat(tiny: Settings) -> None:
    at = send(open_app(), "Write a negative review of Gigli")
    session = at.session_state["session_id"]
    at.text_input(key=f"chat_title_{session}").set_value("Gigli, harshly").run()
    at.button(key="chat_rename").click().run()
    assert at.button(key=f"chat_open_{session}").label == "Gigli, harshly"
    labels = {b.label for b in at.download_button}
    assert {"Markdown", "JSON"} <= labels
    at.button(key="chat_delete").click().run()
    assert not [b for b in at.button if b.key == f"chat_open_{session}"]
    assert len(at.chat_message) == 0


def listed_chats(at: AppTest) -> set[str]:
    return {b.key.removeprefix("chat_open_") for b in at.button if (b.key or "").startswith("chat_open_")}


def test_each_browser_sees_only_its_own_chats(tiny: Settings) -> None:
    first = send(open_app(), "Write a positive review of Toy Story")
    owner, mine = first.query_params["owner"], first.session_state["session_id"]
    assert re.fullmatch(r"[A-Za-z0-9_\-]{16,64}", owner), "a random token in the URL, not the address"
    second = send(open_app(), "Write a negative review of Gigli")
    theirs = second.session_state["session_id"]
    assert second.query_params["owner"] != owner
    assert mine in listed_chats(first.run()) and theirs not in listed_chats(first)
    assert theirs in listed_chats(second) and mine not in listed_chats(second)
    back = AppTest.from_file(APP, default_timeout=TIMEOUT)
    back.query_params["owner"] = owner  # the same browser again: its bookmarked URL finds its chats
    back.run()
    assert not back.exception and mine in listed_chats(back) and theirs not in listed_chats(back)
    forged = AppTest.from_file(APP, default_timeout=TIMEOUT)
    forged.query_params["owner"] = "cli"  # the command line's owner is not a browser's to take
    forged.run()
    assert forged.query_params["owner"] != "cli" and not listed_chats(forged) & {mine, theirs}


def test_user_and_review_text_is_never_markup(tiny: Settings) -> None:
    nasty = '<img src=x onerror="alert(1)"> **bold** [link](http://evil.example) :red[red] $x$'
    at = send(open_app(), nasty)
    shown = at.chat_message[0].markdown[0].value
    assert re.search(r"(?<!\\)[<>\[\]()*:$`!]", shown) is None, f"unescaped markup in {shown!r}"
    assert shown.replace("\\", "").replace("\u2060", "") == nasty, "yet it reads as typed (a URL broken invisibly)"
    for message in at.chat_message:  # generated text and review quotes too
        for block in message.markdown:
            assert "<" not in block.value.replace("\\<", "")
    assert len(at.html) == 0


def test_critics_opinion_shows_its_counts(tiny: Settings) -> None:
    at = send(open_app(), "What do critics think of Toy Story?")
    reply = assistant_messages(at)[-1]
    metrics = {m.label: m.value for m in reply.metric}
    assert set(metrics) >= {"Fresh", "Rotten"} and int(metrics["Fresh"]) > 0
    assert any("counted from the review data" in c.value for c in reply.caption)


def test_quick_buttons_send_a_ready_made_request(tiny: Settings) -> None:
    at = open_app()
    at.sidebar.text_input(key="quick_movie").set_value("Gigli").run()
    at.button(key="quick_negative").click().run()
    assert not at.exception, at.exception
    assert at.chat_message[0].markdown[0].value.replace("\\", "") == 'Write a negative review of "Gigli".'
    assert assistant_messages(at)[-1].markdown[0].value.strip()


def bare_settings(tiny: Settings, root: Path) -> Settings:
    """What a first run has: review data and a base model, but no index and no fine-tuned model."""
    bare = tiny.model_copy(update={"index_dir": root / "index", "chats_db": root / "chats.sqlite",
                                   "models_dir": root / "models", "reports_dir": root / "reports"})
    for item in Path(tiny.models_dir).iterdir():  # the scratch base's tokenizer, not the tuned model
        if item.name != "tuned":
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, bare.models_dir / item.name)
    return bare


def test_first_run_without_index_or_tuned_model(tiny: Settings, tmp_path: Path) -> None:
    """No index, no fine-tuned model: the page still answers (base model, RAG off) and offers to build."""
    for _ in _environment(bare_settings(tiny, tmp_path)):
        at = open_app()
        rag = at.toggle(key="rag_unavailable")
        assert rag.disabled and rag.value is False
        assert at.segmented_control(key="model_unavailable").value == "base"
        panel = " ".join(m.value for m in at.markdown)
        assert "No review index yet" in panel and "No fine-tuned model yet" in panel
        build = at.button(key="build_start")
        assert build.label == "Build the index and fine-tune" and not build.disabled
        send(at, "Write a positive review of Toy Story")
        reply = assistant_messages(at)[-1]
        assert reply.markdown[0].value.strip()
        assert not source_expanders(reply)
        assert any("without RAG" in c.value and "base model" in c.value for c in reply.caption)


def test_building_the_index_in_the_app_turns_rag_on(tiny: Settings, tmp_path: Path) -> None:
    for bare in _environment(bare_settings(tiny, tmp_path)):
        at = open_app()
        at.button(key="build_index_only").click().run()
        builder = get_builder()
        deadline = time.monotonic() + 90
        while builder.busy() and time.monotonic() < deadline:
            time.sleep(0.5)
        jobs = builder.snapshot()
        assert [(j.kind, j.state) for j in jobs] == [("index", "done")], jobs
        assert probe(bare).has_index
        at.run()
        assert not at.exception, at.exception
        assert at.toggle(key="rag").value is True and not at.toggle(key="rag").disabled
        assert "No review index yet" not in " ".join(m.value for m in at.markdown)


def test_fine_tuning_progress_is_read_from_its_output() -> None:
    builder, job = Builder(), Job("finetune")
    lines = ["10:00:01 INFO assistant.training.examples: split: 21 training reviews",
             "fine-tuning:  50%|#####     | 90/180 [01:30<01:30, loss=3.210, step=40]",
             "10:02:00 INFO assistant.model_card: tuned: validation perplexity 286.4"]
    seen = []
    for line in lines:
        builder._progress_line(job, line)
        seen.append((job.done, job.stage))
    assert seen == [(0, "split: 21 training reviews"), (40, "training, loss 3.210"),
                    (80, "evaluating: tuned: validation perplexity 286.4")]


def test_about_page_shows_the_model_card_where_there_is_one(tiny: Settings) -> None:
    at = AppTest.from_string("from ui.about import about_page\nabout_page()", default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert [e.label for e in at.expander] == ["Model card (JSON)"]
    assert any("No evaluation yet" in c.value for c in at.caption)


def test_drafts_control_reaches_the_chain(tiny: Settings) -> None:
    at = open_app()
    drafts = at.slider(key="drafts")
    assert (drafts.label, drafts.value, drafts.min, drafts.max) == ("Drafts to choose from", 4, 1, 8)
    assert "1 streams" in drafts.help and "critic's quote" in drafts.help and "longer" in drafts.help
    drafts.set_value(3).run()
    send(at, "Write a negative review of Gigli")
    captions = [c.value.replace("\\", "") for c in assistant_messages(at)[-1].caption]
    # The tiny artifacts have no sentiment probe: one draft is streamed, and the reply says why.
    assert any("Wrote one draft instead of 3" in c for c in captions), captions


def test_guidance_control_defaults_to_the_setting_and_is_shown_with_the_reply(
        tiny: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MRA_SAMPLING__GUIDANCE", "2")  # the setting is the control's default
    at = open_app()
    guidance = at.slider(key="guidance")
    assert (guidance.label, guidance.value, guidance.min, guidance.max) == ("Sentiment guidance", 2.0, 1.0, 5.0)
    assert "1 = off" in guidance.help
    guidance.set_value(2.5).run()
    send(at, "Write a negative review of Gigli")
    captions = [c.value.replace("\\", "") for c in assistant_messages(at)[-1].caption]
    assert any("sentiment guidance 2.5" in c for c in captions), captions
    at.slider(key="guidance").set_value(1.0).run()
    send(at, "Write a positive review of Gigli")
    assert not any("guidance" in c.value for c in assistant_messages(at)[-1].caption)


def test_drafts_show_the_chosen_draft_and_its_score(tiny: Settings, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.tiny import with_probe

    monkeypatch.setenv("MRA_SAMPLING__DRAFTS", "3")  # the setting is the control's default
    for _ in _environment(with_probe(tiny, tmp_path)):
        at = open_app()
        assert at.slider(key="drafts").value == 3
        send(at, "Write a positive review of Toy Story")
        reply = assistant_messages(at)[-1]
        assert reply.markdown[0].value.strip()
        captions = [c.value.replace("\\", "") for c in reply.caption]
        assert any(re.search(r"chose draft [1-3] of 3 \(0\.\d\d positive, [01]\.\d\d critic-like\) · all drafts: ", c)
                   for c in captions), \
            captions
        assert not any("Wrote one draft" in c for c in captions)
