"""The settings stay few, each says what it does, and fixed choices are constants beside their code."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from pydantic import BaseModel

from assistant import settings as settings_module
from assistant.settings import Sampling, Settings, unknown_variables

ROOT = Path(__file__).resolve().parent.parent

MAX_SETTINGS = 40  # issue 28: a user reads them all in a few minutes


def leaf_fields(model: type[BaseModel], prefix: str = "") -> dict[str, object]:
    """Every setting a user can set, by its dotted name: a nested settings object counts its own fields."""
    leaves: dict[str, object] = {}
    for name, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            leaves.update(leaf_fields(kind, f"{prefix}{name}."))
        else:
            leaves[f"{prefix}{name}"] = info
    return leaves


def test_there_are_at_most_forty_settings():
    names = sorted(leaf_fields(Settings))
    assert len(names) <= MAX_SETTINGS, f"{len(names)} settings: {names}"
    assert "sampling.guidance" in names and "index_dir" in names  # the count sees nested and flat ones


def test_every_setting_and_group_says_what_it_is_for():
    undescribed = [name for name, info in leaf_fields(Settings).items() if not (info.description or "").strip()]
    assert undescribed == []
    assert (Settings.model_fields["sampling"].description or "").strip()


def test_descriptions_say_what_and_why_not_which_run_moved_which_number():
    import re

    history = re.compile(r"\b(20\d\d-\d\d-\d\d|held-out|seed \d+|on \d+ .{0,40}requests|took .{0,60} from [\d.]+ to)")
    dated = {name: info.description for name, info in leaf_fields(Settings).items()
             if history.search(info.description or "")}
    assert dated == {}


def test_fixed_sampling_choices_are_not_settings():
    sampling = Sampling()
    assert sampling.repetition_penalty == 1.1 and sampling.no_repeat_ngram_size == 4  # still read by every caller
    assert "repetition_penalty" not in Sampling.model_fields and "no_repeat_ngram_size" not in Sampling.model_fields
    assert "repetition_penalty" not in sampling.model_dump()


def configuration_doc():
    spec = importlib.util.spec_from_file_location("configuration_doc", ROOT / "scripts" / "configuration_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_setting_is_in_a_group_and_on_the_configuration_page():
    doc = configuration_doc()
    groups = {group for group, _, _ in doc.GROUPS}
    for model in (Settings, Sampling):
        placed = doc.sections(model)
        assert set(placed) == set(model.model_fields)  # every field is written under a section comment
        assert {section.split()[0] for section in placed.values()} <= groups
    page = (ROOT / "docs" / "configuration.md").read_text()
    for name in leaf_fields(Settings):
        variable = "MRA_" + name.upper().replace(".", "__")
        assert f"`{variable}`" in page, variable


def test_the_configuration_page_is_generated_from_the_settings():
    doc = configuration_doc()
    assert (ROOT / "docs" / "configuration.md").read_text() == doc.render(), \
        "docs/configuration.md is out of date: run python scripts/configuration_doc.py"
    for _, path, _ in doc.CONSTANTS:  # every fixed choice the page names exists where it says
        doc.constant_value(path)


def test_a_variable_that_sets_nothing_is_named_in_a_warning(monkeypatch, caplog):
    environ = {"MRA_INDEX_DIR": "/x", "MRA_SAMPLING__GUIDANCE": "2", "MRA_CLEAR_CONTEXT": "false",
               "MRA_SAMPLING__REPETITION_PENALTY": "1.3", "PATH": "/bin"}
    assert unknown_variables(environ) == ["MRA_CLEAR_CONTEXT", "MRA_SAMPLING__REPETITION_PENALTY"]
    monkeypatch.setenv("MRA_WRITER_WAIT_S", "0")
    settings_module.get_settings.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="assistant.settings"):
            settings_module.get_settings()
    finally:
        settings_module.get_settings.cache_clear()
    warned = [r.getMessage() for r in caplog.records if r.name == "assistant.settings"]
    assert len(warned) == 1 and "MRA_WRITER_WAIT_S" in warned[0] and "\n" not in warned[0]
