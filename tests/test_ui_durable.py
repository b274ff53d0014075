"""Nothing typed is lost (issue 29), in a real browser: a message sent while a reply streams, a reload, a second
tab, another browser's chat id, and the server stopped (SIGTERM) or killed (-9) while a reply is written.

The server is `python -m ui` on the tiny model, slowed to 0.15 s a token by a `sitecustomize` on its path, so a
reply is still being written when the test acts.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.settings import Settings
from tests.test_ui_browser import LAUNCH_ARGS, chromium, free_port, wait_healthy  # noqa: F401 - chromium: fixture
from tests.tiny import tiny_artifacts, tiny_env  # noqa: F401 - tiny_artifacts is a pytest fixture

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_MS = 120_000
SLOW = """
import time
import assistant.model.decoding as decoding
_step = decoding.Decoding._step
def slow_step(self):
    time.sleep(0.15)
    return _step(self)
decoding.Decoding._step = slow_step
"""


class Server:
    def __init__(self, settings: Settings, root: Path) -> None:
        (root / "slow").mkdir(exist_ok=True)
        (root / "slow" / "sitecustomize.py").write_text(SLOW)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **tiny_env(settings), "PYTHONUNBUFFERED": "1", "MRA_PORT": str(self.port),
                    "MRA_SAMPLING__MAX_NEW_TOKENS": "60", "MRA_WARM_UP_CHAT": "false",
                    "PYTHONPATH": os.pathsep.join([str(root / "slow"), str(ROOT)])}
        self.log = root / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        with self.log.open("a") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "ui", "--server.fileWatcherType", "none"], cwd=ROOT,
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT)
        wait_healthy(self.url, self.proc, self.log)
        return self

    def stop(self, sig: int) -> float:
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        return time.monotonic() - started


@pytest.fixture(scope="module")
def server(tiny_artifacts: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ui-durable")
    running = Server(tiny_artifacts.model_copy(update={"chats_db": root / "chats.sqlite"}), root).start()
    yield running
    if running.proc.poll() is None:
        running.stop(signal.SIGTERM)


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        yield launched
        launched.close()


def new_page(browser, url: str):
    page = browser.new_context().new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    return page


def send(page, text: str) -> None:
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    box.press("Enter")


def chat_texts(page) -> list[str]:
    return [m.inner_text() for m in page.get_by_test_id("stChatMessage").all()]


def wait_answered(page, questions: int) -> None:
    from playwright.sync_api import expect

    messages = page.get_by_test_id("stChatMessage")
    expect(messages).to_have_count(2 * questions)
    expect(page.get_by_text("▌")).to_have_count(0)
    expect(page.get_by_text("Waiting for the reply before it")).to_have_count(0)


def test_a_message_sent_mid_reply_is_answered_after_it_and_a_reload_keeps_both(server: Server, browser) -> None:
    from playwright.sync_api import expect

    page = new_page(browser, server.url)
    send(page, "Write a positive review of Toy Story")
    expect(page.get_by_text("▌")).to_have_count(1)  # the first reply is being written
    send(page, "Write a negative review of The Matrix")
    wait_answered(page, 2)
    texts = chat_texts(page)
    assert "positive review of Toy Story" in texts[0] and "negative review of The Matrix" in texts[2], texts
    url = page.url
    assert "chat=" in url and "owner=" in url
    page.reload()
    wait_answered(page, 2)
    # to_have_text retries until the page has drawn all of it: a reply's sources render a moment after its text
    expect(page.get_by_test_id("stChatMessage")).to_have_text(texts, use_inner_text=True)  # a reload: the same chat
    second = page.context.new_page()  # a second tab of the same browser and address
    second.goto(url)
    wait_answered(second, 2)
    expect(second.get_by_test_id("stChatMessage")).to_have_text(texts, use_inner_text=True)
    sidebar_titles = page.get_by_test_id("stSidebar").get_by_text("Write a positive review of Toy Story")
    expect(sidebar_titles).to_have_count(1)  # named after its first message


def test_another_browsers_chat_id_opens_a_new_chat(server: Server, browser) -> None:
    from playwright.sync_api import expect

    mine = new_page(browser, server.url)
    send(mine, "Write a negative review of Gigli")
    wait_answered(mine, 1)
    chat = mine.url.split("chat=")[1].split("&")[0]
    other = new_page(browser, f"{server.url}/?chat={chat}")  # another browser: no cookie, its own owner token
    expect(other.get_by_test_id("stChatInputTextArea")).to_be_editable()
    expect(other.get_by_test_id("stChatMessage")).to_have_count(0)
    assert f"chat={chat}" not in other.url
    thief = new_page(browser, mine.url)  # a link with my owner token, opened by a browser with its own
    expect(thief.get_by_test_id("stChatInputTextArea")).to_be_editable()
    # this browser had no token yet, so the link's is taken; a browser with its own keeps it (next test)
    expect(thief.get_by_test_id("stChatMessage")).to_have_count(2)


def test_a_link_with_another_owner_token_does_not_replace_this_browsers(server: Server, browser) -> None:
    from playwright.sync_api import expect

    victim = new_page(browser, server.url)
    expect(victim.get_by_test_id("stChatInputTextArea")).to_be_editable()
    own = victim.url.split("owner=")[1].split("&")[0]
    for _ in range(50):  # the page stores the browser's token in a cookie
        if any(c["name"] == "mra_owner" for c in victim.context.cookies()):
            break
        time.sleep(0.1)
    victim.goto(f"{server.url}/?owner=chosen-by-someone-else-123")
    expect(victim.get_by_text("This link carries another browser's chats key")).to_be_visible()
    assert f"owner={own}" in victim.url
    victim.get_by_role("button", name="Use the link's chats instead").click()
    expect(victim.get_by_text("This link carries another browser's chats key")).to_have_count(0)
    victim.wait_for_url("**owner=chosen-by-someone-else-123**")


def test_stopped_or_killed_mid_reply_exits_fast_and_keeps_the_question(server: Server, browser) -> None:
    from playwright.sync_api import expect

    page = new_page(browser, server.url)
    send(page, "Write a positive review of The Matrix")
    expect(page.get_by_text("▌")).to_have_count(1)
    url = page.url
    took = server.stop(signal.SIGTERM)
    assert took < 5, f"the page took {took:.1f} s to exit after SIGTERM while writing a reply"
    log.info("exited %.1f s after SIGTERM while writing a reply", took)
    server.start()
    page.goto(url)
    expect(page.get_by_text("not finished")).to_be_visible()
    page.get_by_role("button", name="Ask again").click()
    expect(page.get_by_text("▌")).to_have_count(1)
    server.stop(signal.SIGKILL)
    server.start()
    page.goto(url)
    expect(page.get_by_text("not finished")).to_be_visible()
    page.get_by_role("button", name="Ask again").click()
    wait_answered(page, 1)
    assert "positive review of The Matrix" in chat_texts(page)[0]
