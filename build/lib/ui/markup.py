"""Untrusted text (user messages, reviews, generated replies) made inert for st.markdown.

st.markdown never renders raw HTML without unsafe_allow_html, but Markdown itself can still
inject links, remote images (a fetch from the reader's browser), headings, LaTeX and Streamlit's
`:color[...]` directives. Backslash-escaping every Markdown punctuation character keeps the text
looking like itself while none of it is interpreted.
"""
from __future__ import annotations

import re

# Every ASCII punctuation character CommonMark lets a backslash escape, plus ':' for Streamlit
# directives and emoji shortcodes. Escaping per character means chunks escaped one by one while
# streaming give the same result as escaping the whole text at once.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$=&\"'^%@/])")
_LEADING_SPACE = re.compile(r"(?<=\n)[ \t]+")  # four spaces would start a code block


def md_escape(text: str | None) -> str:
    """`text` as Markdown that renders literally."""
    if not text:
        return ""
    escaped = _SPECIAL.sub(r"\\\1", _LEADING_SPACE.sub("", str(text)))
    return escaped.replace("\n", "  \n")  # keep the writer's line breaks (lists of quotes, help lines)


def md_quote(text: str | None) -> str:
    """`text` as a literal Markdown block quote."""
    lines = md_escape(text).splitlines() or [""]
    return "\n".join(f"> {line}" for line in lines)
