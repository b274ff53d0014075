"""A chat session as Markdown for people (the JSON export is the stored messages as they are)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts or 0, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def render_markdown(info: Any, messages: list[dict[str, Any]]) -> str:
    """The session (a memory.SessionInfo: title, id, times, count) and its messages as Markdown."""
    lines = [f"# {info.title}", "", f"_Session `{info.session_id}`, {info.messages} messages, "
             f"started {_when(info.created)}, last {_when(info.updated)}._", ""]
    for m in messages:
        if m["role"] == "user":
            lines += [f"**You** ({_when(m.get('time'))}):", "", m["content"], ""]
            continue
        label = ", ".join(x for x in (m.get("mode"), m.get("model")) if x)
        lines += [f"**Assistant**{f' ({label})' if label else ''}:", "", m["content"], ""]
        for note in m.get("notes") or []:
            lines.append(f"> {note}")
        if m.get("notes"):
            lines.append("")
        for i, s in enumerate(m.get("sources") or [], 1):
            lines.append(f"{i}. {source_line(s)}")
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
