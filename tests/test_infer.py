"""Bring your own reviews: files in the layouts people bring are read without --map (columns inferred by name and
content), an unsure one is refused with a mapping that works when pasted, and big files stream."""
from __future__ import annotations

import gzip
import json
import re
import shlex
import tracemalloc
from pathlib import Path

import pytest

from assistant.data.readers import (
    ColumnMapping,
    ReaderError,
    ReadStats,
    discover,
    infer_file,
    read_file,
)
from assistant.data.readers.infer import infer_columns
from assistant.data.readers.labels import (
    POSITIVE_FROM,
    fit_scheme,
    score_fraction,
    score_sentiment,
)
from assistant.data.readers.rows import iter_table, read_header
from assistant.data.records import Review
from assistant.data.text import normalize_sentiment
from assistant.settings import Settings
from tests.byo_files import NEW_FILM, OTHER_FILM, REVIEWS, write_byo_files
from tests.fixtures_data import write_rt_fixtures

FRESH = ["positive" if fresh else "negative" for _, _, _, fresh, *_ in REVIEWS]
FILMS = [film for film, *_ in REVIEWS]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_byo_files(tmp_path_factory.mktemp("byo"))


def read(path: Path, mapping: ColumnMapping | None = None) -> tuple[list[Review], ReadStats]:
    (found, fmt), = discover([path])
    assert fmt == "csv", "no built-in reader knows these files"
    stats = ReadStats()
    return list(read_file(path, fmt, stats, mapping)), stats


def test_kaggle_layout_with_a_movie_title_column(files: dict[str, Path]) -> None:
    reviews, stats = read(files["kaggle_titled"])
    assert (stats.rows, stats.kept) == (8, 8)
    assert [r.movie for r in reviews] == FILMS and [r.sentiment for r in reviews] == FRESH
    first = reviews[0]
    assert (first.critic, first.publication, first.score, first.date, first.top_critic) == \
           ("Ada Quill", "Harbor Times", "4/5", "2021-03-02", True)


def test_scrape_with_a_duplicated_header_and_no_labels(files: dict[str, Path]) -> None:
    assert read_header(files["scraped"]) == ["column_1", "movie", "reviews", "reviews.1"]
    reviews, _ = read(files["scraped"])
    assert [r.movie for r in reviews] == FILMS
    assert {r.sentiment for r in reviews} == {"unknown"}, "unlabeled reviews are kept as unknown"
    assert reviews[0].text.startswith("A luminous coastal mystery") and reviews[0].date == "2021-03-02"


def test_unlabeled_semicolon_quotes(files: dict[str, Path]) -> None:
    reviews, _ = read(files["quotes"])
    assert [(r.movie, r.critic, r.sentiment) for r in reviews][:2] == [
        (NEW_FILM, "Ada Quill", "unknown"), (NEW_FILM, "Bram Okoro", "unknown")]


@pytest.mark.parametrize("key", ["jsonl", "jsonl_gz"])
def test_json_lines_plain_and_gzipped(files: dict[str, Path], key: str) -> None:
    reviews, stats = read(files[key])
    assert (stats.rows, stats.kept, dict(stats.skipped)) == (9, 8, {"malformed row": 1})
    assert [r.sentiment for r in reviews] == FRESH and reviews[5].movie == OTHER_FILM
    assert reviews[2].date is None and reviews[3].date == "2021-03-09"  # a missing key is an empty value


def test_parquet_with_integer_labels_and_dates(files: dict[str, Path]) -> None:
    reviews, stats = read(files["parquet"])
    assert stats.kept == 8 and [r.sentiment for r in reviews] == FRESH
    assert [r.date for r in reviews][:2] == ["2021-03-02", "2021-03-04"]


def test_a_label_column_of_scores(files: dict[str, Path]) -> None:
    inference = infer_file(files["scores"])
    assert inference.sure and inference.mapping.labels == "scores" and inference.mapping.sentiment == "Rating"
    reviews, stats = read(files["scores"])
    expected = [score_sentiment(score) or "unknown" for *_, score, _, _ in REVIEWS[:-1]] + ["unknown"]
    assert [r.sentiment for r in reviews] == expected
    assert expected[:5] == ["positive", "positive", "negative", "negative", "positive"]  # 4/5 3.5/5 2/5 C- B+
    assert [r.score for r in reviews][:3] == ["4/5", "3.5/5", "2/5"], "the critic's own score is kept"
    assert stats.notes["no readable score: kept as unknown"] == 1


def test_an_unsure_file_is_refused_with_a_mapping_that_works_when_pasted(files: dict[str, Path]) -> None:
    path = files["ambiguous"]
    with pytest.raises(ReaderError) as excinfo:
        read(path)
    message = str(excinfo.value)
    assert "\n" not in message and "not sure" in message and "'notes' or 'remarks'" in message
    command = re.search(r"(python ingest\.py .*?--map \S+)", message)[1]
    argv = shlex.split(command)
    assert argv[:3] == ["python", "ingest.py", str(path)] and argv[3] == "--map"
    spec = argv[4]
    assert set(spec.split(",")) >= {"movie=movie", "sentiment=flag", "labels=binary"}
    reviews, _ = read(path, ColumnMapping.parse(spec))
    assert [r.sentiment for r in reviews] == FRESH and [r.movie for r in reviews] == FILMS


def test_fitted_suggestion_quotes_awkward_column_names(tmp_path: Path) -> None:
    path = tmp_path / "awkward.csv"
    rows = [f'"{film}","{quote}",{int(fresh)}' for film, _, _, fresh, _, _, quote in REVIEWS]
    path.write_text('Film,"Review, full text",flag\n' + "\n".join(rows) + "\n")
    inference = infer_file(path)
    spec = inference.mapping.to_spec()
    assert 'text="Review, full text"' in spec
    assert ColumnMapping.parse(spec) == inference.mapping
    argv = shlex.split(inference.command(path))
    assert ColumnMapping.parse(argv[4]) == inference.mapping


def test_movie_tables_are_not_taken_for_reviews(tmp_path: Path) -> None:
    fx = write_rt_fixtures(tmp_path)
    for key in ("kaggle_movies", "top_movies", "flatiron_movies"):
        inference = infer_file(fx[key])
        assert not inference.sure and inference.mapping is None, key


def test_inference_agrees_with_the_built_in_readers_on_their_files(tmp_path: Path) -> None:
    fx = write_rt_fixtures(tmp_path)
    expected = {
        "critics": dict(text="quote", sentiment="fresh", movie="title", critic="critic", date="review_date"),
        "kaggle_reviews": dict(text="review_content", sentiment="review_type", critic="critic_name",
                               publication="publisher_name", score="review_score", top_critic="top_critic"),
    }
    for key, roles in expected.items():
        inference = infer_file(fx[key])
        assert inference.sure, (key, inference.doubts)
        assert {role: getattr(inference.mapping, role) for role in roles} == roles


@pytest.mark.parametrize("values, scheme", [
    (["fresh", "rotten", "Fresh", "fresh"], "words"),
    (["POSITIVE", "NEGATIVE", "POSITIVE"], "words"),
    (["pos", "neg", "neg"], "words"),
    (["1", "0", "1", "1"], "binary"),
    (["2", "0", "2", "0"] * 10 + ["1"], "freshness"),  # a stray 1, as in the real freshness file
    (["3.5/5", "2/5", "7/10", "B+", "4 stars", "C-"], "scores"),
    (["Toy Story", "Gigli", "The Matrix"], None),
    (["7", "3", "9"], None),  # a bare number states no scale
])
def test_label_schemes_by_content(values: list[str], scheme: str | None) -> None:
    fit = fit_scheme(values)
    assert (fit.scheme if fit else None) == scheme


@pytest.mark.parametrize("score, fraction", [
    ("3.5/5", 0.7), ("7/10", 0.7), ("B+", 0.825), ("4 stars", 0.8), ("3½ stars", 0.7), ("2.5 out of 4", 0.625),
    ("80%", 0.8), ("F", 0.0), ("7", None), ("6/5", None), ("", None),
])
def test_score_fractions(score: str, fraction: float | None) -> None:
    assert score_fraction(score) == (pytest.approx(fraction) if fraction is not None else None)


def test_an_unnamed_flag_column_is_not_taken_for_a_label_silently() -> None:
    rows = [{"movie": film, "review": quote, "flag": str(i % 2)} for i, (film, *_, quote) in enumerate(REVIEWS)]
    inference = infer_columns(["movie", "review", "flag"], rows)
    assert not inference.sure and inference.doubts == ["sentiment: is 'flag' the sentiment?"]
    named = [{**row, "label": row.pop("flag")} for row in rows]
    assert infer_columns(["movie", "review", "label"], named).sure


def _many_rows(n: int):
    film, critic, publication, _, _, day, quote = REVIEWS[0]
    for i in range(n):
        yield {"title": f"{film} {i % 500}", "critic": critic, "label": "POSITIVE" if i % 3 else "NEGATIVE",
               "review": f"{quote} Number {i}."}


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".csv.gz", ".parquet"])
def test_a_big_file_streams_in_bounded_memory(tmp_path: Path, suffix: str) -> None:
    """25,000 rows (2.7 MB of review text) are read one at a time: the reader holds no more than a small, fixed
    amount (a Parquet batch, one line) however long the file is. tracemalloc measures what Python allocates
    while every row is read; holding the records would take several times the text."""
    n, bound = 25_000, 1_200_000
    path = tmp_path / f"big{suffix}"
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = list(_many_rows(n))
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=5000)
        del rows
    else:
        with gzip.open(path, "wt", encoding="utf-8") as out:
            if suffix == ".jsonl.gz":
                out.writelines(json.dumps(row) + "\n" for row in _many_rows(n))
            else:
                out.write("title,critic,label,review\n")
                out.writelines(f'"{r["title"]}",{r["critic"]},{r["label"]},"{r["review"]}"\n' for r in _many_rows(n))
    text_bytes = sum(len(r["review"]) for r in _many_rows(n))
    assert text_bytes > 2 * bound
    tracemalloc.start()
    try:
        stats, count = ReadStats(), 0
        for record in read_file(path, "csv", stats):
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == stats.kept == n and record.movie == f"{NEW_FILM} {(n - 1) % 500}"
    assert peak < bound, f"peak {peak:,} bytes while reading {text_bytes:,} bytes of reviews"


def test_rows_are_read_lazily(tmp_path: Path) -> None:
    """Taking the first rows of a file does not read the rest: a damaged tail is never reached."""
    path = tmp_path / "head.jsonl.gz"
    good = b"".join(json.dumps(row).encode() + b"\n" for row in _many_rows(5000))
    path.write_bytes(gzip.compress(good)[:-40])  # a truncated gzip stream: reading to the end fails
    assert infer_file(path).sure, "the inference looks at the first rows only"
    rows = iter_table(path, ReadStats())
    assert next(rows)["title"] == f"{NEW_FILM} 0"
    with pytest.raises(ReaderError, match="unreadable file"):
        list(read_file(path, "csv", ReadStats()))


REAL = Settings().data_dir


@pytest.mark.skipif(not (REAL / "flatiron").is_dir(), reason="real Rotten Tomatoes mirror not present")
def test_the_score_cut_off_agrees_with_critics_labels_on_the_real_data() -> None:
    """The threshold in readers/labels.py, checked on every review in the mirror that has a score and a label."""
    pairs = [(row["rating"], row["fresh"]) for row in
             iter_table(REAL / "flatiron" / "rt.reviews.tsv.gz", ReadStats(), cp1252=True)]
    pairs += [(row["review_score"], row["review_type"]) for row in
              iter_table(REAL / "kaggle-sample" / "rotten_tomatoes_critic_reviews.csv", ReadStats())]
    judged = [(score_sentiment(s), normalize_sentiment(label)) for s, label in pairs]
    judged = [(a, b) for a, b in judged if a and b]
    agree = sum(a == b for a, b in judged) / len(judged)
    assert len(judged) > 40_000 and POSITIVE_FROM == 0.6
    assert agree > 0.94, agree
