"""The chat's warm-up at start: the first request's one-off costs paid before anyone asks, nothing remembered."""
from __future__ import annotations

import logging

from assistant.chat.loading import warm_up_chat
from assistant.chat.memory import CLI_OWNER
from tests.tiny import tiny_artifacts, tiny_assistant  # noqa: F401 - fixtures


def test_warm_up_writes_one_reply_with_the_default_model_and_keeps_no_chat(tiny_artifacts, embeddings, tmp_path):
    assistant = tiny_assistant(tiny_artifacts, embeddings, chats_db=tmp_path / "chats.sqlite")
    generator = assistant.generator(assistant.settings.default_model)
    before = generator.stats.prompts
    assert warm_up_chat(assistant) > 0
    assert generator.stats.prompts == before + 1  # the whole chain ran, down to the model
    assert assistant.memory.list_sessions(CLI_OWNER) == []


def test_a_failing_warm_up_is_logged_and_the_app_goes_on(tiny_artifacts, embeddings, tmp_path, monkeypatch, caplog):
    assistant = tiny_assistant(tiny_artifacts, embeddings, chats_db=tmp_path / "chats.sqlite")

    def broken(*args, **kwargs):
        raise RuntimeError("the store went away\nwith a second line")

    monkeypatch.setattr(assistant, "stream", broken)
    with caplog.at_level(logging.WARNING, logger="assistant.chat.loading"):
        warm_up_chat(assistant)
    assert "chat warm-up failed (RuntimeError: the store went away)" in caplog.text
