"""`ingest.py FILE --dry-run` and a real ingest of files the fixtures do not have: the dry run reads a few rows,
embeds and writes nothing; after the ingest a CLI started afresh knows the new films and cites their reviews."""
from __future__ import annotations

import io
import json
import shlex
import shutil
import sys

import pytest

import ingest as ingest_cli
from assistant.data.ingestion import ingest
from assistant.settings import get_settings
from tests.byo_files import NEW_FILM, OTHER_FILM, REVIEWS, ambiguous, kaggle_titled
from tests.tiny import tiny_artifacts, tiny_env  # noqa: F401 - tiny_artifacts is a pytest fixture


@pytest.fixture
def cli(capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture):
    """Run ingest.py's main in this process: (exit code, stdout, the error lines it logged)."""

    def run(argv: list[str]) -> tuple[int, str, list[str]]:
        caplog.clear()
        code = ingest_cli.main(argv)
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        return code, capsys.readouterr().out, errors

    return run


@pytest.fixture
def no_embedding(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dry run must neither embed nor open a store writer."""
    import assistant.data.embeddings as embeddings_module
    import assistant.data.store_writer as writer_module

    def refuse(*args, **kwargs):
        raise AssertionError("a dry run embedded or wrote")

    monkeypatch.setattr(embeddings_module, "make_embeddings", refuse)
    monkeypatch.setattr(writer_module.StoreWriter, "__init__", refuse)


def test_dry_run_reports_format_mapping_labels_and_counts(tmp_path, cli, no_embedding) -> None:
    path = kaggle_titled(tmp_path / "files")
    index = tmp_path / "index"
    code, out, _ = cli([str(path), "--dry-run", "--rows", "5", "--index", str(index)])
    assert code == 0
    assert f"{path}: csv, columns inferred (confidence 1.00)" in out
    assert "mapping: --map text=review_content,sentiment=review_type,movie=movie_title," in out
    assert "labels = words:" in out
    assert "first 5 rows: 5 kept (negative 2, positive 3), skipped: none" in out
    assert f"movies: 1 ({NEW_FILM})" in out
    assert out.rstrip().endswith("Dry run: nothing was embedded or written.")
    assert not index.exists(), "the dry run wrote nothing"

    code, out, _ = cli([str(path), "--dry-run", "--json"])
    (data,) = json.loads(out)
    assert code == 0 and data["ok"] and data["format"] == "csv" and data["container"] == "csv"
    assert (data["rows"], data["kept"], data["skipped"]) == (8, 8, {})
    assert data["sentiments"] == {"positive": 5, "negative": 3}
    assert data["movies"] == [NEW_FILM, OTHER_FILM] and data["examples"][0]["score"] == "4/5"


def test_dry_run_counts_what_would_be_skipped_and_why(tmp_path, cli, no_embedding) -> None:
    path = tmp_path / "mixed.csv"
    rows = [f'"{film}","{quote}",{"fresh" if fresh else "rotten"}' for film, _, _, fresh, _, _, quote in REVIEWS * 2]
    rows[1] = f'"{NEW_FILM}","",fresh'  # no text
    rows[2] = f'"{NEW_FILM}","{REVIEWS[2][6]}",meh'  # a label the scheme cannot read (1 in 16: still sure)
    path.write_text("movie,review,verdict\n" + "\n".join(rows) + "\n")
    code, out, _ = cli([str(path), "--dry-run", "--json"])
    (data,) = json.loads(out)
    assert code == 0 and data["mapping"] == "text=review,sentiment=verdict,movie=movie,labels=words"
    assert (data["rows"], data["kept"], data["skipped"]) == (16, 14, {"empty text": 1, "unknown label": 1})


def test_an_unsure_file_is_refused_and_the_pasted_command_works(tmp_path, cli, no_embedding) -> None:
    path = ambiguous(tmp_path / "files")
    code, out, errors = cli([str(path), "--index", str(tmp_path / "index")])
    assert code == 2 and out == ""
    (line,) = errors
    assert "not sure of the columns" in line and "python ingest.py" in line
    command = line[line.index("python ingest.py"):].removesuffix(" (check it with --dry-run)")
    argv = shlex.split(command)[2:]
    code, out, _ = cli(argv + ["--dry-run"])
    assert code == 0 and "columns given by --map" in out and "8 kept" in out

    code, out, _ = cli([str(path), "--dry-run"])  # the dry run shows the doubt and the way out
    assert code == 2 and "NOT INGESTED AS IT STANDS" in out and command in out


def test_dry_run_of_a_bad_file_is_one_line(tmp_path, cli) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text('[{"review": "a JSON array, not lines"}]\n')
    code, out, errors = cli([str(path), "--dry-run"])
    assert code == 2 and out == ""
    assert len(errors) == 1 and "a JSON array, not JSON Lines" in errors[0] and "\n" not in errors[0]


UNLABELED_FILM = "Harbor of Small Hours"
UNLABELED = [  # a scrape of a third film: quotes, no labels
    "A patient, beautifully acted chamber drama about a ferry crew waiting out one long winter night.",
    "The harbor lights and the hushed sound design make every small gesture land with surprising force.",
    "Too muted for its own good, though the final scene between the two sisters is devastating.",
]


@pytest.fixture
def grown(tiny_artifacts, embeddings, tmp_path, monkeypatch):
    """A copy of the tiny store with two new files ingested, and MRA_* pointing a fresh process at it."""
    settings = tiny_artifacts.model_copy(update={"index_dir": tmp_path / "index",
                                                 "chats_db": tmp_path / "chats.sqlite"})
    shutil.copytree(tiny_artifacts.index_dir, settings.index_dir)
    labelled = kaggle_titled(tmp_path / "files")
    unlabeled = tmp_path / "files" / "harbor_scrape.csv"
    unlabeled.write_text("movie,reviews,reviews\n" + "".join(
        f'"{UNLABELED_FILM}","{quote}","May {i + 1}, 2022"\n' for i, quote in enumerate(UNLABELED)))
    summary = ingest([labelled, unlabeled], settings, embeddings=embeddings,
                     show_bar=False)
    assert summary.files == 2 and summary.kept == 11 and summary.embedded == 11
    for key, value in tiny_env(settings).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()  # as a new process would, the CLI reads MRA_* afresh
    yield settings
    get_settings.cache_clear()


def ask(text: str) -> dict:
    """`python -m assistant ask TEXT --json` in this process: the CLI loads everything from MRA_*."""
    from assistant.cli import main

    out = io.StringIO()
    code = main(["ask", text, "--json", "--max-new-tokens", "5", "--no-remember"], out=out)
    assert code == 0
    return json.loads(out.getvalue())


def review_sources(data: dict) -> list[dict]:
    return [s for s in data["sources"] if s.get("kind", "review") == "review"]


def test_a_cli_started_after_the_ingest_knows_the_new_films(grown) -> None:
    data = ask(f"Write a positive review of {NEW_FILM}")
    assert data["request"]["movie"] == NEW_FILM and data["mode"] == "rag", (data["notes"], data["reply"])
    reviews = review_sources(data)
    assert reviews and {s["movie"] for s in reviews} == {NEW_FILM}
    assert {s["sentiment"] for s in reviews} == {"positive"}, "the labelled reviews answer a positive request"
    fresh_critics = {critic for film, critic, _, fresh, *_ in REVIEWS if film == NEW_FILM and fresh}
    assert {s["critic"] for s in reviews} <= fresh_critics

    # Unlabeled reviews are found by their movie; the sentiment filter cannot use them, and the reply says so.
    data = ask(f"Write a positive review of {UNLABELED_FILM}")
    assert data["request"]["movie"] == UNLABELED_FILM
    reviews = review_sources(data)
    assert reviews and {(s["movie"], s["sentiment"]) for s in reviews} == {(UNLABELED_FILM, "unknown")}
    assert any("no fresh reviews" in note for note in data["notes"]), data["notes"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
