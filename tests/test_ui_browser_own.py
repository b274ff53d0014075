"""The page in a real browser with the shipped fine-tuned model: a user fine-tunes their own model from the sidebar
("Fine-tune your own", a real `python -m assistant.finetune` child of the server), it goes live, and the user
switches back to the shipped one; every reply's caption says whose fine-tune wrote it.

The server is `streamlit run ui/app.py` on the tiny store, with a shipped adapter for a tiny base (tests/tiny.py,
`build_tiny_adapter`) and no model of the user's own at start. The shipped folder is a module global of the server
process, so the server starts through a small launcher that points it at a temporary shipped copy and then runs
Streamlit's own command line in the same process (Streamlit runs the page script there, so the change holds).

The fine-tune is the page's own, unbounded by the test: on the tiny store it ends in under a minute (the label
filter keeps none of the 21 training reviews there, so it saves an untrained LoRA after 0 steps, then evaluates it;
the test logs the counts). What is tested is the page: the new model goes live, and the switch works.

Uses the system Chromium, never a downloaded one (tests/test_ui_browser.py). Screenshots go to $UI_SCREENSHOT_DIR
when set, else to the test's temporary folder.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.settings import Settings
from tests.test_ui_browser import (  # noqa: F401 - chromium is a pytest fixture
    ROOT,
    chromium,
    free_port,
    opened_page,
    running_server,
    screenshot_dir,
)
from tests.tiny import build_tiny_adapter, tiny_artifacts, tiny_env  # noqa: F401 - fixtures

log = logging.getLogger(__name__)

FINETUNE_TIMEOUT_S = 150  # the page's fine-tune on the tiny store and tiny base: training, saving, evaluation
# Points the shipped folder at argv[1], then runs `streamlit run ...` (the rest of argv) in this same process.
LAUNCHER = ("import sys\n"
            "from pathlib import Path\n"
            "import assistant.model.shipped as shipped\n"
            "shipped.SHIPPED_DIR = Path(sys.argv[1])\n"
            "from streamlit.web import cli\n"
            "sys.argv = ['streamlit', *sys.argv[2:]]\n"
            "sys.exit(cli.main(prog_name='streamlit'))\n")


@pytest.fixture(scope="module")
def server(tiny_artifacts: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:  # noqa: F811
    """(url, models_dir): the tiny store, the shipped adapter for a tiny base, and an empty models folder."""
    from assistant.model.shipped import applies_to
    from assistant.model.shipped.ship import ship
    from assistant.model.tuned_layout import TUNED_DIRNAME

    root = tmp_path_factory.mktemp("ui-browser-own")
    base, generation = build_tiny_adapter(tiny_artifacts, root / "trained")
    shipped_copy = ship(generation, root / "shipped")
    settings = tiny_artifacts.model_copy(update={
        "models_dir": root / "models", "base_model": str(base), "chats_db": root / "chats.sqlite",
        "reports_dir": root / "reports"})
    settings.models_dir.mkdir()
    assert applies_to(settings, shipped_copy) and not (settings.models_dir / TUNED_DIRNAME).exists()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = root / "streamlit.log"
    env = {**os.environ, **tiny_env(settings), "PYTHONUNBUFFERED": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # the fine-tune child inherits these too
    cmd = [sys.executable, "-c", LAUNCHER, str(shipped_copy), "run", str(ROOT / "ui" / "app.py"),
           "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    with running_server(cmd, env, url, log_path):
        yield url, settings.models_dir


_IS_OPEN = "e => (e.matches('details') ? e : e.querySelector('details')).open"  # an expander unfolded


def _own_card(models_dir: Path) -> dict[str, Any]:
    """The model card of the user's own live model (what the page's fine-tune saved)."""
    from assistant.model.tuned_layout import TUNED_DIRNAME, live_model_dir

    live = live_model_dir(models_dir / TUNED_DIRNAME)
    assert live is not None, f"the page says your fine-tune is live, but {models_dir} holds none"
    return json.loads((live / "model_card.json").read_text())


def _finetune_log(models_dir: Path) -> str:
    path = models_dir / "finetune-ui.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no fine-tune log)"


def test_fine_tune_your_own_then_back_to_the_shipped_one(chromium: str, server: tuple[str, Path],  # noqa: F811
                                                         tmp_path: Path) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect

    url, models_dir = server
    shots = screenshot_dir(tmp_path)
    with opened_page(chromium, url) as page:
        box = page.get_by_test_id("stChatInputTextArea")
        expect(box).to_be_editable()
        sidebar = page.get_by_test_id("stSidebar")
        replies = page.get_by_test_id("stChatMessage")

        def ask(text: str, count: int, caption: str) -> None:
            box.fill(text)
            box.press("Enter")
            expect(replies).to_have_count(count)
            expect(replies.nth(count - 1).get_by_text(caption, exact=False)).to_be_visible()

        def unfold(expander: Any) -> None:
            try:
                if not expander.first.evaluate(_IS_OPEN, timeout=5_000):
                    expander.locator("summary").click(timeout=5_000)
            except PlaywrightError:  # replaced by a rerun meanwhile: the next look finds the new one
                pass

        # 1. The shipped fine-tuned model answers from the start; there is nothing to switch to yet.
        ask("Write a positive review of Toy Story", 2, "fine-tuned, shipped")
        expect(replies.nth(1).get_by_text("your fine-tune", exact=False)).to_have_count(0)
        own = sidebar.get_by_test_id("stExpander").filter(has_text="Fine-tune your own")
        expect(own).to_have_count(1)
        unfold(own)
        expect(own.get_by_text("Replies come from the shipped fine-tuned model", exact=False)).to_be_visible()
        expect(own.get_by_role("radio", name="Yours")).to_have_count(0, timeout=5_000)  # nothing to switch to
        page.screenshot(path=str(shots / "ui-own-1-shipped.png"))

        # 2. Fine-tune your own, 5 minutes at most: a real fine-tune child of the server on the tiny base.
        minutes = own.get_by_role("combobox", name="Training minutes")
        for attempt in range(4):  # a rerun after the reply can replace the open list under the click: open it again
            try:
                minutes.click(timeout=20_000)  # focuses it; after a reply it did not always open the list: the arrow
                if minutes.get_attribute("aria-expanded") != "true":
                    minutes.press("ArrowDown")
                expect(minutes).to_have_attribute("aria-expanded", "true")
                page.get_by_test_id("stSelectboxVirtualDropdown").get_by_role("option", name="5", exact=True).click(
                    timeout=20_000)
                break
            except (PlaywrightError, AssertionError):
                if attempt == 3:
                    raise
        start = own.get_by_role("button").filter(has_text="Fine-tune your own (5 min)")
        expect(start).to_be_visible()
        started = time.monotonic()
        start.click()
        expect(page.get_by_test_id("stProgress").filter(has_text="Fine-tune your own")).to_be_visible()
        page.screenshot(path=str(shots / "ui-own-2-training.png"))
        # Done when the build has ended and the page reloaded around the new model: the sidebar's panel is back
        # (a new one, folded) with the switch on it. A failed build says so on the page: fail at once with its
        # line and the child's log.
        failed = page.get_by_text("Fine-tune your own failed", exact=False)
        yours = own.get_by_role("radio", name="Yours")  # the segmented control is a radio group
        shipped_choice = own.get_by_role("radio", name="Shipped")
        deadline = started + FINETUNE_TIMEOUT_S
        while not yours.count():
            if failed.count():
                pytest.fail(f"the page's fine-tune failed: {failed.first.inner_text()}\n{_finetune_log(models_dir)}")
            if time.monotonic() > deadline:
                pytest.fail(f"the page's fine-tune did not finish within {FINETUNE_TIMEOUT_S} s\n"
                            f"{_finetune_log(models_dir)}")
            if own.count():
                unfold(own)
            page.wait_for_timeout(500)
        finetune_s = time.monotonic() - started
        card = _own_card(models_dir)
        log.warning("the page's fine-tune took %.1f s (click to the switch on 'Yours'): %s examples, %s steps",
                    finetune_s, card.get("train_examples"), card.get("train_steps"))
        unfold(own)
        expect(yours).to_be_checked()
        expect(shipped_choice).not_to_be_checked()
        expect(own.get_by_text("Replies come from your fine-tune", exact=False)).to_be_visible()
        expect(page.get_by_test_id("stProgress")).to_have_count(0)

        # 3. The user's new model answers.
        ask("Write a negative review of The Matrix", 4, "your fine-tune")
        expect(replies.nth(3).get_by_text("fine-tuned, shipped", exact=False)).to_have_count(0)
        page.screenshot(path=str(shots / "ui-own-3-yours.png"))

        # 4. Back to the shipped one: the next reply is the shipped model's again; earlier replies keep theirs.
        shipped_choice.click()
        expect(shipped_choice).to_be_checked()
        expect(yours).not_to_be_checked()
        expect(own.get_by_text("Replies come from the shipped fine-tuned model", exact=False)).to_be_visible()
        ask("Write a negative review of Gigli", 6, "fine-tuned, shipped")
        expect(replies.nth(5).get_by_text("your fine-tune", exact=False)).to_have_count(0)
        expect(replies.nth(3).get_by_text("your fine-tune", exact=False)).to_be_visible()
        page.screenshot(path=str(shots / "ui-own-4-shipped-again.png"))

        # 5. "About the model" agrees.
        page.get_by_test_id("stSidebarNav").get_by_text("About the model").click()
        expect(page.get_by_role("heading", name="Live now: the shipped fine-tuned model")).to_be_visible()
        expect(page.get_by_text("Also here: your fine-tune", exact=False)).to_be_visible()
        page.screenshot(path=str(shots / "ui-own-5-about.png"))
    log.info("screenshots in %s", shots)
