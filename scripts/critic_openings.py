"""Write assistant/data/critic_openings.json: how the training films' critics open their quotes
(assistant/data/openings.py says what the table holds and why).

    python scripts/critic_openings.py          # from the store the settings name (MRA_INDEX_DIR), training split only

Only the training split's reviews are counted (the same movie-disjoint split as the fine-tune's), so the
evaluation's held-out films stay out of the table the decoding rule reads.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.data.english import english_words  # noqa: E402
from assistant.data.openings import TABLE, count_name_openings, count_openings  # noqa: E402
from assistant.settings import get_settings  # noqa: E402
from assistant.training.examples import open_split  # noqa: E402


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _, split = open_split(get_settings())
    english = english_words()
    if english is None:
        logging.error("the English word list is needed to tell names from words: pip install pyspellchecker")
        return 1
    by_sentiment = {}
    for sentiment in ("positive", "negative"):
        docs = [doc for doc in split.train if doc.metadata.get("sentiment") == sentiment]
        counted = count_openings(doc.page_content for doc in docs)
        counted["contexts"].update(count_name_openings(((doc.page_content, doc.metadata.get("movie")) for doc in docs),
                                                       english.__contains__))
        by_sentiment[sentiment] = counted
    table = {"source": f"training split of the review store: {len(split.train)} reviews",
             "by_sentiment": by_sentiment}
    TABLE.write_text(json.dumps(table, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    for sentiment, counted in by_sentiment.items():
        logging.info("%s: %d quotes, %d contexts", sentiment, counted["quotes"], len(counted["contexts"]))
    logging.info("%s: %d KB", TABLE, TABLE.stat().st_size // 1024)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
