"""The "Add reviews" page through AppTest: upload, dry-run preview, add in the background, then the chat knows
the new film and cites its reviews. Runs on a copy of the tiny store, so the shared one stays as it is."""
from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from assistant.settings import Settings
from tests.byo_files import NEW_FILM, REVIEWS, ambiguous, kaggle_titled
from tests.tiny import tiny_artifacts, tiny_env  # noqa: F401 - tiny_artifacts is a pytest fixture
from ui.add_job import UPLOAD_PREFIX, get_adder, safe_name
from ui.add_reviews import MAX_UPLOAD_MB
from ui.runtime import probe

APP = str(Path(__file__).resolve().parent.parent / "ui" / "app.py")
PAGE = "from ui.add_reviews import add_reviews_page\nadd_reviews_page()"
TIMEOUT = 120


@pytest.fixture
def own_store(tiny_artifacts: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The tiny store and model, with an index and chat database of this test's own, as MRA_* variables."""
    settings = tiny_artifacts.model_copy(update={"index_dir": tmp_path / "index",
                                                 "chats_db": tmp_path / "chats.sqlite"})
    shutil.copytree(tiny_artifacts.index_dir, settings.index_dir)
    for key, value in tiny_env(settings).items():
        monkeypatch.setenv(key, value)
    return settings


@pytest.fixture(autouse=True)
def no_leftover_uploads():
    """A test's browser session ends without the page seeing it; delete what its uploads left in the temp dir."""
    before = set(Path(tempfile.gettempdir()).glob(f"{UPLOAD_PREFIX}*"))
    yield
    for folder in set(Path(tempfile.gettempdir()).glob(f"{UPLOAD_PREFIX}*")) - before:
        shutil.rmtree(folder, ignore_errors=True)


def open_page() -> AppTest:
    at = AppTest.from_string(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def upload(at: AppTest, path: Path) -> AppTest:
    at.file_uploader(key="add_upload").set_value((path.name, path.read_bytes(), "text/csv")).run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def wait_for_the_job(deadline_s: float = 180) -> None:
    adder, deadline = get_adder(), time.monotonic() + deadline_s
    while adder.busy() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not adder.busy(), "the add job did not finish"


def ask(chat: AppTest, text: str):
    chat.chat_input[0].set_value(text).run()
    assert not chat.exception, chat.exception
    return [m for m in chat.chat_message if m.name == "assistant"][-1]


def test_upload_preview_add_then_the_chat_cites_the_new_film(own_store: Settings, tmp_path: Path) -> None:
    # The chat page is open before the file is added: its assistant is loaded (and cached) without the film.
    chat = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    earlier = ask(chat, f"Write a positive review of {NEW_FILM}")
    assert NEW_FILM not in " ".join(e.markdown[0].value for e in earlier.expander if e.label.startswith("Sources"))

    at = open_page()
    uploader = at.file_uploader(key="add_upload")
    assert uploader.proto.max_upload_size_mb == MAX_UPLOAD_MB and f"{MAX_UPLOAD_MB} MB" in at.caption[0].value
    upload(at, kaggle_titled(tmp_path / "files"))
    staged = at.session_state["add_staged"].path
    assert staged.is_file() and staged.name == "critic_reviews_2021.csv"
    assert Path(tempfile.gettempdir()) in staged.parents and staged.parent.name.startswith(UPLOAD_PREFIX)
    assert staged.parent.stat().st_mode & 0o077 == 0, "the upload folder is private"
    # The preview is the dry run: the inferred mapping, the counts and example rows; nothing added yet.
    assert "movie=movie_title" in at.code[0].value and "sentiment=review_type" in at.code[0].value
    assert metrics(at) == {"Rows read": "8", "Kept": "8", "Skipped": "0"}
    assert NEW_FILM in at.dataframe[0].value["movie"].tolist()
    before = probe(own_store).index
    assert not at.button(key="add_start").disabled

    at.button(key="add_start").click().run()
    assert not at.exception, at.exception
    wait_for_the_job()
    at.run()
    assert not at.exception, at.exception
    job, summary = get_adder().snapshot()
    assert (job.state, job.stage) == ("done", "added 8 new chunks"), job
    assert any("Added" in s.value for s in at.success)
    assert not staged.parent.exists(), "the uploaded file is deleted once added"
    assert probe(own_store).index != before, "a new index generation is live"

    # The same chat page, on its next run, loads the assistant for the new generation: the new film is a known
    # title, and a review request for it is answered from its own reviews.
    reply = ask(chat, f"Write a positive review of {NEW_FILM}")
    sources = [e for e in reply.expander if e.label.startswith("Sources")]
    assert sources, "RAG reply with sources"
    shown = sources[0].markdown[0].value
    movies = re.findall(r"\*\*(.+?)\*\*", shown)
    assert movies and set(movies) == {NEW_FILM}, movies
    critics = {critic for film, critic, _, fresh, *_ in REVIEWS if film == NEW_FILM and fresh}
    assert any(critic in shown for critic in critics)


def test_an_unsure_file_is_explained_and_its_suggested_mapping_can_be_used(own_store: Settings,
                                                                            tmp_path: Path) -> None:
    at = upload(open_page(), ambiguous(tmp_path / "files"))
    assert any("not sure of the columns" in w.value for w in at.warning)
    assert at.button(key="add_start").disabled, "nothing is added while the columns are unsure"
    suggested = at.code[0].value
    at.button(key="add_use_mapping").click().run()
    assert at.text_input(key="add_mapping").value == suggested
    assert not at.warning and not at.button(key="add_start").disabled
    assert metrics(at)["Kept"] == "8"
    at.text_input(key="add_mapping").set_value("text=nope").run()
    errors = [e.value.replace("\\", "") for e in at.error]  # shown Markdown-escaped
    assert len(errors) == 1 and "'nope'" in errors[0] and "\n" not in errors[0]
    assert str(at.session_state["add_staged"].path.parent) not in errors[0], "names the upload, not the temp path"
    assert at.button(key="add_start").disabled


def test_replacing_or_removing_an_upload_deletes_its_temporary_file(own_store: Settings, tmp_path: Path) -> None:
    at = upload(open_page(), kaggle_titled(tmp_path / "files"))
    first = at.session_state["add_staged"].path
    upload(at, ambiguous(tmp_path / "files"))
    assert not first.exists() and at.session_state["add_staged"].path.is_file()
    second = at.session_state["add_staged"].path
    at.file_uploader(key="add_upload").set_value(None).run()
    assert not second.exists() and "add_staged" not in at.session_state


def test_upload_names_cannot_leave_their_folder() -> None:
    assert safe_name("../../etc/passwd.csv") == "passwd.csv"
    assert safe_name("..\\..\\x.tsv.gz") == "x.tsv.gz"
    assert safe_name("my reviews (1).jsonl") == "my_reviews_1_.jsonl"
    assert safe_name(".hidden.csv") == "hidden.csv" and safe_name("") == "upload.csv"


def test_hostile_uploads_are_counted_or_refused_in_one_line_never_a_traceback(own_store: Settings, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tmp_path / "deep.jsonl"
    rows = [f'{{"review": "A fine film, number {i}.", "sentiment": "fresh", "movie": "Film {i}"}}' for i in range(4)]
    deep.write_text("\n".join([*rows, '{"review": ' + "[" * 100_000 + "]" * 100_000 + "}"]) + "\n")
    at = upload(open_page(), deep)
    assert not at.error and metrics(at)["Skipped"] == "1"
    assert any("nested too deep: 1" in c.value.replace("\\", "") for c in at.caption), [c.value for c in at.caption]

    def broken(*args, **kwargs):
        raise RuntimeError(f"internal failure in {Path(__file__).parent}")

    monkeypatch.setattr("ui.add_reviews.preview_file", broken)
    again = tmp_path / "again.jsonl"
    again.write_text("\n".join(rows) + "\n")
    at = upload(at, again)
    errors = [e.value.replace("\\", "") for e in at.error]
    assert len(errors) == 1 and "again.jsonl could not be read (RuntimeError)" in errors[0], errors
    assert str(Path(__file__).parent) not in errors[0] and not at.exception
