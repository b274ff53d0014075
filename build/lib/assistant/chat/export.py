"""A chat session as Markdown for people (the JSON export is the stored messages as they are).

The Markdown will be opened in viewers that render HTML and fetch images, while its text comes from users,
reviews and the model: every piece of it is made inert first (`inert`), so it shows as typed and loads nothing.
"""
from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)")  # ![alt](url "title")


def inert(text: Any) -> str:
    """Text for a Markdown file that loads nothing: inline images become their alt text, any other image syntax
    (reference-style) is broken with a backslash, and HTML is escaped (`<img>`, `<script>` show as typed)."""
    text = _IMAGE.sub(lambda m: f"[image removed: {m.group(1)}]" if m.group(1) else "[image removed]", str(text))
    return html.escape(text.replace("![", "!\\["), quote=False)


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts or 0, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def render_markdown(info: Any, messages: list[dict[str, Any]]) -> str:
    """The session (a memory.SessionInfo: title, id, times, count) and its messages as Markdown."""
    lines = [f"# {inert(info.title)}", "", f"_Session {inert(info.session_id)}, {info.messages} messages, "
             f"started {_when(info.created)}, last {_when(info.updated)}._", ""]
    for m in messages:
        if m["role"] == "user":
            lines += [f"**You** ({_when(m.get('time'))}):", "", inert(m["content"]), ""]
            continue
        label = ", ".join(x for x in (m.get("mode"), m.get("model")) if x)
        lines += [f"**Assistant**{f' ({inert(label)})' if label else ''}:", "", inert(m["content"]), ""]
        for note in m.get("notes") or []:
            lines.append(f"> {inert(note)}")
        if m.get("notes"):
            lines.append("")
        for i, s in enumerate(m.get("sources") or [], 1):
            lines.append(f"{i}. {inert(source_line(s))}")
        if m.get("sources"):
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def source_line(s: dict[str, Any]) -> str:
    """'Critic (Publication) on Movie, fresh, 4/5, similarity 0.61: "quote"'."""
    who = s.get("critic") or ("Movie info" if s.get("kind") == "movie" else "A critic")
    if s.get("publication"):
        who += f" ({s['publication']})"
    if s.get("movie"):
        who += f" on {s['movie']}"
    bits = [b for b in (s.get("verdict"), s.get("score")) if b]
    if s.get("similarity") is not None:
        bits.append(f"similarity {float(s['similarity']):.2f}")
    quote = " ".join(str(s.get("text") or "").split())
    if len(quote) > 240:
        quote = quote[:240].rsplit(" ", 1)[0] + "..."
    return f"{who}{', ' + ', '.join(bits) if bits else ''}: \"{quote}\""
