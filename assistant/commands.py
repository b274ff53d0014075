"""`mra` (installed) and `python -m assistant`: one command, each subcommand's code imported only when it runs.

    mra ui ...        = python -m ui ...                   (the page's launcher; options go to `streamlit run`)
    mra chat | ask | sessions | status ...                 (assistant/cli.py)
    mra ingest ...    = python ingest.py ...              (assistant/ingest.py)
    mra finetune ...  = python -m assistant.finetune ...
    mra evaluate ...  = python -m assistant.evaluate ...
    mra serve [--host H] [--port P]                        (the OpenAI-compatible API: assistant.api.server.serve)

So `mra --help`, `mra serve` or `mra ingest --dry-run` load neither the chat's models nor the training code, and
`mra chat` never loads FastAPI. Exit status: 0 done, 2 a clear error (one line on stderr), 1 anything unexpected.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from assistant.argtypes import port_arg, program_name
from assistant.logs import printable

# name -> (the module whose `main` takes the rest of the line, what it does)
SUBCOMMANDS = {
    "ui": ("ui.__main__", "serve the chat page in the browser (options go to streamlit run)"),
    "chat": ("assistant.cli", "chat in the terminal, streaming"),
    "ask": ("assistant.cli", "one turn"),
    "ingest": ("assistant.ingest", "read, clean, chunk and embed reviews into the store (python ingest.py)"),
    "finetune": ("assistant.finetune", "fine-tune the review model, then evaluate it into its model card"),
    "evaluate": ("assistant.evaluate", "the 2x2 evaluation: fine-tuning, RAG, both, neither"),
    "serve": ("", "the OpenAI-compatible HTTP API (loopback unless MRA_HOST says)"),
    "status": ("assistant.cli", "models, store and chat database"),
    "sessions": ("assistant.cli", "list, show, export, rename or delete chat sessions"),
}
CHAT_MODULE = "assistant.cli"  # takes its whole line, subcommand included
VERBOSE_FLAGS = ("-v", "--verbose")


def listing_parser() -> argparse.ArgumentParser:
    """The top-level help: every subcommand by name; each one's own options are its module's to show."""
    p = argparse.ArgumentParser(prog=program_name(), description="Movie-review chat assistant.",
                                epilog="`%(prog)s SUBCOMMAND --help` shows a subcommand's options.")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress (to stderr)")
    sub = p.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    for name, (_, summary) in SUBCOMMANDS.items():
        sub.add_parser(name, help=summary, add_help=False)
    return p


def serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"{program_name()} serve", description=SUBCOMMANDS["serve"][1])
    p.add_argument("--host", default=None, help="address to listen on (default: settings.host, MRA_HOST)")
    p.add_argument("--port", type=port_arg, default=None, help="default: settings.api_port, MRA_API_PORT")
    p.add_argument("-v", "--verbose", action="store_true", help="log requests (to stderr)")
    return p


def split(argv: list[str]) -> tuple[str | None, list[str], bool]:
    """(the subcommand, the rest of the line, whether -v came before it); None when the line names none."""
    for i, word in enumerate(argv):
        if word not in VERBOSE_FLAGS:
            return (word if word in SUBCOMMANDS else None), argv[i + 1:], i > 0
    return None, [], bool(argv)


def cmd_serve(argv: list[str]) -> int:
    """The HTTP API, imported only here: the other commands need neither FastAPI nor uvicorn."""
    args = serve_parser().parse_args(argv)
    try:
        from assistant.api.server import serve
    except ImportError as exc:
        missing_library = getattr(exc, "name", None) in ("fastapi", "starlette", "uvicorn")
        print(printable(f"error: the API server cannot start here ({exc})"
                        f"{'; pip install fastapi uvicorn' if missing_library else ''}"), file=sys.stderr)
        return 2
    if args.verbose:
        from assistant.logs import setup_logging

        setup_logging(verbose=True)
    serve(args.host, args.port)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command, rest, verbose = split(argv)
    if command is None:
        listing_parser().parse_args(argv)  # prints the help, or the usage error, and exits
        return 2
    if command == "serve":
        return cmd_serve([*(["-v"] if verbose else []), *rest])
    if command == "ui":  # the page's launcher replaces this process with `streamlit run` anyway
        os.execv(sys.executable, [sys.executable, "-m", "ui", *rest])
    module = importlib.import_module(SUBCOMMANDS[command][0])
    if SUBCOMMANDS[command][0] == CHAT_MODULE:
        return module.main(argv)
    rest = [*(["-v"] if verbose else []), *rest]
    return module.main(rest, prog=f"{program_name()} {command}") if command == "ingest" else module.main(rest)
