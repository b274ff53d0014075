"""The subcommands `mra` (assistant.cli) hands to other modules, and `serve`, whose code loads only when asked.

    mra ingest ...    = python ingest.py ...              (assistant/ingest.py)
    mra finetune ...  = python -m assistant.finetune ...
    mra evaluate ...  = python -m assistant.evaluate ...
    mra ui ...        = python -m ui ...                   (the page's launcher; options go to `streamlit run`)
    mra serve [--host H] [--port P]                        (assistant.api.server.serve)

Their modules are imported only when their command runs, so `mra chat` never loads training code or FastAPI.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from assistant.logs import printable

# Commands whose options and code live in a module of their own: the rest of the line goes to its `main`.
HANDED_ON = {
    "ingest": ("assistant.ingest", "read, clean, chunk and embed reviews into the store (python ingest.py)"),
    "finetune": ("assistant.finetune", "fine-tune the review model, then evaluate it into its model card"),
    "evaluate": ("assistant.evaluate", "the 2x2 evaluation: fine-tuning, RAG, both, neither"),
}
VERBOSE_FLAGS = ("-v", "--verbose")


def program_name() -> str:
    """What the usage lines call this command: `mra` as installed, `python -m assistant` run as a module."""
    name = Path(sys.argv[0]).name
    return "python -m assistant" if name in ("__main__.py", "-m", "") else name


def hand_on(command: str, argv: list[str], verbose: bool) -> int:
    """Run a command whose options live in its own module, with the rest of the line (`-v` given before the
    command name travels with it)."""
    prog = f"{program_name()} {command}"
    if command == "ui":  # the page's launcher replaces this process with `streamlit run` anyway
        os.execv(sys.executable, [sys.executable, "-m", "ui", *argv])
    rest = [*(["-v"] if verbose else []), *argv]
    module = importlib.import_module(HANDED_ON[command][0])
    return module.main(rest, prog=prog) if command == "ingest" else module.main(rest)


def split_handed_on(argv: list[str]) -> tuple[str, list[str], bool] | None:
    """(command, the rest of the line, verbose) when the line names a handed-on command; None otherwise."""
    verbose = False
    for i, word in enumerate(argv):
        if word in VERBOSE_FLAGS:
            verbose = True
            continue
        return (word, argv[i + 1:], verbose) if word in (*HANDED_ON, "ui") else None
    return None


def cmd_serve(args: argparse.Namespace) -> int:
    """The HTTP API, imported only here: the other commands need neither FastAPI nor uvicorn."""
    try:
        from assistant.api.server import serve
    except ImportError as exc:
        missing_library = getattr(exc, "name", None) in ("fastapi", "starlette", "uvicorn")
        print(printable(f"error: the API server cannot start here ({exc})"
                        f"{'; pip install fastapi uvicorn' if missing_library else ''}"), file=sys.stderr)
        return 2
    serve(args.host, args.port)
    return 0
