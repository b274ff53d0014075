"""Where the settings look: the home folder (MRA_HOME; the checkout's var/, else the user's data folder) and the
`.env` files (the home folder's, then the working folder's; environment variables win over both)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant import settings as settings_module
from assistant.settings import Sampling, Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No MRA_ variable from the caller, and a working folder without a .env."""
    import os

    for name in [n for n in os.environ if n.startswith("MRA_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_from_a_checkout_everything_lives_in_its_var_folder(clean_env):
    s = Settings()
    assert settings_module.from_checkout()
    assert s.home == ROOT / "var" and s.index_dir == ROOT / "var" / "index"
    assert s.models_dir == ROOT / "var" / "models" and s.chats_db == ROOT / "var" / "chats.sqlite"
    assert s.reports_dir == ROOT / "reports" and s.data_dir == ROOT.parent / "shared" / "data" / "rotten-tomatoes"


def test_installed_the_home_is_the_users_data_folder(clean_env, monkeypatch):
    monkeypatch.setattr(settings_module, "REPO_ROOT", clean_env / "site-packages")  # no pyproject.toml there
    monkeypatch.setenv("XDG_DATA_HOME", str(clean_env / "xdg"))
    s = Settings()
    home = clean_env / "xdg" / "movie-review-assistant"
    assert not settings_module.from_checkout() and s.home == home
    assert (s.index_dir, s.models_dir, s.chats_db) == (home / "index", home / "models", home / "chats.sqlite")
    assert s.data_dir == home / "data" and s.reports_dir == home / "reports"


def test_mra_home_moves_every_folder_and_a_named_folder_still_wins(clean_env, monkeypatch):
    monkeypatch.setenv("MRA_HOME", str(clean_env / "h"))
    monkeypatch.setenv("MRA_CHATS_DB", str(clean_env / "elsewhere.sqlite"))
    s = Settings()
    assert s.index_dir == clean_env / "h" / "index" and s.models_dir == clean_env / "h" / "models"
    assert s.chats_db == clean_env / "elsewhere.sqlite"
    assert Settings(index_dir=clean_env / "x").index_dir == clean_env / "x"


def test_settings_come_from_the_home_and_working_folders_env_files(clean_env, monkeypatch):
    home = clean_env / "h"
    home.mkdir()
    monkeypatch.setenv("MRA_HOME", str(home))
    (home / ".env").write_text("MRA_TOP_K=7\nMRA_PORT=9001\nMRA_SAMPLING__GUIDANCE=2\n")
    assert (Settings().top_k, Settings().port, Settings().sampling.guidance) == (7, 9001, 2.0)
    (clean_env / ".env").write_text("# the working folder's file wins over the home folder's\nMRA_TOP_K=5\n")
    assert (Settings().top_k, Settings().port) == (5, 9001)
    monkeypatch.setenv("MRA_TOP_K", "3")  # and the environment over both
    assert Settings().top_k == 3


def test_a_bad_value_in_an_env_file_is_named(clean_env):
    (clean_env / ".env").write_text("MRA_API_PORT=eighty\n")
    with pytest.raises(ValueError, match="api_port"):
        Settings()


def test_the_api_settings_and_their_defaults(clean_env, monkeypatch):
    s = Settings()
    assert s.api_port == 8000 and s.api_key is None and s.host == "127.0.0.1"
    monkeypatch.setenv("MRA_API_KEY", "sekrit")
    assert Settings().api_key.get_secret_value() == "sekrit" and "sekrit" not in repr(Settings())


def test_every_line_of_env_example_is_a_setting_with_a_valid_value(clean_env):
    """The example sets each setting it names (commented lines included) to a value the settings accept."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    assignments = [m.groups() for line in lines if (m := re.match(r"#?\s*(MRA_[A-Z0-9_]+)=(.*)$", line))]
    assert len(assignments) >= 8
    fields, sampling = set(Settings.model_fields), set(Sampling.model_fields)
    for name, value in assignments:
        field = name.removeprefix("MRA_").lower()
        group, _, sub = field.partition("__")
        assert (group == "sampling" and sub in sampling) or (not sub and field in fields), name
        (clean_env / ".env").write_text(f"{name}={value}\n")
        Settings()  # raises on a value the settings refuse
