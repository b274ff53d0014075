"""The package: one `mra` command with every subcommand, the wheel it builds, installed into a fresh environment
and asked for help from outside the checkout; the page's options shipped with it; warnings from our code fail."""
from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tomllib
import types
import warnings
from pathlib import Path

import pytest

from assistant import commands

ROOT = Path(__file__).resolve().parent.parent
SUBCOMMANDS = ("ui", "chat", "ask", "ingest", "finetune", "evaluate", "serve", "status", "sessions")


def test_pyproject_declares_the_command_the_extras_and_the_shipped_model():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"mra": "assistant.commands:main"}
    assert project["project"]["requires-python"] == ">=3.11"
    assert {"qdrant", "dev"} <= set(project["project"]["optional-dependencies"])
    assert "model/shipped/*" in project["tool"]["setuptools"]["package-data"]["assistant"]
    assert any(d.startswith("fastapi") for d in project["project"]["dependencies"])


def test_the_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as done:
        commands.main(["--help"])
    listed = capsys.readouterr().out
    assert done.value.code == 0 and all(f"    {name}" in listed for name in SUBCOMMANDS)


@pytest.mark.parametrize("name", [n for n in SUBCOMMANDS if n != "ui"])
def test_every_subcommand_answers_help(name, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/mra"])
    with pytest.raises(SystemExit) as done:
        commands.main([name, "--help"])
    usage = capsys.readouterr().out
    assert done.value.code == 0 and usage.startswith("usage: ") and name in usage.splitlines()[0]


def test_chat_commands_get_the_whole_line(monkeypatch):
    import assistant.cli

    seen = []
    monkeypatch.setattr(assistant.cli, "main", lambda argv: seen.append(argv) or 0)
    assert commands.main(["-v", "ask", "hello", "--json"]) == 0
    assert seen == [["-v", "ask", "hello", "--json"]]


def test_handed_on_commands_get_the_rest_of_the_line(monkeypatch):
    seen = {}
    fake = types.SimpleNamespace(main=lambda argv, prog=None: seen.update(argv=argv, prog=prog) or 3)
    monkeypatch.setattr(commands.importlib, "import_module", lambda name: seen.update(module=name) or fake)
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/mra"])
    assert commands.main(["-v", "ingest", "reviews.csv", "--dry-run"]) == 3
    assert seen == {"module": "assistant.ingest", "argv": ["-v", "reviews.csv", "--dry-run"], "prog": "mra ingest"}
    assert commands.main(["finetune", "--max-minutes", "5"]) == 3 and seen["module"] == "assistant.finetune"
    assert seen["argv"] == ["--max-minutes", "5"]


def test_ui_replaces_the_process_with_the_page_launcher(monkeypatch):
    monkeypatch.setattr(commands.os, "execv", lambda path, argv: (_ for _ in ()).throw(SystemExit(argv)))
    with pytest.raises(SystemExit) as done:
        commands.main(["ui", "--theme.base", "dark"])
    assert done.value.code == [sys.executable, "-m", "ui", "--theme.base", "dark"]


def test_serve_starts_the_api_with_the_address_given(monkeypatch):
    calls = []
    api = types.ModuleType("assistant.api.server")
    api.serve = lambda host=None, port=None: calls.append((host, port))
    monkeypatch.setitem(sys.modules, "assistant.api", types.ModuleType("assistant.api"))
    monkeypatch.setitem(sys.modules, "assistant.api.server", api)
    assert commands.main(["serve", "--host", "0.0.0.0", "--port", "8123"]) == 0
    assert commands.main(["serve"]) == 0
    assert calls == [("0.0.0.0", 8123), (None, None)]


def test_serve_without_fastapi_says_so_in_one_line(monkeypatch, capsys):
    def missing(*_args, **_kwargs):
        raise ModuleNotFoundError("No module named 'fastapi'", name="fastapi")

    monkeypatch.setattr("builtins.__import__", _failing_import("assistant.api.server", missing))
    assert commands.main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "fastapi" in err and "pip install fastapi uvicorn" in err


def _failing_import(target: str, fail):
    real = __import__

    def imports(name, *args, **kwargs):
        return fail() if name == target else real(name, *args, **kwargs)

    return imports


def test_the_shipped_page_options_match_the_checkouts_streamlit_config():
    from ui.__main__ import PAGE_OPTIONS, page_options

    checkout = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    checkout.pop("server")  # the address: the launcher takes it from the settings
    assert tomllib.loads(PAGE_OPTIONS.read_text()) == checkout
    flags = page_options()
    assert flags[flags.index("--client.toolbarMode") + 1] == "minimal"
    assert flags[flags.index("--browser.gatherUsageStats") + 1] == "false"


def test_a_warning_raised_from_our_code_fails_the_test():
    """pyproject.toml's filterwarnings: our modules' warnings are errors, a library's own only shown."""
    ours = {"__name__": "assistant.model.example", "warnings": warnings}
    with pytest.raises(FutureWarning):
        exec("warnings.warn('soon gone', FutureWarning)", ours)  # noqa: S102 - a module of ours, in miniature
    theirs = {"__name__": "somelibrary.module", "warnings": warnings}
    with pytest.warns(FutureWarning):
        exec("warnings.warn('soon gone', FutureWarning)", theirs)  # noqa: S102


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel `pip wheel .` builds, installed into a new virtual environment whose other packages are this
    one's (a .pth file: nothing is downloaded); its `bin/` folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # setuptools builds in the source folder (build/, *.egg-info): a copy, not the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "ingest.py", "assistant", "ui"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(source)],
                   check=True, capture_output=True, cwd=tmp)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")], check=True)
    venv_python = tmp / "venv" / "bin" / "python"
    purelib = subprocess.run([venv_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next((tmp / "dist").glob("movie_review_assistant-*.whl"))
    subprocess.run([*pip, "--python", str(venv_python), "install", "--no-deps", str(wheel)], check=True,
                   capture_output=True, cwd=tmp)
    return tmp / "venv" / "bin"


def test_the_installed_command_answers_help_from_outside_the_checkout(installed, tmp_path):
    """The wheel's own code, its entry point, and the subcommands that import little (the others' help is checked
    in this process above: each one imports torch and transformers, minutes on a busy two-core machine)."""
    where = subprocess.run([installed / "python", "-c", "import assistant, ui; print(assistant.__file__, ui.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert str(ROOT) not in where and "site-packages" in where
    for line in ([], ["serve"], ["ingest"]):
        run = subprocess.run([installed / "mra", *line, "--help"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=600)
        assert run.returncode == 0 and run.stdout.startswith("usage: mra"), (line, run.stderr[-2000:])


@pytest.mark.parametrize(("code", "expected"), [
    ("from assistant.data.openings import critic_openings; t = critic_openings(); "
     "print(sorted(t), t['positive'].whole(['this', 'is'], 'a') > 0)", "['negative', 'positive'] True"),
    ("from assistant.model.critic_scorer import CriticScorer; s = CriticScorer.shipped(); "
     "print(s is not None and s.embedding_dim)", "384"),
], ids=["critics-openings", "critic-likeness-scorer"])
def test_the_installed_package_reads_its_shipped_data(installed, tmp_path, code, expected):
    out = subprocess.run([installed / "python", "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         check=True).stdout.strip()
    assert out == expected


def test_the_installed_settings_live_in_the_users_data_folder(installed, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    code = "from assistant.settings import Settings; s = Settings(); print(s.index_dir); print(s.data_dir)"
    out = subprocess.run([installed / "python", "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                         check=True).stdout.split()
    home = tmp_path / "xdg" / "movie-review-assistant"
    assert out == [str(home / "index"), str(home / "data")]


def test_the_installed_ingest_says_in_one_line_what_is_missing(installed, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MRA_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([installed / "mra", "ingest"], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=300)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2 and len(lines) == 1, run.stderr[-2000:]
    assert str(tmp_path / "home" / "data") in lines[0] and "MRA_DATA_DIR" in lines[0]
