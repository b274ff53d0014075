"""End to end: fixture files in every format -> store on disk -> reload and search; incremental and safe."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.data.ingestion import ingest
from assistant.data.store import ReviewStore, StoreError
from tests.fixtures_data import write_rt_fixtures

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def data(tmp_path) -> dict[str, Path]:
    return write_rt_fixtures(tmp_path / "data")


def test_ingest_reload_and_search_with_sentiment_filter(settings, embeddings, data):
    summary = ingest([data["critics"].parent.parent], settings, embeddings=embeddings, show_bar=False)
    assert summary.files >= 9
    assert summary.duplicates >= 1  # the same Toy Story quote in the 2013 and 2020 pulls
    assert summary.kept + summary.duplicates + sum(summary.skipped.values()) == summary.rows
    assert summary.embedded == summary.total > summary.kept - 1  # synopses may add chunks
    assert 0 < summary.read_seconds + summary.model_wait_seconds + summary.embed_seconds <= summary.seconds
    store = ReviewStore.open(settings, embeddings)
    hits = store.similarity_search_with_score("a story about toys that come alive", k=3,
                                              filter={"sentiment": "negative", "movie_key": "toy story"})
    assert hits and all(d.metadata["sentiment"] == "negative" for d, _ in hits)
    assert all(d.metadata["movie_key"] == "toy story" for d, _ in hits)
    # the shared quote is stored once, whichever pull (and title casing) it came from
    shared = store.sql("SELECT COUNT(*) FROM docs WHERE text LIKE 'A joyous, inventive adventure%'")
    assert shared == [(1,)]
    # movie facts are their own documents
    assert store.sql("SELECT COUNT(*) FROM docs WHERE kind = 'movie' AND movie_key = 'matrix'")[0][0] >= 1


def test_rerun_embeds_nothing_and_a_new_file_embeds_only_its_reviews(settings, embeddings, data):
    first = ingest([data["critics"]], settings, embeddings=embeddings, show_bar=False)
    assert first.embedded > 0
    again = ingest([data["critics"]], settings, embeddings=embeddings, show_bar=False)
    assert again.embedded == 0 and again.already_stored == first.kept and again.total == first.total
    more = ingest([data["critics"], data["critics_2020"]], settings, embeddings=embeddings, show_bar=False)
    assert more.already_stored == first.kept
    assert more.embedded == more.kept - first.kept  # the shared quote is not embedded twice
    assert more.total == first.total + more.embedded


def test_rebuild_starts_over(settings, embeddings, data):
    ingest([data["critics"], data["kaggle_reviews"]], settings, embeddings=embeddings, show_bar=False)
    rebuilt = ingest([data["critics"]], settings, embeddings=embeddings, rebuild=True, show_bar=False)
    assert rebuilt.already_stored == 0 and rebuilt.total == rebuilt.embedded


class ExplodingEmbeddings:
    """Embeds one block, then is 'interrupted' like a Ctrl-C in the middle of an ingest."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def embed_query(self, text):
        return self.inner.embed_query(text)

    def embed_documents(self, texts):
        self.calls += 1
        if self.calls > 1:
            raise KeyboardInterrupt
        return self.inner.embed_documents(texts)


def test_interrupted_ingest_keeps_the_old_store_whole(settings, embeddings, data, monkeypatch):
    before = ingest([data["critics"]], settings, embeddings=embeddings, show_bar=False)
    monkeypatch.setattr("assistant.data.ingestion.EMBED_BLOCK", 2)  # several blocks, so the interrupt lands mid-way
    with pytest.raises(KeyboardInterrupt):
        ingest([data["critics"].parent.parent], settings, embeddings=ExplodingEmbeddings(embeddings), show_bar=False)
    store = ReviewStore.open(settings, embeddings)
    assert store.total == before.total
    assert not list(settings.index_dir.glob(".building-*"))
    assert store.similarity_search("toys", k=1)


def test_half_built_generation_from_a_killed_ingest_is_ignored_then_cleaned(settings, embeddings, data):
    ingest([data["critics"]], settings, embeddings=embeddings, show_bar=False)
    stale = killed_writers_folder(settings.index_dir)  # what `kill -9` mid-ingest leaves behind
    (stale / "index.faiss").write_bytes(b"partial")
    assert ReviewStore.open(settings).total > 0
    ingest([data["critics_2020"]], settings, embeddings=embeddings, show_bar=False)
    assert not stale.exists()


def killed_writers_folder(home: Path) -> Path:
    """A `.building-*` folder made by a writer process that has since died (a real, finished process)."""
    script = ("import sys; from pathlib import Path; from assistant.data.generations import start_building; "
              "print(start_building(Path(sys.argv[1])))")
    done = subprocess.run([sys.executable, "-c", script, str(home)], capture_output=True, text=True, cwd=REPO,
                          check=True)
    return Path(done.stdout.strip())


def test_swapped_manifest_is_refused(settings, embeddings, data):
    ingest([data["critics"]], settings, embeddings=embeddings, show_bar=False)
    store = ReviewStore.open(settings)
    manifest = json.loads((store.directory / "manifest.json").read_text())
    manifest["embedding_model"] = "someone/else"
    (store.directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="--rebuild"):
        ReviewStore.open(settings)
    with pytest.raises(StoreError, match="someone/else"):  # and ingest refuses to add to it
        ingest([data["critics"]], settings, embeddings=embeddings, show_bar=False)


def run_cli(*args, env_extra=None, tmp_path):
    env = {"MRA_INDEX_DIR": str(tmp_path / "cli-index"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(REPO / "ingest.py"), *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)


def test_cli_json_summary_and_one_line_errors(tmp_path, data):
    done = run_cli(str(data["critics"]), str(data["polarity_pos"]), "--json", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert {"files", "rows", "kept", "duplicates", "skipped", "embedded", "total", "seconds", "per_second"} <= set(summary)
    assert summary["files"] == 2 and summary["embedded"] == summary["kept"]

    missing = run_cli(str(tmp_path / "nope.csv"), tmp_path=tmp_path)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    blank = run_cli(str(empty), tmp_path=tmp_path)
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello")
    odd = run_cli(str(unknown), tmp_path=tmp_path)
    for result in (missing, blank, odd):
        assert result.returncode == 2
        errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
        assert len(errors) == 1 and "Traceback" not in result.stderr


def test_hub_source_offline_is_a_one_line_error(settings, monkeypatch):
    from assistant.data.readers import ReaderError

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr("assistant.data.readers.hub.hf_hub_download", offline)
    with pytest.raises(ReaderError, match="download failed") as caught:
        ingest([], settings, hub=True, show_bar=False)
    assert "\n" not in str(caught.value)
