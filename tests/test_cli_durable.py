"""The command line's chat keeps a message before its reply, and a reply cut by a kill -9 leaves the question
unanswered, shown on the next start and asked again with /retry (issue 29)."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

from assistant.chat.memory import CLI_OWNER
from assistant.cli import cmd_chat, parse_args
from tests.test_ui_durable import SLOW
from tests.tiny import tiny_artifacts, tiny_chat, tiny_env, tiny_loaded  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent


def test_a_chat_killed_mid_reply_keeps_the_question_to_ask_again(tiny_chat, tmp_path: Path) -> None:
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "sitecustomize.py").write_text(SLOW)  # 0.15 s a token: the kill lands mid-reply
    settings = tiny_chat.settings
    env = {**os.environ, **tiny_env(settings), "MRA_CHATS_DB": str(tiny_chat.memory.path),
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "slow"), str(ROOT)]), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "assistant", "chat", "--session", "k1", "--max-new-tokens", "80"],
                            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        proc.stdin.write("Write a positive review of Toy Story\n")
        proc.stdin.flush()
        seen = ""
        while "assistant> " not in seen:
            char = proc.stdout.read(1)
            assert char, f"the chat ended before replying: {seen!r}"
            seen += char
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    memory = tiny_chat.memory
    (kept,) = memory.messages("k1", CLI_OWNER)
    assert kept["content"] == "Write a positive review of Toy Story" and kept["status"] == "unanswered"

    lines = iter(["/retry", "/quit"])
    out = io.StringIO()
    assert cmd_chat(parse_args(["chat", "--session", "k1", "--max-new-tokens", "5"]), tiny_chat, out,
                    read=lambda _prompt: next(lines)) == 0
    assert "unanswered: 'Write a positive review of Toy Story'" in out.getvalue()
    assert [(m["role"], m.get("status")) for m in memory.messages("k1", CLI_OWNER)] == [("user", None),
                                                                                           ("assistant", None)]
