"""Readers on the invented fixtures (exact counts) and, when present, on the real mirror."""
from __future__ import annotations

import gzip
import shutil
from collections import Counter
from pathlib import Path

import pytest

from assistant.data.readers import (
    ColumnMapping,
    ReaderError,
    ReadStats,
    detect_format,
    discover,
    read_file,
    read_hub,
    read_paths,
)
from assistant.data.records import MovieFacts, Review, movie_key
from assistant.settings import Settings

try:
    from tests.fixtures_data import (
        CSV_MAPPING,
        FIXTURE_STATS,
        MOVIES,
        SHARED_QUOTE,
        write_kaggle,
        write_rt_fixtures,
    )
except ImportError:  # tests/ run as a rootdir without a package
    from fixtures_data import (
        CSV_MAPPING,
        FIXTURE_STATS,
        MOVIES,
        SHARED_QUOTE,
        write_kaggle,
        write_rt_fixtures,
    )

EXPECTED_FORMATS = {
    "critics": "critics", "critics_2020": "critics", "kaggle_reviews": "kaggle_reviews",
    "kaggle_movies": "kaggle_movies", "flatiron_reviews": "flatiron_reviews", "flatiron_movies": "flatiron_movies",
    "polarity_pos": "polarity", "polarity_neg": "polarity", "freshness": "freshness", "top_movies": "top_movies",
    "csv": "csv",
}


@pytest.fixture()
def fx(tmp_path: Path) -> dict[str, Path]:
    return write_rt_fixtures(tmp_path / "data")


def read(path: Path, mapping: ColumnMapping | None = None) -> tuple[list, ReadStats]:
    stats = ReadStats()
    records = list(read_file(path, detect_format(path), stats, mapping))
    return records, stats


@pytest.mark.parametrize("key", sorted(FIXTURE_STATS))
def test_each_reader_counts_exactly(fx: dict[str, Path], key: str) -> None:
    records, stats = read(fx[key], ColumnMapping.parse(CSV_MAPPING))
    rows, kept, skipped = FIXTURE_STATS[key]
    assert (stats.rows, stats.kept, dict(stats.skipped)) == (rows, kept, skipped)
    assert stats.rows == stats.kept + stats.skipped_total
    assert len(records) == kept


@pytest.mark.parametrize("key", sorted(EXPECTED_FORMATS))
def test_detect_format(fx: dict[str, Path], key: str) -> None:
    assert detect_format(fx[key]) == EXPECTED_FORMATS[key]


@pytest.mark.parametrize("key", ["critics", "kaggle_reviews", "kaggle_movies", "freshness", "top_movies"])
def test_detect_format_by_header_when_renamed(fx: dict[str, Path], tmp_path: Path, key: str) -> None:
    renamed = tmp_path / "renamed.csv"
    shutil.copy(fx[key], renamed)
    assert detect_format(renamed) == EXPECTED_FORMATS[key]


def test_detect_format_gzipped_csv(fx: dict[str, Path], tmp_path: Path) -> None:
    packed = tmp_path / "pull.csv.gz"
    packed.write_bytes(gzip.compress(fx["critics"].read_bytes()))
    assert detect_format(packed) == "critics"
    assert len(list(read_file(packed, "critics", ReadStats()))) == FIXTURE_STATS["critics"][1]


def test_critics_cleaning(fx: dict[str, Path]) -> None:
    records, _ = read(fx["critics"])
    by_critic = {(r.critic, r.movie): r for r in records}
    assert by_critic["Basil Thorne", "Toy Story"].text.startswith("It's the rare family film")
    assert "&" in by_critic["Cora Vance", "Toy Story"].text and "&amp;" not in by_critic["Cora Vance", "Toy Story"].text
    assert by_critic["Cora Vance", "Toy Story"].date is None  # 1800-01-01 placeholder
    assert by_critic["Dev Okafor", "Toy Story"].date is None  # 2000-01-01 placeholder of the RT API
    assert by_critic["Gus Hale", "Toy Story"].sentiment == "unknown"  # fresh="none"
    assert by_critic["Ada Lumen", "Toy Story"].publication == "Evening Ledger"
    assert by_critic["Ada Lumen", "Toy Story"].movie_id == "imdb:tt0114709"
    assert {r.movie for r in records} == set(MOVIES)
    assert all(r.source == "critics_2013.csv" for r in records)


def test_duplicate_quote_across_critics_files_is_one_document(fx: dict[str, Path]) -> None:
    old = next(r for r in read(fx["critics"])[0] if r.text == SHARED_QUOTE)
    new = next(r for r in read(fx["critics_2020"])[0] if r.text == SHARED_QUOTE)
    assert (old.movie, new.movie) == ("Toy Story", "Toy Story")  # "toy story" tidied
    assert old.key == new.key == "toy story"
    assert old.doc_id == new.doc_id


def test_fixture_movies_have_both_sentiments(fx: dict[str, Path]) -> None:
    reviews = [r for key in ("critics", "critics_2020", "kaggle_reviews") for r in read(fx[key])[0]]
    counts = Counter((r.key, r.sentiment) for r in reviews)
    for title in MOVIES:
        key = movie_key(title)
        assert counts[key, "positive"] >= 3 and counts[key, "negative"] >= 3, title


def test_kaggle_reviews_join_titles(fx: dict[str, Path]) -> None:
    records, _ = read(fx["kaggle_reviews"])
    first = records[0]
    assert (first.movie, first.movie_id, first.score, first.top_critic) == ("Toy Story", "kaggle:m/toy_story", "4/5", True)
    orphan = next(r for r in records if r.movie_id == "kaggle:m/unknown_film")
    assert orphan.movie is None and orphan.key == "kaggle:m/unknown_film"


def test_kaggle_reviews_without_movies_file(tmp_path: Path) -> None:
    paths = write_kaggle(tmp_path, with_movies=False)
    records, stats = read(paths["kaggle_reviews"])
    assert stats.kept == FIXTURE_STATS["kaggle_reviews"][1]
    assert all(r.movie is None and r.movie_id.startswith("kaggle:m/") for r in records)


def test_kaggle_movies_facts(fx: dict[str, Path]) -> None:
    records, _ = read(fx["kaggle_movies"])
    toy = records[0]
    assert isinstance(toy, MovieFacts)
    assert (toy.title, toy.movie_id, toy.year, toy.rating) == ("Toy Story", "kaggle:m/toy_story", "1995", "G")
    assert (toy.critic_score, toy.audience_score) == ("100", "92")
    assert len(toy.cast.split(", ")) == 10
    assert toy.consensus and toy.synopsis and toy.director == "John Lasseter"
    reviews, _ = read(fx["kaggle_reviews"])
    assert toy.key == reviews[0].key


def test_flatiron(fx: dict[str, Path]) -> None:
    reviews, stats = read(fx["flatiron_reviews"])
    assert stats.notes["decoded as cp1252"] == 1
    assert reviews[1].text == "The director's best work in years."
    assert reviews[1].top_critic is True and reviews[1].date == "2018-05-23"
    assert {r.movie_id for r in reviews} == {"flatiron:1", "flatiron:2"} and all(r.movie is None for r in reviews)
    assert reviews[-1].text == 'Continuing the "slow cinema" tradition, quietly devastating.'
    movies, _ = read(fx["flatiron_movies"])
    assert [(m.title, m.movie_id, m.year) for m in movies] == [(None, "flatiron:1", "1971"), (None, "flatiron:2", "2012")]
    assert movies[0].genre == "Action and Adventure, Comedy"
    assert movies[0].key == reviews[0].key == "flatiron:1"


def test_polarity_detokenized(fx: dict[str, Path]) -> None:
    pos, stats = read(fx["polarity_pos"])
    assert [r.sentiment for r in pos] == ["positive"] * 4
    assert pos[0].text == "It isn't every day a sequel is this good, but this one earns its \"classic\" label."
    assert pos[1].text == "A warm, funny (and surprisingly moving) film that doesn't talk down to kids."
    assert pos[3].text == "A charming café romance that can't help but win you over."
    assert stats.notes["decoded as cp1252"] == 1
    neg, _ = read(fx["polarity_neg"])
    assert neg[0].text == "It's a dull, plodding affair that won't hold anyone's attention."
    assert all(r.sentiment == "negative" and r.movie is None for r in neg)


def test_freshness(fx: dict[str, Path]) -> None:
    records, _ = read(fx["freshness"])
    assert [(r.sentiment, r.text) for r in records] == [
        ("positive", "A sharp, surprising comedy with a big heart."),
        ("negative", "A lifeless remake that forgets why the original worked."),
        ("positive", "Un film magnifique, déjà culte."),
        ("negative", "It's a chore to sit through."),
    ]


def test_top_movies(fx: dict[str, Path]) -> None:
    records, _ = read(fx["top_movies"])
    assert [(m.title, m.year) for m in records] == [("Toy Story", "1995"), ("The Matrix", "1999"), ("Gigli", "2003")]
    matrix = records[1]
    assert matrix.rating == "R" and matrix.extra["rating_reasons"] == "Sci-Fi Violence, Brief Language"
    assert (matrix.critic_score, matrix.audience_score) == ("88", "80")
    assert len(matrix.cast.split(", ")) == 10


def test_generic_csv_mapping(fx: dict[str, Path]) -> None:
    records, _ = read(fx["csv"], ColumnMapping.parse(CSV_MAPPING))
    assert [(r.movie, r.sentiment, r.critic, r.publication) for r in records] == [
        ("Toy Story", "positive", "Quinn Fox", "Pop Blog"), ("Gigli", "negative", "Quinn Fox", "Pop Blog")]
    # Column names match regardless of case; without a sentiment column reviews are "unknown".
    records, stats = read(fx["csv"], ColumnMapping.parse("text=words,movie=FILM"))
    assert stats.kept == 3 and {r.sentiment for r in records} == {"unknown"}


def test_column_mapping_parse() -> None:
    mapping = ColumnMapping.parse(" text = Review , sentiment=Freshness, labels=freshness ")
    assert (mapping.text, mapping.sentiment, mapping.labels) == ("Review", "Freshness", "freshness")
    for bad, message in [("sentiment=Freshness", "text="), ("text=Review,stars=Score", "unknown mapping field"),
                         ("text", "expected field=column"), ("text=Review,labels=stars", "labels=")]:
        with pytest.raises(ValueError, match=message):
            ColumnMapping.parse(bad)


def test_generic_csv_errors(fx: dict[str, Path]) -> None:
    # Three-word quotes and a label column with a stray "maybe": too little to be sure of, so the reader
    # refuses and offers the mapping it would use, which is the fixture's own.
    with pytest.raises(ReaderError, match="not sure|cannot tell") as excinfo:
        read_file(fx["csv"], "csv", ReadStats())
    assert f"--map {CSV_MAPPING}" in one_line_error(excinfo)
    with pytest.raises(ReaderError, match="'Nope'"):
        read_file(fx["csv"], "csv", ReadStats(), ColumnMapping(text="Nope"))


def test_discover_directory(fx: dict[str, Path]) -> None:
    root = fx["critics"].parent.parent
    (root / "empty.csv").write_bytes(b"")
    (root / ".hidden").mkdir()
    shutil.copy(fx["critics"], root / ".hidden" / "critics_copy.csv")
    found = discover([root])
    expected = sorted((p, EXPECTED_FORMATS[k]) for k, p in fx.items() if k not in ("readme", "csv"))
    assert found == expected
    assert discover([root], include_csv=True) == sorted(expected + [(fx["csv"], "csv")])
    assert discover([fx["csv"], root]) == sorted(expected + [(fx["csv"], "csv")])  # named files always count
    assert discover([fx["critics"], root / "critics", root]) == expected  # each file once


def test_read_paths_collects_stats(fx: dict[str, Path]) -> None:
    stats: dict[Path, ReadStats] = {}
    records = list(read_paths([fx["critics"].parent.parent], stats=stats))
    assert len(records) == sum(s.kept for s in stats.values())
    assert sum(isinstance(r, Review) for r in records) > sum(isinstance(r, MovieFacts) for r in records) > 0


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_reader_error_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    for call in (lambda: discover([missing]), lambda: detect_format(missing),
                 lambda: read_file(missing, "critics", ReadStats())):
        with pytest.raises(ReaderError) as excinfo:
            call()
        assert one_line_error(excinfo) == f"{missing}: no such file or directory"


def test_reader_error_unknown_format(fx: dict[str, Path], tmp_path: Path) -> None:
    notes = tmp_path / "notes.json"
    notes.write_text("{}")
    with pytest.raises(ReaderError) as excinfo:
        discover([notes])
    assert "unknown format" in one_line_error(excinfo)
    with pytest.raises(ReaderError) as excinfo:
        read_file(fx["critics"], "parquet", ReadStats())
    assert "unknown format 'parquet'" in one_line_error(excinfo)


def test_reader_error_empty_and_unreadable(tmp_path: Path) -> None:
    empty = tmp_path / "critics.csv"
    empty.write_bytes(b"  \n")
    with pytest.raises(ReaderError) as excinfo:
        read_file(empty, "critics", ReadStats())
    assert one_line_error(excinfo) == f"{empty}: empty file"
    with pytest.raises(ReaderError, match="empty file"):
        discover([empty])
    broken = tmp_path / "rt.reviews.tsv.gz"
    broken.write_bytes(b"not gzip at all\n")
    with pytest.raises(ReaderError) as excinfo:
        read_file(broken, "flatiron_reviews", ReadStats())
    assert "unreadable file" in one_line_error(excinfo)


def test_header_only_file_reads_nothing(tmp_path: Path) -> None:
    path = tmp_path / "rotten_tomatoes_reviews.csv"
    path.write_text("Freshness,Review\n")
    stats = ReadStats()
    assert list(read_file(path, "freshness", stats)) == [] and stats.rows == 0


def test_hub_reader_parses_parquet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from assistant.data.readers import hub

    table = pa.table({"text": ["it is n't bad at all . ", "a dull , dull film . ", "", "who knows ."],
                      "label": [1, 0, 1, -1]})
    calls = []

    def fake_download(repo_id: str, filename: str, **kwargs) -> str:
        calls.append((repo_id, filename, kwargs["repo_type"]))
        path = tmp_path / filename
        pq.write_table(table, path)
        return str(path)

    monkeypatch.setattr(hub, "hf_hub_download", fake_download)
    stats = ReadStats()
    records = list(read_hub(stats, splits=("train",)))
    assert calls == [(hub.HUB_REPO, "train.parquet", "dataset")]
    assert [(r.text, r.sentiment) for r in records] == [("It isn't bad at all.", "positive"),
                                                         ("A dull, dull film.", "negative")]
    assert (stats.rows, stats.kept, dict(stats.skipped)) == (4, 2, {"empty text": 1, "unknown label": 1})
    assert records[0].source == f"hub:{hub.HUB_REPO}/train"


REAL_DATA = Settings().data_dir


@pytest.mark.skipif(not REAL_DATA.is_dir(), reason="real Rotten Tomatoes mirror not present")
def test_real_mirror_reads_plausibly() -> None:
    totals: Counter = Counter()
    files = discover([REAL_DATA])
    assert len(files) >= 12
    for path, fmt in files:
        stats = ReadStats()
        for record in read_file(path, fmt, stats):
            totals[type(record).__name__] += 1
        assert stats.kept > 0, path
        assert stats.rows == stats.kept + stats.skipped_total, path
        assert stats.skipped.get("malformed row", 0) <= stats.rows // 100, (path, stats)
    assert totals["Review"] > 100_000
    assert totals["MovieFacts"] > 2_000
