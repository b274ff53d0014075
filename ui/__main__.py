"""`python -m ui [STREAMLIT OPTIONS]` (or `mra ui`): serve the chat page on the address and port from the settings.

    MRA_HOST (default 127.0.0.1: this machine only), MRA_PORT (default 8501)

The address comes from the app's settings wherever the command is started, and the page's other Streamlit options
from `ui/streamlit.toml` (shipped with the package), unlike `streamlit run`, whose `.streamlit/config.toml` is read
only from the working folder. Serving beyond loopback is a choice made with
MRA_HOST, and there is no authentication: see SECURITY.md. Other options pass through to `streamlit run`.
"""
from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

from assistant.settings import Settings
from ui.access import is_loopback

APP = Path(__file__).resolve().parent / "app.py"
PAGE_OPTIONS = Path(__file__).resolve().parent / "streamlit.toml"
OWN_OPTIONS = ("--server.address", "--server.port")


def page_options(path: Path = PAGE_OPTIONS) -> list[str]:
    """The shipped Streamlit options as `streamlit run` flags: `[section] key = value` -> `--section.key value`."""
    flags = []
    for section, values in tomllib.loads(path.read_text()).items():
        for key, value in values.items():
            flags += [f"--{section}.{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return flags


def command(settings: Settings, extra: Sequence[str] = ()) -> list[str]:
    """The `streamlit run` command line for these settings; ValueError if `extra` tries to set the address."""
    for option in extra:
        if option.split("=", 1)[0] in OWN_OPTIONS:
            raise ValueError(f"{option.split('=', 1)[0]} comes from the settings: set MRA_HOST / MRA_PORT instead")
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", settings.host,
            "--server.port", str(settings.port), "--server.headless", "true", *page_options(), *extra]


def environment() -> dict[str, str]:
    # A reverse proxy on this machine is the trust boundary: the page's loopback check reads the proxy's own
    # address, not a client address it forwards (uvicorn would otherwise take X-Forwarded-For from 127.0.0.1).
    return {**os.environ, "FORWARDED_ALLOW_IPS": os.environ.get("FORWARDED_ALLOW_IPS", "")}


def main(argv: Sequence[str] | None = None) -> int:
    settings = Settings()
    try:
        cmd = command(settings, list(sys.argv[1:] if argv is None else argv))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not is_loopback(settings.host):
        print(f"Serving on {settings.host}:{settings.port}: anyone who can reach this address can use the assistant "
              "and start builds. There is no authentication; put it behind a proxy that has some (SECURITY.md).",
              file=sys.stderr)
    os.execve(sys.executable, cmd, environment())
    return 0  # not reached: exec replaces this process


if __name__ == "__main__":
    sys.exit(main())
