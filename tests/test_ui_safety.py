"""The page is safe to leave running: loopback unless chosen otherwise, bounded waits, builds that wait their
turn and stop with the server, card values shown as text."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from streamlit.testing.v1 import AppTest

from assistant.data import generations
from assistant.data.store_writer import store_lock
from assistant.settings import Sampling, Settings
from ui import access
from ui.__main__ import command
from ui.jobs import Builder, settings_env

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "ui" / "app.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(("host", "client", "allowed"), [
    ("127.0.0.1", None, True),  # Streamlit reports a loopback peer as None
    ("127.0.0.1", "127.0.0.2", True),
    ("localhost", "::ffff:127.0.0.1", True),
    ("127.0.0.1", "192.168.1.20", False),
    ("::1", "2001:db8::1", False),
    ("localhost", "not an address", False),
    ("0.0.0.0", "192.168.1.20", True),  # serving the network was chosen with MRA_HOST
    ("192.168.1.5", "203.0.113.7", True),
])
def test_loopback_settings_serve_only_this_machine(host, client, allowed):
    assert access.client_allowed(host, client) is allowed


def test_the_page_refuses_a_remote_client_when_the_settings_say_loopback(monkeypatch, tmp_path):
    monkeypatch.setenv("MRA_HOST", "127.0.0.1")
    monkeypatch.setenv("MRA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("MRA_CHATS_DB", str(tmp_path / "chats.sqlite"))
    monkeypatch.setattr(access, "client_ip", lambda: "203.0.113.7")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["This assistant serves only the machine it runs on. To share it, its "
                                          "owner sets MRA_HOST (see SECURITY.md)."]
    assert not at.chat_input and not at.button and not at.sidebar.markdown


def test_the_launcher_binds_the_settings_address_from_any_folder(tmp_path):
    settings = Settings(port=free_port())
    cmd = command(settings)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1" and str(settings.port) in cmd
    with pytest.raises(ValueError, match="MRA_HOST"):
        command(settings, ["--server.address=0.0.0.0"])
    env = {**os.environ, "MRA_PORT": str(settings.port), "PYTHONPATH": str(REPO), "MRA_INDEX_DIR": str(tmp_path)}
    server = subprocess.Popen([sys.executable, "-m", "ui"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # a folder without .streamlit/config.toml
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{settings.port}/_stcore/health", timeout=2):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the page did not come up"
                time.sleep(0.5)
        listening = [c.laddr.ip for c in psutil.Process(server.pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening and all(access.is_loopback(ip) for ip in listening), listening
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_waiting_request_gives_up_after_its_time_and_keeps_the_question(monkeypatch, tmp_path):
    import ui.reply_worker
    from assistant.chat.memory import ChatMemory
    from ui.reply_worker import ReplyWorker

    busy = threading.Lock()
    busy.acquire()  # another session's reply that never ends
    monkeypatch.setattr(ui.reply_worker, "generation_lock", lambda: busy)
    monkeypatch.setattr(ui.reply_worker, "REPLY_WAIT_S", 0.3)

    class NoModel:  # never reached: the wait gives up first
        memory = ChatMemory(tmp_path / "chats.sqlite")

    worker = ReplyWorker()
    NoModel.memory.add_pending("s1", "owner-token-0123456789", "Write a review of Jaws")
    started = time.monotonic()
    worker.submit(NoModel(), "s1")
    while worker.busy("s1") and time.monotonic() - started < 30:
        time.sleep(0.05)
    (kept,) = NoModel.memory.messages("s1", "owner-token-0123456789")
    assert kept["content"] == "Write a review of Jaws" and kept["status"] == "unanswered"
    assert kept["error"] == "Another chat's reply has taken over 0.3 s; please ask again"
    assert time.monotonic() - started < 30


def test_build_subprocesses_get_the_pages_settings():
    page = Settings(sampling=Sampling(guidance=2.5, drafts=3), mmr=False, index_dir=Path("/somewhere/index"),
                    qdrant_api_key="s3cret", qdrant_url=None)
    env = settings_env(page)
    saved = dict(os.environ)
    try:
        os.environ.update(env)
        child = Settings()
        assert child == page and child.qdrant_api_key.get_secret_value() == "s3cret" and child.qdrant_url is None
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_the_index_build_waits_for_a_terminals_ingest_and_can_be_cancelled(tmp_path):
    settings = Settings(index_dir=tmp_path / "index", data_dir=tmp_path / "data", models_dir=tmp_path / "models")
    settings.data_dir.mkdir()
    builder = Builder()
    with store_lock(settings):
        builder.start(settings, ["index"], 0.0)
        deadline = time.monotonic() + 120
        while not builder.snapshot()[0].stage.startswith("waiting: "):
            assert builder.busy() and time.monotonic() < deadline, builder.snapshot()
            time.sleep(0.2)
        assert f"waiting: pid {os.getpid()} (" in builder.snapshot()[0].stage
        builder.cancel()
        while builder.busy() and time.monotonic() < deadline:
            time.sleep(0.2)
    assert builder.snapshot()[0].state == "cancelled"
    assert generations.current(settings.index_dir) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's parent-death signal is Linux's")
def test_a_build_subprocess_stops_when_the_server_is_killed():
    server_script = ("import os, sys, time; from ui.jobs import start_child; "
                     "child = start_child([sys.executable, '-c', 'import time; time.sleep(300)'], dict(os.environ)); "
                     "print(child.pid, flush=True); time.sleep(300)")
    server = subprocess.Popen([sys.executable, "-c", server_script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        child = psutil.Process(int(server.stdout.readline()))
        assert child.is_running() and child.nice() >= 10
        server.send_signal(signal.SIGKILL)  # no clean-up code runs in the server
        server.wait(timeout=30)
        gone, _ = psutil.wait_procs([child], timeout=15)
        assert gone or child.status() == psutil.STATUS_ZOMBIE, "the fine-tune outlived the server"
    finally:
        server.kill()


def test_model_card_values_are_shown_as_text(tmp_path, monkeypatch):
    home = tmp_path / "models" / "tuned"
    building = generations.start_building(home)
    (building / "config.json").write_text("{}")
    (building / "model.safetensors").write_bytes(b"")
    nasty = "![x](http://evil.example/p.png) <img src=x onerror=alert(1)> :red[red]"
    (building / "model_card.json").write_text(json.dumps({
        "base": nasty, "method": nasty, "params": nasty, "train_minutes": nasty, "train_tokens": nasty,
        "val_ppl_context": nasty, "judge_acc": 0.8}))
    generations.publish(building, home)
    monkeypatch.setenv("MRA_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("MRA_REPORTS_DIR", str(tmp_path / "reports"))
    at = AppTest.from_string("from ui.about import about_page\nabout_page()", default_timeout=60).run()
    assert not at.exception, at.exception
    shown = [m.value for m in at.markdown] + [m.value for m in at.metric]
    assert any("evil" in text for text in shown), shown
    for text in shown:  # no image, HTML tag, link or directive: every [ < : from the card is escaped
        assert re.search(r"(?<!\\)[<\[]|(?<!\\):red", text) is None, text
