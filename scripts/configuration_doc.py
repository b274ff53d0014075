"""Write docs/configuration.md from the settings object, so the page cannot drift from the code.

    python scripts/configuration_doc.py            # rewrite docs/configuration.md
    python scripts/configuration_doc.py --check    # exit 1 when the page is out of date (tests/test_settings.py)

The groups are the comment sections of assistant/settings.py (`# -- server: ...`); the descriptions are the fields'
own; the fixed choices that are constants rather than settings are listed with their current values.
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import BaseModel, SecretStr  # noqa: E402

from assistant import settings as settings_module  # noqa: E402
from assistant.settings import Sampling, Settings, default_home  # noqa: E402

PAGE = ROOT / "docs" / "configuration.md"
SECTION = re.compile(r"^\s*# -- ([a-z][a-z ]*?)(?::| -|$)")
FIELD = re.compile(r"^    ([a-z_][a-z0-9_]*): ")

# Fixed choices that used to be settings: (what it is, the constant, the setting it replaces).
CONSTANTS: tuple[tuple[str, str, str], ...] = (
    ("texts per embedding batch", "assistant.data.embeddings.EMBEDDING_BATCH_SIZE", "embedding_batch_size"),
    ("chunk size, characters", "assistant.data.ingestion.CHUNK_SIZE", "chunk_size"),
    ("chunk overlap, characters", "assistant.data.ingestion.CHUNK_OVERLAP", "chunk_overlap"),
    ("Qdrant collection name prefix", "assistant.data.vectors_qdrant.COLLECTION_PREFIX", "qdrant_collection"),
    ("Qdrant request timeout, s", "assistant.data.vectors_qdrant.QDRANT_TIMEOUT_S", "qdrant_timeout_s"),
    ("a second writer's wait, s", "assistant.data.locks.WRITER_WAIT_S", "writer_wait_s"),
    ("fuzzy title match, score 0-100", "assistant.data.titles.TITLE_MIN_SCORE", "fuzzy_min_score"),
    ("MMR candidates", "assistant.chat.retrieval.MMR_FETCH_K", "mmr_fetch_k"),
    ("MMR closeness (1) against variety (0)", "assistant.chat.retrieval.MMR_LAMBDA", "mmr_lambda"),
    ("least similarity of another movie's review", "assistant.chat.retrieval.MIN_SIMILARITY", "min_similarity"),
    ("the movie's facts lead the context", "assistant.chat.retrieval.CONTEXT_FACTS", "context_facts"),
    ("a pan's clearest reviews first", "assistant.chat.retrieval.CLEAR_CONTEXT", "clear_context"),
    ("messages read to resolve a follow-up", "assistant.chat.graph.HISTORY_MESSAGES", "history_messages"),
    ("message characters read", "assistant.chat.message_parts.MAX_MESSAGE_CHARS", "max_message_chars"),
    ("messages a session keeps", "assistant.chat.memory.MAX_SESSION_MESSAGES", "max_session_messages"),
    ("characters a stored message keeps", "assistant.chat.memory.STORED_MESSAGE_CHARS", "stored_message_chars"),
    ("a page request's wait for another reply, s", "ui.reply_worker.REPLY_WAIT_S", "reply_wait_s"),
    ("repetition penalty", "assistant.settings.Sampling.repetition_penalty", "sampling.repetition_penalty"),
    ("no repeated n-grams of this size", "assistant.settings.Sampling.no_repeat_ngram_size",
     "sampling.no_repeat_ngram_size"),
    ("training reviews' least label confidence (`--min-confidence`)",
     "assistant.training.finetune.MIN_LABEL_CONFIDENCE", "train_min_label_confidence"),
    ("training examples with context (`--context-share`)", "assistant.training.examples.DataConfig.context_share",
     "train_context_share"),
)
NO_CONSTANT = (
    ("embedding_threads", "every core while an index is built; `ingest(..., threads=N)` and `bench/ingest.py "
                          "--threads N` cap it"),
    ("warm_up_chat", "the page always readies the chat in the background as it starts"),
)


def sections(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the comment section it is written under in assistant/settings.py."""
    source = Path(settings_module.__file__).read_text().splitlines()
    start = next(i for i, line in enumerate(source) if line.startswith(f"class {model.__name__}("))
    found: dict[str, str] = {}
    current = ""
    for line in source[start + 1:]:
        if line.startswith("class ") or line.startswith("def ") or line.startswith("@"):
            break
        if match := SECTION.match(line):
            current = match.group(1).strip()
        elif (match := FIELD.match(line)) and match.group(1) in model.model_fields:
            found[match.group(1)] = current
    return found


def shown_default(model: type[BaseModel], name: str) -> str:
    # Defaults that live in the home folder are shown for the checkout's own (var/), whatever MRA_HOME says now.
    value = getattr(model(), name) if model is Sampling else Settings.model_fields[name].get_default(
        call_default_factory=True, validated_data={"home": default_home()})
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "unset" if not value.get_secret_value() or value.get_secret_value() == "EMPTY" else "(secret)"
    if isinstance(value, Path):
        return os.path.relpath(value, ROOT)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def bounds(info: Any) -> str:
    low = high = None
    for item in info.metadata:
        low = getattr(item, "ge", getattr(item, "gt", low))
        high = getattr(item, "le", getattr(item, "lt", high))
    if low is None and high is None:
        return ""
    if high is None:
        return f" (>= {low})"
    return f" (<= {high})" if low is None else f" ({low}-{high})"


def nested(info: Any) -> bool:
    return isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)


def rows(model: type[BaseModel], prefix: str, group: str) -> list[str]:
    out = []
    for name, section in sections(model).items():
        if section.split()[0] != group or nested(model.model_fields[name]):
            continue
        info = model.model_fields[name]
        text = " ".join((info.description or "").split()).replace("|", "\\|")
        out.append(f"| `{prefix}{name.upper()}` | `{shown_default(model, name)}`{bounds(info)} | {text} |")
    return out


def constant_value(path: str) -> Any:
    module, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError:  # a class attribute: module.Class.attr
        module, _, owner = module.rpartition(".")
        return getattr(getattr(importlib.import_module(module), owner), attr)


GROUPS = (
    ("server", "Server", "The page, and where the app keeps its chats and reports."),
    ("store", "Store", "The reviews and how they are searched ([data.md](data.md), [scaling.md](scaling.md))."),
    ("model", "Model", "Which language model writes, and how it runs ([model.md](model.md))."),
    ("sampling", "Sampling", "How a review is sampled; a request's own options (CLI flags, the page's sidebar) "
                             "override these per message."),
    ("rules", "Rules", "What steers a reply beyond plain sampling: sentiment guidance and the decoding rules."),
)


def render() -> str:
    settings_count = sum(len(info.annotation.model_fields) if nested(info) else 1
                         for info in Settings.model_fields.values())
    lines = [
        "# Configuration",
        "",
        "<!-- Generated by scripts/configuration_doc.py from assistant/settings.py; tests/test_settings.py checks it."
        " -->",
        "",
        f"Every setting ({settings_count} in all) is a field of one typed object, `assistant.settings.Settings`, and "
        "can be set by",
        "an environment variable: `MRA_<FIELD>` (for example `MRA_INDEX_DIR=/data/index`), and the sampling and rules",
        "fields as `MRA_SAMPLING__<FIELD>` (`MRA_SAMPLING__GUIDANCE=1`). A bad value is a one-line error naming the",
        "setting. Ranges are in brackets after the default.",
        "",
    ]
    for group, title, blurb in GROUPS:
        body = rows(Settings, "MRA_", group) + rows(Sampling, "MRA_SAMPLING__", group)
        if not body:
            continue
        lines += [f"## {title}", "", blurb, "", "| variable | default | what it does |", "|---|---|---|", *body, ""]
    lines += [
        "## Fixed choices",
        "",
        "Knobs a user would not turn are named constants beside the code that uses them, each with a comment that",
        "says why it has its value. They were settings before; their `MRA_*` variables are no longer read.",
        "",
        "| what | value | constant | was |",
        "|---|---|---|---|",
    ]
    for what, path, was in CONSTANTS:
        lines.append(f"| {what} | `{constant_value(path)!r}` | `{path}` | `{was}` |")
    for was, what in NO_CONSTANT:
        lines.append(f"| {what} | | | `{was}` |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/configuration.md is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = PAGE.read_text() if PAGE.exists() else ""
        if current != text:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python scripts/configuration_doc.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
