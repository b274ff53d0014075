"""The page with the shipped model and the user's own: "Fine-tune your own", the switch back to the shipped one,
the reply's caption saying whose fine-tune wrote it, and "About the model" saying which model is live and which
model the evaluation measured."""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from assistant.model import shipped
from assistant.model.bases import tuned_dir
from assistant.model.shipped.ship import ship
from assistant.settings import Settings
from tests.test_ui import APP, TIMEOUT, _environment, assistant_messages, send
from tests.tiny import build_tiny_adapter, tiny_artifacts  # noqa: F401 - tiny_artifacts is a pytest fixture
from ui import build
from ui.jobs import Builder

ABOUT = "from ui.about import about_page\nabout_page()"


@pytest.fixture(scope="module")
def adapter(tiny_artifacts: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:  # noqa: F811
    # Once, before any page runs: a model loading in a page's warm-up thread meanwhile can catch transformers'
    # process-wide meta-device initialisation and come out empty.
    return build_tiny_adapter(tiny_artifacts, tmp_path_factory.mktemp("trained"))


@pytest.fixture
def page(tiny_artifacts: Settings, adapter: tuple[Path, Path], tmp_path: Path,  # noqa: F811
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The tiny store; a shipped adapter for a tiny base; the user's own model (the tiny one) beside it."""
    base, generation = adapter
    monkeypatch.setattr(shipped, "SHIPPED_DIR", ship(generation, tmp_path / "shipped"))
    settings = tiny_artifacts.model_copy(update={
        "models_dir": tmp_path / "models", "base_model": str(base), "chats_db": tmp_path / "chats.sqlite",
        "reports_dir": tmp_path / "reports"})
    shutil.copytree(tuned_dir(tiny_artifacts), tuned_dir(settings))
    build._model_choice().clear()  # one per server: this process is the server of every AppTest
    yield from _environment(settings)
    build._model_choice().clear()


def _captions(at: AppTest) -> list[str]:
    return [c.value.replace("\\", "") for c in assistant_messages(at)[-1].caption]


def test_switching_between_the_users_fine_tune_and_the_shipped_one(page: Settings) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    switch = at.sidebar.segmented_control(key="own_or_shipped")
    assert switch.value == "own" and switch.options == ["Shipped", "Yours"]
    send(at, "Write a positive review of Toy Story")
    assert any("your fine-tune" in c for c in _captions(at)), _captions(at)
    at.sidebar.segmented_control(key="own_or_shipped").set_value("shipped").run()
    assert not at.exception, at.exception
    send(at, "Write a negative review of Gigli")
    assert any("fine-tuned, shipped" in c for c in _captions(at)), _captions(at)
    assert at.sidebar.segmented_control(key="own_or_shipped").value == "shipped"
    about = AppTest.from_string(ABOUT, default_timeout=TIMEOUT).run()
    assert [h.value for h in about.subheader][0] == "Live now: the shipped fine-tuned model"
    assert any("Also here: your fine-tune" in c.value for c in about.caption)


def test_fine_tuning_your_own_makes_it_the_live_one(page: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tuple[list[str], float]] = []
    monkeypatch.setattr(Builder, "start", lambda self, settings, kinds, minutes: started.append((kinds, minutes)))
    build._model_choice()["tuned_model"] = "shipped"
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert at.sidebar.segmented_control(key="own_or_shipped").value == "shipped"
    at.sidebar.selectbox(key="own_minutes").set_value(5).run()
    button = at.sidebar.button(key="own_start")
    assert button.label == "Fine-tune your own (5 min)"
    button.click().run()
    assert started == [(["finetune"], 5.0)] and build._model_choice()["tuned_model"] == "own"


@pytest.mark.parametrize(("trained_minutes", "said"), [
    (1.5, "measured the live model, your fine-tune"),
    (30.0, "measured another fine-tuned model"),
])
def test_about_says_which_model_the_evaluation_measured(page: Settings, trained_minutes: float, said: str) -> None:
    card = {**json.loads((tuned_dir(page) / "model_card.json").read_text()), "train_minutes": 1.5}
    (tuned_dir(page) / "model_card.json").write_text(json.dumps(card))
    reports = Path(page.reports_dir)
    reports.mkdir(parents=True, exist_ok=True)
    summary = {"available": True, "base": card["base"], "method": card["method"], "train_minutes": trained_minutes}
    (reports / "eval.json").write_text(json.dumps({"models": {"tuned": summary}}))
    about = AppTest.from_string(ABOUT, default_timeout=TIMEOUT).run()
    assert not about.exception, about.exception
    assert [h.value for h in about.subheader][0] == "Live now: your fine-tune"
    assert any(said in c.value for c in about.caption), [c.value for c in about.caption]


def test_the_minutes_chosen_stay_chosen_after_a_fine_tune(page: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.sidebar.selectbox(key="own_minutes").set_value(30).run()
    monkeypatch.setattr(Builder, "busy", lambda self: True)  # a fine-tune runs: the panel is not drawn
    monkeypatch.setattr(build, "_progress", lambda settings: None)
    at.run()
    assert "own_minutes" not in [box.key for box in at.sidebar.selectbox]  # Streamlit dropped its value
    monkeypatch.setattr(Builder, "busy", lambda self: False)  # it ended: the panel is back
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="own_minutes").value == 30
    assert at.sidebar.button(key="own_start").label == "Fine-tune your own (30 min)"
