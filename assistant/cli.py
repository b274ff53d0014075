"""The chat's commands: `mra chat | ask | sessions | status` (`python -m assistant ...`; assistant.commands
hands these four here).

    python -m assistant chat [--no-rag] [--model base|tuned] [--session ID] [--drafts N] [--guidance G]
    python -m assistant ask "Write a positive review of Toy Story" [--no-rag] [--compare] [--drafts N] [--guidance G] [--json]
    python -m assistant sessions [list | show ID | export ID [--format markdown|json] | rename ID TITLE | delete ID]
                                 [--all]
    python -m assistant status [--json]
    (chat, ask and status take --tuned-model own|shipped: your fine-tune, or the one shipped with the project)
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from assistant.argtypes import bounded, drafts_arg, program_name, seed_arg
from assistant.chat.assistant import MODELS, Assistant, AssistantError, Reply
from assistant.chat.export import source_line
from assistant.chat.memory import (
    ANY_OWNER,
    CLI_OWNER,
    ChatMemory,
    UnknownSession,
    new_session_id,
)
from assistant.chat.turns import answer_pending
from assistant.logs import PrintableStream, printable
from assistant.model.drafts import describe, score_list
from assistant.model.guidance import guidance_arg
from assistant.settings import (
    MAX_DRAFTS,
    MAX_GUIDANCE,
    MAX_NEW_TOKENS,
    Settings,
    get_settings,
)

log = logging.getLogger(__name__)

DEFAULT_SESSION = "cli"
CHAT_HELP = """Commands: /rag on|off, /model tuned|base, /drafts N, /guidance G, /compare TEXT, /new, /session ID, /sessions,
/rename TITLE, /export [markdown|json], /retry (ask unanswered messages again), /status, /help, /quit"""


def _generation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-rag", action="store_true", help="no retrieval: the model writes alone")
    p.add_argument("--model", choices=MODELS, default=None, help="fine-tuned model (default) or its base")
    _tuned_model_arg(p)
    p.add_argument("--session", default=None, help=f"session id (default: {DEFAULT_SESSION!r})")
    p.add_argument("--top-k", type=int, default=None, help="reviews retrieved (default: settings.top_k)")
    p.add_argument("--temperature", type=_temperature, default=None, help="default: settings.sampling")
    p.add_argument("--max-new-tokens", type=_new_tokens, default=None, help="default: settings.sampling")
    p.add_argument("--seed", type=seed_arg, default=None)
    p.add_argument("--drafts", type=drafts_arg, default=None, metavar="N",
                   help=f"write N drafts (1-{MAX_DRAFTS}) and keep the most critic-like of those that read "
                        "clearly as asked; 1 streams live (default: settings.sampling.drafts)")
    p.add_argument("--guidance", type=guidance_arg, default=None, metavar="G",
                   help=f"sentiment guidance scale (1-{MAX_GUIDANCE:g}): steer each word away from the opposite "
                        "sentiment; 1 is off (default: settings.sampling.guidance; positive reviews get "
                        "settings.sampling.praise_guidance more)")


def _tuned_model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tuned-model", choices=("own", "shipped"), default=None,
                   help="which fine-tuned model answers as 'tuned': yours when you trained one (own), or the one "
                        "shipped with the project (default: settings.tuned_model)")


_temperature = bounded("temperature", float, 0.0, 2.0, "a number")
_new_tokens = bounded("max-new-tokens", int, 1, MAX_NEW_TOKENS, "a whole number")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=program_name(), description="Movie-review chat assistant.")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress (to stderr)")
    sub = p.add_subparsers(dest="command", required=True)
    chat = sub.add_parser("chat", help="interactive chat, streaming")
    _generation_args(chat)
    ask = sub.add_parser("ask", help="one turn")
    ask.add_argument("text", help="the message")
    _generation_args(ask)
    ask.add_argument("--compare", action="store_true", help="answer with and without retrieval")
    ask.add_argument("--json", action="store_true", help="machine-readable output")
    ask.add_argument("--no-remember", action="store_true", help="leave the session's history unchanged")
    sessions = sub.add_parser("sessions", help="list, show, export, rename or delete chat sessions")
    sessions.add_argument("action", nargs="?", default="list", choices=("list", "show", "export", "rename", "delete"))
    sessions.add_argument("session_id", nargs="?")
    sessions.add_argument("title", nargs="*")
    sessions.add_argument("--format", choices=("markdown", "json"), default="markdown")
    sessions.add_argument("--json", action="store_true", help="list as JSON")
    sessions.add_argument("--all", action="store_true",
                          help="every owner's sessions (the browsers' too), not only the command line's")
    status = sub.add_parser("status", help="models, store and chat database")
    status.add_argument("--json", action="store_true")
    _tuned_model_arg(status)
    return p.parse_args(argv)


def _quiet_libraries(verbose: bool) -> None:
    from assistant.logs import setup_logging

    setup_logging(verbose)
    if not verbose:
        logging.getLogger().setLevel(logging.WARNING)
    try:  # weight-loading progress bars would interleave with the answer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass


def _options(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return {"model": args.model or settings.default_model, "top_k": args.top_k, "temperature": args.temperature,
            "max_new_tokens": args.max_new_tokens, "seed": args.seed, "drafts": args.drafts,
            "guidance": args.guidance}


def render(reply: Reply, out: TextIO, *, with_text: bool = True) -> None:
    """A reply for people: text, then notes, sources and timings, indented."""
    model = f"{reply.model} ({reply.tuned_origin})" if reply.tuned_origin else reply.model
    label = " \u00b7 ".join(x for x in (reply.mode, model) if x)
    if with_text:
        print(f"[{label}] {reply.text}", file=out)
    for note in reply.notes:
        print(f"  note: {note}", file=out)
    chose = describe(reply.drafts, reply.request.sentiment)
    if chose:
        print(f"  drafts: {chose}; scores {score_list(reply.drafts)} ({reply.drafts['scorer']})", file=out)
    if reply.opinion is None:  # an opinion's quotes are already in its text
        for i, source in enumerate(reply.sources, 1):
            print(f"  [{i}] {source_line(source.to_dict())}", file=out)
    t = reply.timings
    bits = [f"retrieval {t['retrieval_s']:.2f} s" if t.get("retrieval_s") else "",
            f"first token {t['first_token_s']:.2f} s" if t.get("first_token_s") else "",
            f"total {t['total_s']:.2f} s" if t.get("total_s") else ""]
    print(f"  ({', '.join(b for b in [label, *bits] if b)})", file=out)


def cmd_ask(args: argparse.Namespace, assistant: Assistant, out: TextIO) -> int:
    session = args.session or DEFAULT_SESSION
    options = _options(args, assistant.settings)
    remember = not args.no_remember
    if args.compare:
        both = assistant.compare(session, args.text, remember=remember, **options)
        if args.json:
            print(json.dumps({k: r.to_json() for k, r in both.items()}, ensure_ascii=False, indent=2), file=out)
        else:
            for key, reply in both.items():
                print(f"== {key} ==", file=out)
                render(reply, out)
        return 0
    if args.json:
        reply = assistant.reply(session, args.text, rag=not args.no_rag, remember=remember, **options)
        print(json.dumps(reply.to_json(), ensure_ascii=False, indent=2), file=out)
        return 0
    _stream_one(assistant, session, args.text, not args.no_rag, options, out, remember=remember)
    return 0


def _stream_one(assistant: Assistant, session: str, text: str, rag: bool, options: dict[str, Any], out: TextIO,
                *, remember: bool = True) -> Reply | None:
    final = None
    drafts = options.get("drafts") or assistant.settings.sampling.drafts
    if drafts > 1 and assistant.probe is not None and assistant.parse(text, session).kind == "review":
        # Nothing streams while drafts are written and ranked: say why the wait is longer.
        print(f"(writing {drafts} drafts to keep the best…)", file=out, flush=True)
    print("assistant> ", end="", file=out, flush=True)
    for event in assistant.stream(session, text, rag=rag, remember=remember, **options):
        if isinstance(event, Reply):
            final = event
        else:
            print(event, end="", file=out, flush=True)
    print("", file=out)
    if final is not None:
        render(final, out, with_text=False)
    return final


def cmd_chat(args: argparse.Namespace, assistant: Assistant, out: TextIO, read: Any = input) -> int:
    session = args.session or DEFAULT_SESSION
    rag = not args.no_rag and assistant.rag_available
    options = _options(args, assistant.settings)
    status = assistant.status()
    drafts = options["drafts"] or assistant.settings.sampling.drafts
    drafting = f"; {drafts} drafts per review" if drafts > 1 else ""
    print(f"Movie-review assistant. Session {session!r}; model {options['model']}; RAG {'on' if rag else 'off'}"
          f"{'' if assistant.rag_available else ' (unavailable)'}{drafting}. Type /help for commands, /quit to leave.",
          file=out)
    for warning in status["warnings"]:
        print(f"  note: {warning}", file=out)
    _show_unanswered(assistant, session, out)
    while True:
        try:
            line = read("you> ")
        except (EOFError, KeyboardInterrupt):
            print("", file=out)
            return 0
        command, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        if command in ("/quit", "/exit", "/q"):
            return 0
        if command == "/help":
            print(CHAT_HELP, file=out)
        elif command == "/rag":
            rag = rest.lower() in ("on", "1", "yes", "true") and assistant.rag_available
            print(f"RAG {'on' if rag else 'off'}{'' if assistant.rag_available else ' (unavailable)'}", file=out)
        elif command == "/model" and rest in MODELS:
            options["model"] = rest
            print(f"model {rest}", file=out)
        elif command == "/drafts" and rest:
            try:
                options["drafts"] = drafts_arg(rest)
                print(f"drafts {options['drafts']}" + (" (streams live)" if options["drafts"] == 1 else ""), file=out)
            except argparse.ArgumentTypeError as exc:
                print(f"error: {exc}", file=out)
        elif command == "/guidance" and rest:
            try:
                options["guidance"] = guidance_arg(rest)
                print(f"guidance {options['guidance']:g}" + (" (off)" if options["guidance"] == 1 else ""), file=out)
            except argparse.ArgumentTypeError as exc:
                print(f"error: {exc}", file=out)
        elif command == "/compare" and rest:
            for key, reply in assistant.compare(session, rest, **options).items():
                print(f"== {key} ==", file=out)
                render(reply, out)
        elif command == "/new":
            session = new_session_id()
            print(f"new session {session}", file=out)
        elif command == "/session" and rest:
            session = rest
            print(f"session {session}", file=out)
            _show_unanswered(assistant, session, out)
        elif command == "/sessions":
            _print_sessions(assistant.memory, CLI_OWNER, out)
        elif command == "/rename" and rest:
            assistant.memory.rename(session, rest, CLI_OWNER)
        elif command == "/export":
            fmt = rest or "markdown"
            try:
                print(assistant.memory.export(session, "json" if fmt == "json" else "markdown", owner=CLI_OWNER),
                      file=out)
            except UnknownSession as exc:
                print(f"error: {exc.args[0]}", file=out)
        elif command == "/status":
            print(json.dumps(assistant.status(), indent=2), file=out)
        elif command == "/retry":
            _retry_unanswered(assistant, session, out)
        elif command.startswith("/"):
            print(f"unknown command {command}; {CHAT_HELP}", file=out)
        else:
            try:
                assistant.memory.add_pending(session, CLI_OWNER, line, {**options, "rag": rag})  # kept first
                _answer_kept(assistant, session, out)
            except (ValueError, KeyError) as exc:
                print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=out)


def masked_owner(owner: str) -> str:
    """An owner as `sessions list --all` shows it: a browser's token is the key to its chats, so only its first
    four characters, enough to tell owners apart; the command line's own name as it is."""
    return owner if owner == CLI_OWNER else f"{owner[:4]}…"


def _answer_kept(assistant: Assistant, session: str, out: TextIO) -> None:
    """Answer the session's kept messages in order (pending.py): a reply cut by Ctrl-C or a kill leaves its
    question unanswered, shown on the next start with /retry."""
    def show(event: Any) -> None:
        if isinstance(event, str):
            print(event, end="", file=out, flush=True)

    while (item := assistant.memory.claim_pending(session)) is not None:
        print("assistant> ", end="", file=out, flush=True)
        final = answer_pending(assistant, item, show)
        print("", file=out)
        if isinstance(final, Reply):
            render(final, out, with_text=False)


def _show_unanswered(assistant: Assistant, session: str, out: TextIO) -> list[int]:
    try:
        waiting = [p for p in assistant.memory.pending(session, CLI_OWNER) if p.state == "unanswered"]
    except ValueError:  # not a valid session id: the first message says so
        return []
    for item in waiting:
        print(f"  unanswered: {item.text!r} ({item.error}); /retry asks it again", file=out)
    return [item.id for item in waiting]


def _retry_unanswered(assistant: Assistant, session: str, out: TextIO) -> None:
    for pending_id in _show_unanswered(assistant, session, out):
        assistant.memory.retry_pending(pending_id, CLI_OWNER)
    _answer_kept(assistant, session, out)


def _print_sessions(memory: ChatMemory, owner: str | None, out: TextIO, as_json: bool = False) -> None:
    sessions = memory.list_sessions(owner)
    if as_json:
        shown = [{**s.to_dict(), "owner": masked_owner(s.owner)} for s in sessions]
        print(json.dumps(shown, indent=2, ensure_ascii=False), file=out)
        return
    if not sessions:
        print("no sessions yet", file=out)
    for s in sessions:
        whose = f"\t{masked_owner(s.owner)}" if owner is ANY_OWNER else ""
        print(f"{s.session_id}\t{s.messages} messages{whose}\t{s.title}", file=out)


def cmd_sessions(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """The command line's sessions; with --all everyone's (whoever runs this owns the files anyway)."""
    memory = ChatMemory.from_settings(settings)
    owner = ANY_OWNER if args.all else CLI_OWNER
    try:
        if args.action == "list":
            _print_sessions(memory, owner, out, args.json)
            return 0
        if not args.session_id:
            raise ValueError(f"'sessions {args.action}' needs a session id")
        if args.action in ("show", "export"):
            fmt = "markdown" if args.action == "show" else args.format
            print(memory.export(args.session_id, fmt, owner=owner), file=out)
        elif args.action == "rename":
            if not memory.rename(args.session_id, " ".join(args.title), owner):
                raise UnknownSession(args.session_id)
        elif args.action == "delete":
            if not memory.delete(args.session_id, owner):
                raise UnknownSession(args.session_id)
        return 0
    finally:
        memory.close()


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, assistant: Assistant | None = None,
         settings: Settings | None = None) -> int:
    """Exit status 0 on success, 2 on a clear error (one line on stderr), 1 on anything unexpected."""
    args = parse_args(argv)
    out = PrintableStream(out or sys.stdout)  # review, user and model text can carry terminal escapes
    _quiet_libraries(args.verbose)
    settings = settings or (assistant.settings if assistant is not None else get_settings())
    try:
        if args.command == "sessions":
            return cmd_sessions(args, settings, out)
        if getattr(args, "tuned_model", None):
            settings = settings.model_copy(update={"tuned_model": args.tuned_model})
        assistant = assistant or Assistant.load(settings)
        if args.command == "status":
            status = assistant.status()
            if args.json:
                print(json.dumps(status, indent=2), file=out)
            else:
                _print_status(status, out)
            return 0
        if args.command == "ask":
            return cmd_ask(args, assistant, out)
        return cmd_chat(args, assistant, out)
    except (AssistantError, ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(printable(f"error: {message}"), file=sys.stderr)
        return 2
    except Exception as exc:  # one line for the user; the traceback goes to the log
        log.debug("unexpected failure", exc_info=True)
        print(printable(f"error: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return 1


def _print_status(status: dict[str, Any], out: TextIO) -> None:
    for name, model in status["models"].items():
        state = "loaded" if model["loaded"] else ("loads on first use" if model["available"] else "unavailable")
        params = f", {model['params'] / 1e6:.1f}M params" if model.get("params") else ""
        whose = f", {model['origin']}" if model.get("origin") else ""  # the tuned model: shipped or the user's own
        print(f"model {name}: {model.get('name')} ({state}{params}{whose})"
              f"{' - ' + model['error'] if model['error'] else ''}", file=out)
    store = status["store"]
    if store:
        print(f"store: {store['reviews']:,} reviews, {store['titled_movies']:,} titled movies, "
              f"{store['chunks']:,} chunks at {store['path']}", file=out)
    else:
        print(f"store: unavailable ({status['store_error']})", file=out)
    print(f"chats: {status['chats_db']}", file=out)
    for warning in status["warnings"]:
        print(f"note: {warning}", file=out)
