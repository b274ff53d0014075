"""Small hand-made review files in the layouts people bring (Kaggle downloads, scrapes, exports), none of which a
built-in reader knows; every film in them is absent from the fixture mirror (tests/fixtures_data.py).

    files = write_byo_files(tmp_path)   # layout name -> path
"""
from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import date
from pathlib import Path

NEW_FILM = "The Velvet Lighthouse"
OTHER_FILM = "Paper Moons Over Ohio"

# (film, critic, publication, fresh?, score, date, quote): long enough to read as real reviews.
REVIEWS = [
    (NEW_FILM, "Ada Quill", "Harbor Times", True, "4/5", "2021-03-02",
     "A luminous coastal mystery whose keeper's secrets unfold with patience, wit and real tenderness."),
    (NEW_FILM, "Bram Okoro", "Northern Screen", True, "3.5/5", "2021-03-04",
     "The lighthouse itself becomes a character, and the final storm sequence is breathtaking filmmaking."),
    (NEW_FILM, "Cleo Marsh", "Daily Lantern", False, "2/5", "2021-03-05",
     "Handsome to look at, but the script drifts like fog and the mystery never gathers any weight."),
    (NEW_FILM, "Dev Harlan", "Reel Weekly", False, "C-", "2021-03-09",
     "A slow, self-serious slog that mistakes long silences for depth and wastes a terrific cast."),
    (NEW_FILM, "Esme Valdez", "Film Quarterly Review", True, "B+", "2021-03-11",
     "Quietly gripping from start to finish, with a lead performance of remarkable restraint and warmth."),
    (OTHER_FILM, "Ada Quill", "Harbor Times", True, "8/10", "2019-07-01",
     "A wistful road movie full of small kindnesses, and funnier than its melancholy poster suggests."),
    (OTHER_FILM, "Finn Albright", "The Courier", False, "1.5/4", "2019-07-03",
     "Meandering and thin, a collection of quirky detours in search of a story worth telling at all."),
    (OTHER_FILM, "Gia Romano", "Midwest Cinema", True, "4 stars", "2019-07-08",
     "Every frame glows with affection for its drifters, and the ending earns every one of its tears."),
]


def _csv(header: list[str], rows: list[list], delimiter: str = ",") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows([header, *rows])
    return buf.getvalue().encode("utf-8")


def kaggle_titled(folder: Path) -> Path:
    """The Kaggle critic-reviews layout, but the movie is a `movie_title` column, not rotten_tomatoes_link."""
    header = ["movie_title", "critic_name", "top_critic", "publisher_name", "review_type", "review_score",
              "review_date", "review_content"]
    rows = [[film, critic, str(i % 3 == 0), pub, "Fresh" if fresh else "Rotten", score, day, quote]
            for i, (film, critic, pub, fresh, score, day, quote) in enumerate(REVIEWS)]
    return _write(folder / "critic_reviews_2021.csv", _csv(header, rows))


def scraped(folder: Path) -> Path:
    """A scrape: an unnamed index column, and `reviews` twice (the quote, then when it was posted); no labels."""
    rows = [[i, film, quote, _spelled(day)] for i, (film, _, _, _, _, day, quote) in enumerate(REVIEWS)]
    return _write(folder / "scraped_reviews.csv", _csv(["", "movie", "reviews", "reviews"], rows))


def unlabeled_quotes(folder: Path) -> Path:
    """Semicolon-separated quotes with film and critic, as a spreadsheet in many locales exports them."""
    rows = [[film, critic, quote] for film, critic, _, _, _, _, quote in REVIEWS]
    return _write(folder / "quotes.csv", _csv(["Film", "Critic", "Quote"], rows, delimiter=";"))


def jsonl(folder: Path, gz: bool = False) -> Path:
    """JSON Lines with POSITIVE/NEGATIVE labels, a missing key, a number and one broken line."""
    lines = []
    for i, (film, critic, pub, fresh, _, day, quote) in enumerate(REVIEWS):
        obj = {"title": film, "reviewer": critic, "sentiment": "POSITIVE" if fresh else "NEGATIVE",
               "reviewText": quote, "helpful_votes": i}
        if i != 2:
            obj["published"] = day
        lines.append(json.dumps(obj))
    lines.insert(4, '{"title": "broken line", ')
    body = ("\n".join(lines) + "\n").encode("utf-8")
    name = "reviews.jsonl.gz" if gz else "reviews.jsonl"
    return _write(folder / name, gzip.compress(body) if gz else body)


def parquet(folder: Path) -> Path:
    """Parquet with a 0/1 integer label and a date column, as a Hugging Face-style export."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "movie": [r[0] for r in REVIEWS],
        "text": [r[6] for r in REVIEWS],
        "label": [int(r[3]) for r in REVIEWS],
        "date": [date.fromisoformat(r[5]) for r in REVIEWS],
    })
    path = folder / "reviews.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=3)  # several row groups, as a large file has
    return path


def scores(folder: Path) -> Path:
    """A label column of scores only: 3.5/5, 7/10, B+, 4 stars ... (and one blank)."""
    rows = [[film, critic, score, quote] for film, critic, _, _, score, _, quote in REVIEWS]
    rows[-1][2] = ""
    return _write(folder / "scored_reviews.csv", _csv(["Film", "Critic", "Rating", "Review"], rows))


def ambiguous(folder: Path) -> Path:
    """Two long free-text columns with uninformative names and an unnamed 0/1 flag: nobody could be sure."""
    rows = [[film, quote, f"Seen at a festival screening; {critic} adds that the score is worth hearing.",
             int(fresh)] for film, critic, _, fresh, _, _, quote in REVIEWS]
    return _write(folder / "export_v2.csv", _csv(["movie", "notes", "remarks", "flag"], rows))


def write_byo_files(root: Path) -> dict[str, Path]:
    root = Path(root)
    return {
        "kaggle_titled": kaggle_titled(root), "scraped": scraped(root), "quotes": unlabeled_quotes(root),
        "jsonl": jsonl(root), "jsonl_gz": jsonl(root, gz=True), "parquet": parquet(root),
        "scores": scores(root), "ambiguous": ambiguous(root),
    }


def _spelled(iso: str) -> str:
    d = date.fromisoformat(iso)
    return f"{d:%b} {d.day}, {d.year}"


def _write(path: Path, body: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path
