"""The page in a real browser: `streamlit run` on 127.0.0.1 and headless Chromium driven by Playwright.

Uses the system Chromium (Debian's `chromium` package), never a downloaded one. The screenshot goes
to $UI_SCREENSHOT_DIR when set, else to the test's temporary folder.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.settings import Settings
from tests.tiny import tiny_artifacts, tiny_env  # noqa: F401 - tiny_artifacts is a pytest fixture

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPLY_TIMEOUT_MS = 120_000  # the server loads the embedding model and the tiny LM on the first page view


def find_chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not answer on {url} within {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium on this machine (install Debian's `chromium` package: "
                    "apt-get install -y chromium); Playwright's own browser download is not used")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    return path


@pytest.fixture(scope="module")
def server(tiny_artifacts: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`streamlit run ui/app.py` on a free port, on the tiny store and model, with its own chat database."""
    root = tmp_path_factory.mktemp("ui-browser")
    settings = tiny_artifacts.model_copy(update={"chats_db": root / "chats.sqlite"})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = root / "streamlit.log"
    env = {**os.environ, **tiny_env(settings), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "ui" / "app.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    with running_server(cmd, env, url, log_path):
        yield url


@contextlib.contextmanager
def running_server(cmd: list[str], env: dict[str, str], url: str, log_path: Path) -> Iterator[None]:
    """The server `cmd` starts, healthy at `url` (its output in `log_path`), stopped when the block ends."""
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_healthy(url, proc, log_path)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def screenshot_dir(tmp_path: Path) -> Path:
    shots = Path(os.environ.get("UI_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    return shots


@contextlib.contextmanager
def opened_page(chromium: str, url: str) -> Iterator[Any]:
    """Headless Chromium on the page at `url`, its title shown, with the reply timeout on every wait."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.set_default_timeout(REPLY_TIMEOUT_MS)
            expect.set_options(timeout=REPLY_TIMEOUT_MS)
            page.goto(url)
            expect(page.get_by_role("heading", name="Movie review assistant")).to_be_visible()
            yield page
        finally:
            browser.close()


def test_chat_in_a_real_browser(chromium: str, server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    shots = screenshot_dir(tmp_path)
    started = time.monotonic()
    with opened_page(chromium, server) as page:
        first_paint = time.monotonic() - started
        box = page.get_by_test_id("stChatInputTextArea")
        expect(box).to_be_editable()
        ready = time.monotonic() - started

        box.fill("Write a positive review of Toy Story")
        box.press("Enter")
        replies = page.get_by_test_id("stChatMessage")
        sources = page.get_by_test_id("stExpander").filter(has_text="Sources")
        expect(sources).to_have_count(1)
        expect(replies).to_have_count(2)
        sources.first.get_by_text("Sources").click()
        expect(sources.first.get_by_text("similarity").first).to_be_visible()
        expect(page.get_by_text("with RAG", exact=False).first).to_be_visible()
        replies.first.scroll_into_view_if_needed()  # the question, its reply and the open sources
        page.screenshot(path=str(shots / "ui-chat-rag.png"))

        page.get_by_test_id("stSidebar").get_by_text("RAG", exact=True).click()  # the toggle's label
        expect(page.get_by_text("RAG off: the model answers alone")).to_be_visible()
        box.fill("Write a negative review of The Matrix")
        box.press("Enter")
        expect(replies).to_have_count(4)
        expect(replies.nth(3).get_by_text("without RAG", exact=False)).to_be_visible()
        expect(sources).to_have_count(1)  # the new reply has none; the first keeps its own
        page.screenshot(path=str(shots / "ui-chat-toggle.png"))
    log.info("first paint %.1f s, chat ready %.1f s; screenshots in %s", first_paint, ready, shots)
