"""One writer at a time, and clean-up of only what this program made: the store's lock and generation folders."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.data import generations, locks
from assistant.data.ingestion import ingest
from assistant.data.locks import HOLDER_NAME, LockBusy, WriterLock
from assistant.data.store import ReviewStore, StoreError
from assistant.data.store_writer import StoreWriter, store_lock
from tests.fixtures_data import write_rt_fixtures

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def data(tmp_path) -> dict[str, Path]:
    return write_rt_fixtures(tmp_path / "data")


def start_ingest(index: Path, source: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "MRA_INDEX_DIR": str(index), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen([sys.executable, str(REPO / "ingest.py"), str(source), "--json"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=log.open("w"), text=True)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_two_ingests_at_once_wait_their_turn_and_both_land(settings, data, tmp_path):
    """Both start while the store is being written (here: by this test); each says whom it waits for, both
    finish, and the store holds the sum of what they embedded."""
    files = [data["critics"], data["polarity_pos"]]
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    with store_lock(settings):
        procs = [start_ingest(settings.index_dir, f, log) for f, log in zip(files, logs)]
        try:
            wait_for(lambda: all("Waiting for The review store" in log.read_text() for log in logs), 240,
                     "both ingests to wait for the lock")
        except BaseException:
            for proc in procs:
                proc.kill()
            raise
    results = [p.communicate(timeout=240) for p in procs]
    for proc, log in zip(procs, logs):
        assert proc.returncode == 0, log.read_text()[-2000:]
        waiting = [line for line in log.read_text().splitlines() if "Waiting for" in line]
        assert f"pid {os.getpid()} (" in waiting[0] and " since " in waiting[0], waiting
    summaries = [json.loads(out) for out, _ in results]
    assert all(s["embedded"] > 0 for s in summaries)
    store = ReviewStore.open(settings)
    assert store.total == sum(s["embedded"] for s in summaries)
    assert max(s["total"] for s in summaries) == store.total  # the second added to the first's store
    assert not list(settings.index_dir.glob(".building-*"))


def test_a_writer_that_may_not_wait_fails_with_one_line_naming_the_holder(settings, data, embeddings, monkeypatch):
    monkeypatch.setattr(locks, "WRITER_WAIT_S", 0)
    busy = settings
    with store_lock(settings):
        holder = json.loads((settings.index_dir / HOLDER_NAME).read_text())
        with pytest.raises(StoreError) as caught:
            ingest([data["critics"]], busy, embeddings=embeddings, show_bar=False)
    message = str(caught.value)
    assert "\n" not in message and f"pid {os.getpid()} (" in message and holder["command"] in message
    assert " since " in message and "try again" in message
    assert not list(settings.index_dir.glob(".building-*"))
    assert ingest([data["critics"]], busy, embeddings=embeddings, show_bar=False).embedded > 0  # free again


def test_readers_never_wait_for_a_writer(settings, data, embeddings):
    ingest([data["critics"]], settings, embeddings=embeddings, show_bar=False)
    with store_lock(settings):
        started = time.monotonic()
        assert ReviewStore.open(settings, embeddings).similarity_search("toys", k=1)
        assert time.monotonic() - started < 30


def test_the_lock_of_a_killed_writer_goes_with_it(tmp_path):
    script = ("import sys, time; from pathlib import Path; from assistant.data.locks import WriterLock; "
              "lock = WriterLock(Path(sys.argv[1]), 'x').acquire(); print('held', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = WriterLock(tmp_path, "The folder", wait=0)
        assert lock.holder().pid == holder.pid
        with pytest.raises(LockBusy, match=rf"pid {holder.pid} \("):
            lock.acquire()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        with WriterLock(tmp_path, "The folder", wait=5) as again:
            assert again.held
    finally:
        holder.kill()


def test_index_on_a_users_folder_leaves_what_it_did_not_make_alone(settings, data, embeddings):
    """`--index DIR` on a folder of one's own: gen-notes/, an unmarked gen-000007/ and .building-1-2/ stay."""
    folder = settings.index_dir
    foreign = [folder / "gen-notes", folder / "gen-000007", folder / ".building-1-2", folder / ".building-notes"]
    for path in foreign:
        path.mkdir(parents=True)
        (path / "keep.txt").write_text("mine")
    done = subprocess.run([sys.executable, str(REPO / "ingest.py"), str(data["critics"]), "--index", str(folder),
                           "--json"], capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                          cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    for source in (data["critics_2020"], data["polarity_pos"]):  # more commits, so superseded generations go
        ingest([source], settings, embeddings=embeddings, show_bar=False)
    for path in foreign:
        assert (path / "keep.txt").read_text() == "mine", path
    ours = sorted(p.name for p in folder.iterdir() if p.name.startswith("gen-0") and p.name != "gen-000007")
    assert len(ours) == 2, ours  # the live generation and the one it replaced


def test_clean_up_removes_only_marked_folders_of_dead_writers(tmp_path):
    home = tmp_path / "home"
    live = []
    for _ in range(3):
        live.append(generations.publish(generations.start_building(home), home))
    building = generations.start_building(home)  # this process is alive: its build is not stale
    orphan = generations.publish(generations.start_building(home), home)
    (home / generations.POINTER).write_text(live[-1].name)  # as if killed before the pointer switched
    generations.clean_stale(home)
    assert generations.current(home) == live[-1]
    assert sorted(p.name for p in home.iterdir() if p.is_dir()) == sorted([live[1].name, live[2].name, building.name])
    assert orphan not in list(home.iterdir())


def test_manifest_with_wrong_types_is_one_line_naming_the_fix(settings, data, embeddings):
    ingest([data["critics"]], settings, embeddings=embeddings, show_bar=False)
    manifest_path = ReviewStore.open(settings).directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["counts"]["reviews"] = None
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(StoreError) as caught:
        ReviewStore.open(settings)
    assert "\n" not in str(caught.value)
    assert "counts.reviews is null, not a whole number" in str(caught.value)
    assert "python ingest.py --rebuild" in str(caught.value)
    for wrong in ({"embedding_dim": "384"}, {"sources": ["a"]}, {"created": "yesterday"}):
        manifest_path.write_text(json.dumps({**manifest, "counts": {**manifest["counts"], "reviews": 1}, **wrong}))
        with pytest.raises(StoreError, match=f"{next(iter(wrong))} is "):
            ReviewStore.open(settings)


def test_a_bad_manifest_leaks_no_build_folder_and_frees_the_lock(settings, data, embeddings):
    ingest([data["critics"]], settings, embeddings=embeddings, show_bar=False)
    manifest_path = ReviewStore.open(settings).directory / "manifest.json"
    manifest_path.write_text(json.dumps({**json.loads(manifest_path.read_text()), "counts": None}))
    with pytest.raises(StoreError, match="counts is null"):
        StoreWriter(settings, 384)
    assert not list(settings.index_dir.glob(".building-*"))
    assert not store_lock(settings).holder()
    with store_lock(settings, wait=0):
        pass


def test_index_on_a_folder_whose_pointer_and_lock_record_are_the_users_is_refused_untouched(data, tmp_path):
    """A LevelDB folder has a CURRENT file; a user may keep a `.write.lock.json` of their own."""
    folder = tmp_path / "leveldb"
    folder.mkdir()
    (folder / "CURRENT").write_text("MANIFEST-000004\n")
    (folder / ".write.lock.json").write_text('{"mine": true}')
    done = subprocess.run([sys.executable, str(REPO / "ingest.py"), str(data["critics"]), "--index", str(folder)],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=REPO,
                          timeout=300)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "holds files this program did not write (CURRENT, .write.lock.json)" in errors[0]
    assert (folder / "CURRENT").read_text() == "MANIFEST-000004\n"
    assert (folder / ".write.lock.json").read_text() == '{"mine": true}'
    assert sorted(p.name for p in folder.iterdir()) == [".write.lock.json", "CURRENT"]


def test_a_store_made_before_the_home_marker_is_still_written(settings, data, embeddings):
    ingest([data["critics"]], settings, embeddings=embeddings, show_bar=False)
    (settings.index_dir / generations.HOME_MARKER).unlink()  # as an older version left it
    summary = ingest([data["critics_2020"]], settings, embeddings=embeddings, show_bar=False)
    assert summary.embedded > 0
    assert generations.marker(settings.index_dir, generations.HOME_MARKER) is not None


def test_a_trigger_planted_in_the_live_docs_database_does_not_reach_the_next_generation(settings, data, embeddings):
    import sqlite3

    ingest([data["critics"]], settings, embeddings=embeddings, show_bar=False)
    live = generations.current(settings.index_dir)
    with sqlite3.connect(live / "docs.sqlite") as db:
        db.executescript("CREATE TABLE planted (x); CREATE VIEW peek AS SELECT text FROM docs;"
                         "CREATE TRIGGER spy AFTER INSERT ON docs BEGIN INSERT INTO planted VALUES (new.text); END;")
        rows_before = db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]
    ingest([data["critics_2020"]], settings, embeddings=embeddings, show_bar=False)
    nxt = generations.current(settings.index_dir)
    assert nxt != live
    with sqlite3.connect(f"file:{nxt / 'docs.sqlite'}?mode=ro", uri=True) as db:
        kinds = db.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall()
        assert sorted(kinds) == [("index", "docs_doc"), ("index", "docs_movie"), ("table", "docs")], kinds
        assert db.execute("SELECT COUNT(*) FROM docs").fetchone()[0] > rows_before, "the old rows came along"
    assert ReviewStore.open(settings, embeddings).similarity_search("fine film", k=2)
