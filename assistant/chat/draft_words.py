"""Which drafts use a word no one uses, for ranking them: the garbled-word check (assistant/data/garbled.py) with
the store's vocabulary.

    words = DraftWords.counting(store, cache=index_dir / VOCABULARY_CACHE)   # counts in the background
    words.garbled(["A craftfulness of Keoghan"], shown=["Barry Keoghan is superb"])   # -> [True]; None until ready

The decoding rule for real words (assistant/model/rules/real_words.py) keeps lower-case words real as they are
written; a capitalised word it leaves alone (a name), so without retrieval a draft may still name "Kozinski" or
"Rockhart", whom no review of any film mentions. The store's vocabulary (every word its reviews, critics and
titles use) tells a name a critic used from one the model made up. Counting it takes about a second over the full
store's 112,000 documents (more on a busy machine), so it is counted in a background thread when the chat opens
(the first reply does not wait for it) and kept in the store's folder for the next start; until it is ready, and
without the English word list, drafts are ranked as before.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.data.english import english_words
from assistant.data.garbled import GarbledCheck, store_vocabulary

log = logging.getLogger(__name__)


class DraftWords:
    """The garbled-word check over one store's vocabulary, ready once counted (`ready`)."""

    def __init__(self, check: GarbledCheck | None = None, *, counting: bool = False) -> None:
        self._check = check if check is not None and check.available else None
        self.ready = threading.Event()  # set once there is nothing left to count
        if not counting:
            self.ready.set()

    @classmethod
    def counting(cls, store: Any, cache: Path | None) -> DraftWords:
        """A check whose vocabulary is counted in a background thread (read from `cache` when it is current)."""
        words = cls(counting=True)
        threading.Thread(target=words._count, args=(store, cache), name="store-vocabulary", daemon=True).start()
        return words

    def _count(self, store: Any, cache: Path | None) -> None:
        try:
            english = english_words()
            if english is not None:
                self._check = GarbledCheck(english, store_vocabulary(store, cache))
        except Exception as exc:  # the check is a refinement: without it drafts are ranked as before
            log.warning("drafts are ranked without the word check: the store's vocabulary could not be read (%s)",
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        finally:
            self.ready.set()

    @property
    def check(self) -> GarbledCheck | None:
        """The check itself, once counted (the evaluation measures replies with the same one); None before."""
        return self._check

    def garbled(self, texts: Sequence[str], shown: Sequence[str] = ()) -> list[bool] | None:
        """Whether each text has a word that is not English, not the store's and not among `shown` (what the model
        was given); None while the vocabulary is being counted or when there is no check."""
        check = self._check
        if check is None:
            return None
        return [bool(check.words(text, shown)) for text in texts]
