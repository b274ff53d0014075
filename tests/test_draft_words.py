"""The chat's word check for drafts: the store's vocabulary counted in the background, made-up words flagged."""
from __future__ import annotations

import threading

import pytest

from assistant.chat.draft_words import DraftWords
from assistant.data.english import english_words
from assistant.data.garbled import GarbledCheck


class _Store:
    manifest = type("M", (), {"updated": 1.0})()

    def __init__(self, directory, gate: threading.Event | None = None, fail: bool = False):
        self.directory, self.gate, self.fail = directory, gate, fail

    def sql(self, query, params=()):
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail:
            raise OSError("disk I/O error")
        return [("Keoghan is superb on the island of Inisherin", "Ann Critic", None, "The Banshees of Inisherin")]


def test_a_check_flags_made_up_words_and_passes_the_stores_and_the_shown_ones():
    words = DraftWords(GarbledCheck({"the", "film", "is", "a", "triumph", "of", "and"}, {"keoghan"}))
    assert words.ready.is_set()
    texts = ["The film is a triumph of Keoghan.", "The film is a triumph of Rockhart.", "A triumph of Padraic."]
    assert words.garbled(texts) == [False, True, True]
    assert words.garbled(texts, shown=["Padraic is Colin Farrell's"]) == [False, True, False]


def test_the_vocabulary_is_counted_in_the_background_and_checks_nothing_until_then(tmp_path):
    if english_words() is None:
        pytest.skip("pyspellchecker is not installed")
    gate = threading.Event()
    words = DraftWords.counting(_Store(tmp_path / "gen-1", gate), tmp_path / ".vocabulary.json")
    assert words.garbled(["Keoghan is superb."]) is None and not words.ready.is_set()  # counting: unchecked
    gate.set()
    assert words.ready.wait(10)
    assert words.garbled(["Keoghan is superb.", "Rockhart is superb."]) == [False, True]
    assert (tmp_path / ".vocabulary.json").exists()  # kept for the next start


def test_a_vocabulary_that_cannot_be_read_leaves_drafts_unchecked_with_a_warning(tmp_path, caplog):
    if english_words() is None:
        pytest.skip("pyspellchecker is not installed")
    words = DraftWords.counting(_Store(tmp_path / "gen-1", fail=True), tmp_path / ".vocabulary.json")
    assert words.ready.wait(10)
    assert words.garbled(["Rockhart is superb."]) is None
    assert "without the word check" in caplog.text and "disk I/O error" in caplog.text


def test_no_store_no_check():
    words = DraftWords()
    assert words.ready.is_set() and words.garbled(["anything"]) is None
