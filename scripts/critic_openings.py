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
from assistant.data.facts_card import split_names  # noqa: E402
from assistant.data.openings import TABLE, count_name_openings, count_openings, film_roles  # noqa: E402
from assistant.settings import get_settings  # noqa: E402
from assistant.training.examples import open_split  # noqa: E402


def people_roles(store) -> dict[str, dict[str, str]]:
    """Each film's people by folded last name -> "director" or "cast", from the facts sources' documents."""
    people: dict[str, dict[str, str]] = {}
    for key, director, cast in store.sql("SELECT movie_key, json_extract(meta, '$.director'), "
                                         "json_extract(meta, '$.cast') FROM docs WHERE kind = 'movie'"):
        named = people.setdefault(key, {})
        for name in split_names(director):
            if name.lower() != "unknown director":
                named[name] = "director"
        for name in split_names(cast):
            named.setdefault(name, "cast")
    return {key: film_roles(named) for key, named in people.items()}


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    store, split = open_split(get_settings())
    roles = people_roles(store)
    english = english_words()
    if english is None:
        logging.error("the English word list is needed to tell names from words: pip install pyspellchecker")
        return 1
    by_sentiment = {}
    for sentiment in ("positive", "negative"):
        docs = [doc for doc in split.train if doc.metadata.get("sentiment") == sentiment]
        counted = count_openings(doc.page_content for doc in docs)
        counted["contexts"].update(count_name_openings(
            ((doc.page_content, doc.metadata.get("movie"), roles.get(doc.metadata.get("movie_key"), {}))
             for doc in docs), english.__contains__))
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
