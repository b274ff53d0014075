"""`python -m assistant`: --json output parses in the documented shape; chat, sessions and errors behave."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import cmd_chat, main, parse_args
from tests.tiny import StubProbe, tiny_artifacts, tiny_chat, tiny_env, tiny_loaded  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parent.parent
SOURCE_KEYS = {"movie", "critic", "publication", "sentiment", "score", "similarity", "text"}
REPLY_KEYS = {"reply", "sources", "request", "mode", "timings"}


def run_main(argv, **kwargs) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, out=out, **kwargs)
    return code, out.getvalue()


def test_ask_json_in_a_real_process(tiny_artifacts, tmp_path):
    env = {**os.environ, **tiny_env(tiny_artifacts), "MRA_CHATS_DB": str(tmp_path / "cli.sqlite")}
    done = subprocess.run([sys.executable, "-m", "assistant", "ask", "What do critics think of Gigli?", "--json",
                           "--session", "cli-test"], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert REPLY_KEYS <= set(data) and data["mode"] == "data"
    assert data["request"]["kind"] == "opinion" and data["request"]["movie"] == "Gigli"
    assert data["opinion"]["fresh"] == 3 and data["opinion"]["rotten"] == 5
    assert data["sources"] and all(SOURCE_KEYS <= set(s) for s in data["sources"])
    assert "Traceback" not in done.stderr


def test_ask_json_and_compare_shapes(tiny_chat):
    code, out = run_main(["ask", "Write a positive review of Toy Story", "--json", "--max-new-tokens", "5",
                          "--session", "j1"], assistant=tiny_chat)
    data = json.loads(out)
    assert code == 0 and REPLY_KEYS <= set(data) and data["mode"] == "rag" and data["model"] == "tuned"
    assert {"sentiment", "movie", "kind"} <= set(data["request"]) and data["request"]["sentiment"] == "positive"
    assert data["sources"] and all(SOURCE_KEYS <= set(s) for s in data["sources"])
    assert {"retrieval_s", "first_token_s", "total_s"} <= set(data["timings"])

    code, out = run_main(["ask", "now a negative one", "--json", "--compare", "--max-new-tokens", "5",
                          "--session", "j1"], assistant=tiny_chat)
    both = json.loads(out)
    assert code == 0 and set(both) == {"rag", "no_rag"}
    assert both["rag"]["request"] == both["no_rag"]["request"] and both["rag"]["request"]["movie"] == "Toy Story"
    assert both["rag"]["sources"] and both["no_rag"]["sources"] == [] and both["no_rag"]["mode"] == "no_rag"

    code, out = run_main(["ask", "Write a negative review of Gigli", "--json", "--no-rag", "--max-new-tokens", "5",
                          "--no-remember"], assistant=tiny_chat)
    data = json.loads(out)
    assert data["mode"] == "no_rag" and data["sources"] == []


def test_ask_for_people_streams_then_lists_sources(tiny_chat):
    code, out = run_main(["ask", "thumbs down on gigli", "--max-new-tokens", "5", "--session", "h1"],
                         assistant=tiny_chat)
    assert code == 0 and out.startswith("assistant> ") and "[1] " in out and "rag" in out


def test_chat_loop_with_commands(tiny_chat):
    lines = iter(["hi", "Write a negative review of Gigli", "why?", "/rag off", "another", "/rename Gigli talk",
                  "/sessions", "/export json", "/bogus", "/quit"])
    out = io.StringIO()
    args = parse_args(["chat", "--session", "c1", "--max-new-tokens", "5"])
    assert cmd_chat(args, tiny_chat, out, read=lambda _prompt: next(lines)) == 0
    text = out.getvalue()
    assert "retrieved" in text and "RAG off" in text and "unknown command /bogus" in text
    assert "c1\t8 messages\tGigli talk" in text
    exported = json.loads(text[text.index('{\n  "session_id"'):text.index("unknown command")])
    assert [m["mode"] for m in exported["messages"] if m["role"] == "assistant"] == ["chat", "rag", "chat", "no_rag"]


def test_sessions_commands(tiny_chat):
    settings = tiny_chat.settings
    tiny_chat.reply("s1", "hi")
    code, out = run_main(["sessions", "--json"], settings=settings)
    assert code == 0 and [s["session_id"] for s in json.loads(out)] == ["s1"]
    assert run_main(["sessions", "rename", "s1", "My", "chat"], settings=settings)[0] == 0
    code, out = run_main(["sessions", "export", "s1", "--format", "json"], settings=settings)
    assert json.loads(out)["title"] == "My chat"
    assert run_main(["sessions", "show", "s1"], settings=settings)[1].startswith("# My chat")
    assert run_main(["sessions", "delete", "s1"], settings=settings)[0] == 0
    assert run_main(["sessions"], settings=settings)[1].strip() == "no sessions yet"


def test_sessions_are_the_command_lines_unless_all(tiny_chat, capsys):
    settings, browser = tiny_chat.settings, "browser-token-0123456789"
    tiny_chat.reply("web1", "hi", owner=browser)
    tiny_chat.reply("c1", "hi")
    assert [s["session_id"] for s in json.loads(run_main(["sessions", "--json"], settings=settings)[1])] == ["c1"]
    listed_json = run_main(["sessions", "--all", "--json"], settings=settings)[1]
    everyone = json.loads(listed_json)
    assert {s["session_id"]: s["owner"] for s in everyone} == {"web1": "brow…", "c1": "cli"}
    listed = run_main(["sessions", "--all"], settings=settings)[1]
    assert "web1\t2 messages\tbrow…" in listed
    assert browser not in listed and browser not in listed_json, "a browser's token is the key to its chats"
    capsys.readouterr()
    for argv in (["show", "web1"], ["export", "web1"], ["rename", "web1", "mine"], ["delete", "web1"]):
        assert run_main(["sessions", *argv], settings=settings)[0] == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no session 'web1'" in err[0], err
    assert run_main(["ask", "thanks", "--session", "web1"], assistant=tiny_chat)[0] == 2  # nor continued
    assert "no session 'web1'" in capsys.readouterr().err
    assert run_main(["sessions", "show", "web1", "--all"], settings=settings)[1].startswith("# hi")
    assert run_main(["sessions", "delete", "web1", "--all"], settings=settings)[0] == 0
    assert tiny_chat.memory.list_sessions(browser) == []


def test_errors_are_one_line_with_the_command_to_run(tmp_path, capsys):
    from assistant.settings import Settings

    empty = Settings(index_dir=tmp_path / "i", models_dir=tmp_path / "m", chats_db=tmp_path / "c.sqlite",
                     base_model=str(tmp_path / "no-such-base"))
    code, _ = run_main(["ask", "hi", "--json"], settings=empty)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "python ingest.py" in err[0] and "python -m assistant.finetune" in err[0]
    assert run_main(["sessions", "delete", "nope"], settings=empty)[0] == 2
    assert "no session" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["ask"], ["ask", "hi", "--model", "gpt5"], ["frobnicate"]])
def test_bad_arguments_exit_with_usage(argv):
    with pytest.raises(SystemExit) as stop:
        parse_args(argv)
    assert stop.value.code == 2


def test_drafts_flag_reaches_the_chain_and_is_reported(tiny_chat):
    tiny_chat.probe = StubProbe()
    code, out = run_main(["ask", "Write a negative review of Gigli", "--json", "--drafts", "3", "--max-new-tokens",
                          "5", "--no-remember"], assistant=tiny_chat)
    data = json.loads(out)
    assert code == 0 and data["drafts"]["n"] == 3 and len(data["drafts"]["on_target"]) == 3
    assert len(tiny_chat.probe.calls) == 1
    code, out = run_main(["ask", "Write a negative review of Gigli", "--drafts", "4", "--max-new-tokens", "5",
                          "--no-remember"], assistant=tiny_chat)
    assert code == 0 and "writing 4 drafts" in out
    assert re.search(r"drafts: chose draft [1-4] of 4 \([01]\.\d\d negative\); scores ", out), out
    code, out = run_main(["ask", "Write a negative review of Gigli", "--json", "--max-new-tokens", "5",
                          "--no-remember", "--drafts", "1"], assistant=tiny_chat)
    assert json.loads(out)["drafts"] is None and len(tiny_chat.probe.calls) == 2  # one, streamed, never scored
    code, out = run_main(["ask", "Write a negative review of Gigli", "--json", "--max-new-tokens", "5",
                          "--no-remember"], assistant=tiny_chat)
    default = tiny_chat.settings.sampling.drafts  # the settings' count when the flag is left out
    assert default > 1 and json.loads(out)["drafts"]["n"] == default and len(tiny_chat.probe.calls) == 3


def test_drafts_without_a_probe_say_so(tiny_chat):
    code, out = run_main(["ask", "Write a negative review of Gigli", "--drafts", "3", "--max-new-tokens", "5",
                          "--no-remember"], assistant=tiny_chat)
    assert code == 0 and "note: Wrote one draft instead of 3" in out and "chose draft" not in out


def test_chat_drafts_command(tiny_chat):
    lines = iter(["/drafts 3", "/drafts 1", "/quit"])
    out = io.StringIO()
    args = parse_args(["chat", "--session", "d1", "--drafts", "2"])
    assert args.drafts == 2
    assert cmd_chat(args, tiny_chat, out, read=lambda _prompt: next(lines)) == 0
    text = out.getvalue()
    assert "2 drafts per review" in text and "drafts 3\n" in text and "drafts 1 (streams live)" in text


@pytest.mark.parametrize("flag, value", [("--drafts", "0"), ("--drafts", "9"), ("--drafts", "many"),
                                         ("--guidance", "0.5"), ("--guidance", "6"), ("--guidance", "lots")])
def test_drafts_or_guidance_out_of_range_exit_with_usage(flag, value, capsys):
    with pytest.raises(SystemExit) as stop:
        parse_args(["ask", "hi", flag, value])
    assert stop.value.code == 2 and f"{flag[2:]} must be" in capsys.readouterr().err


def test_guidance_flag_reaches_the_generator_and_is_reported(tiny_chat, monkeypatch):
    import assistant.model.decoding

    scales = []
    real = assistant.model.decoding.guide_scores

    def spy(scores, negative_logits, scale, log_plausibility, **penalty):
        scales.append(scale)
        return real(scores, negative_logits, scale, log_plausibility, **penalty)

    monkeypatch.setattr(assistant.model.decoding, "guide_scores", spy)
    code, out = run_main(["ask", "Write a negative review of Gigli", "--json", "--guidance", "2.5",
                          "--max-new-tokens", "4", "--no-remember"], assistant=tiny_chat)
    assert code == 0 and json.loads(out)["guidance"] == 2.5 and scales and set(scales) == {2.5}  # every token
    guided = len(scales)
    code, out = run_main(["ask", "Write a negative review of Gigli", "--json", "--guidance", "1",
                          "--max-new-tokens", "4", "--no-remember"], assistant=tiny_chat)
    assert code == 0 and json.loads(out)["guidance"] == 1.0 and len(scales) == guided  # off: no guided step


def test_chat_guidance_command(tiny_chat):
    lines = iter(["/guidance 3", "/guidance 1", "/guidance 12", "/quit"])
    out = io.StringIO()
    assert cmd_chat(parse_args(["chat", "--session", "g1"]), tiny_chat, out, read=lambda _prompt: next(lines)) == 0
    text = out.getvalue()
    assert "guidance 3\n" in text and "guidance 1 (off)" in text and "error: guidance must be 1 to 5" in text

