"""Where a RAG reply came from (critics' reviews, the movie's facts), what of it the reply used (detail chips such as
"director: Satyajit Ray · from 3 sources"), and what critics think (fresh/rotten counts). Every value from the data
is escaped (ui/markup.py)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from assistant.data.critics_names import SOURCE as CRITICS_NAMES_SOURCE
from assistant.data.details import (
    COMMON_CAPITALIZED,
    WORD_RE,
    capitalised,
    fold,
    name_spans,
    words_of,
)
from ui.markup import md_escape, md_quote

# Badges are fixed Markdown of ours; everything from the data goes through md_escape.
_BADGES = {
    "positive": ":green-badge[:material/thumb_up: Fresh]",
    "fresh": ":green-badge[:material/thumb_up: Fresh]",
    "negative": ":red-badge[:material/thumb_down: Rotten]",
    "rotten": ":red-badge[:material/thumb_down: Rotten]",
}
_UNRATED = ":gray-badge[unrated]"
_FACTS = ":blue-badge[:material/movie: Movie facts]"
MAX_QUOTE_CHARS = 600
VERDICT_COLORS = {"fresh": "#2e7d32", "rotten": "#c62828"}


def _get(item: Any, name: str, default: Any = None) -> Any:
    return item.get(name, default) if isinstance(item, dict) else getattr(item, name, default)


def source_markdown(source: Any) -> str:
    """One source as Markdown: badge, movie, critic, publication, score and similarity, then its quote."""
    sentiment = str(_get(source, "sentiment") or _get(source, "verdict") or "").lower()
    movie = md_escape(_get(source, "movie") or "Unknown movie")
    if _get(source, "kind") == "movie":
        head = f"{_FACTS} **{movie}**"
    else:
        critic = md_escape(_get(source, "critic") or "Unnamed critic")
        head = f"{_BADGES.get(sentiment, _UNRATED)} **{movie}** · {critic}"
        if _get(source, "publication"):
            head += f", *{md_escape(_get(source, 'publication'))}*"
        if _get(source, "top_critic"):
            head += " :orange-badge[Top critic]"
    facts = []
    score = _get(source, "score")
    if score not in (None, ""):
        facts.append(f"score {md_escape(str(score))}")
    similarity = _get(source, "similarity")
    if isinstance(similarity, (int, float)):
        facts.append(f"similarity {similarity:.2f}")
    if facts:
        head += f"  \n:gray[{' · '.join(facts)}]"
    text = str(_get(source, "text") or "")
    if len(text) > MAX_QUOTE_CHARS:  # movie facts can run to a page; the start says what it is
        text = text[:MAX_QUOTE_CHARS].rsplit(" ", 1)[0] + " …"
    return head + ("\n\n" + md_quote(text) if text else "")


def facts_markdown(facts: dict[str, Any]) -> str:
    """A facts card's fields, each with its sources: 'director: Ridley Scott (Kaggle movies, top movies)'."""
    lines = []
    for field in ("year", "director", "cast", "genre", "synopsis", "consensus"):
        values = (facts.get("fields") or {}).get(field) or []
        if values:
            shown = "; ".join(f"{md_escape(v['value'])} ({md_escape(', '.join(v.get('sources') or []))})"
                              for v in values)
            lines.append(f"- {field}: {shown}")
    return "\n".join(lines)


def render_sources(sources: list[Any], reply_text: str | None = None) -> None:
    """The detail chips (what of the sources the reply used), then the sources themselves in an expander."""
    chips = used_details(reply_text or "", sources)
    if chips:
        st.markdown(" ".join(chip_markdown(chip) for chip in chips))
    with st.expander(f"Sources ({len(sources)})", icon=":material/menu_book:"):
        parts = []
        for source in sources:
            part = source_markdown(source)
            facts = _get(source, "facts")
            if facts:
                part += "\n\n" + facts_markdown(facts)
            parts.append(part)
        st.markdown("\n\n".join(parts))


# ---- which details of the sources a reply used -------------------------------------------------------------

@dataclass
class Detail:
    """One detail of a reply that a source gave: 'director: Ridley Scott', from Kaggle movies and top movies."""

    field: str  # director | cast | year | name
    value: str
    sources: list[str] = dataclass_field(default_factory=list)

    @property
    def label(self) -> str:
        count = len(self.sources)
        origin = self.sources[0] if count == 1 else f"{count} sources"
        return f"{self.field}: {self.value} · from {origin}"


def chip_markdown(detail: Detail) -> str:
    return f":violet-badge[{md_escape(detail.label)}]"


def _review_label(source: Any) -> str:
    critic = _get(source, "critic")
    return f"{critic}'s review" if critic else "a critic's review"


def used_details(reply: str, sources: list[Any]) -> list[Detail]:
    """The names (and the year) in the reply that its sources gave, each with every source that gives it:
    the facts card's own sources for its fields, and each retrieved review that names it too."""
    common = {w.lower() for w in COMMON_CAPITALIZED}
    written = {fold(w) for w in WORD_RE.findall(reply or "") if capitalised(w)} - common
    if not written and not re.search(r"\b(?:19|20)\d\d\b", reply or ""):
        return []
    reviews = [(s, words_of([_get(s, "text") or ""])) for s in sources if _get(s, "kind") != "movie"]
    found: dict[str, Detail] = {}

    def add(field: str, value: str, origins: list[str], key_words: list[str]) -> None:
        key = fold(value)
        detail = found.setdefault(key, Detail(field, value))
        for origin in origins + [_review_label(s) for s, words in reviews if all(w in words for w in key_words)]:
            if origin not in detail.sources:
                detail.sources.append(origin)

    for source in sources:
        fields = ((_get(source, "facts") or {}).get("fields")) or {}
        for field in ("director", "cast"):
            for value in fields.get(field) or []:
                surname = [fold(w) for w in value["value"].split()][-1:]
                if surname and surname[0] in written:
                    add(field, value["value"], list(value.get("sources") or []), surname)
        for value in fields.get("year") or []:
            if re.search(rf"\b{re.escape(value['value'])}\b", reply or ""):
                add("year", value["value"], list(value.get("sources") or []), [value["value"]])
    covered = {w for d in found.values() for w in words_of([d.value])}
    for source in sources:  # a film no facts source knows: the names its critics share (critics_names.py)
        if _get(source, "kind") == "movie" and not _get(source, "facts"):
            for span in name_spans(_get(source, "text") or ""):
                words = [fold(w) for w in span.split()]
                if words[-1] in written and words[-1] not in covered:
                    add("name", span, [CRITICS_NAMES_SOURCE], words[-1:])
                    covered.add(words[-1])
    for source, _ in reviews:
        for span in name_spans(_get(source, "text") or ""):
            words = [fold(w) for w in span.split()]
            if words[-1] in written and words[-1] not in covered:
                add("name", span, [], words[-1:])
                covered.add(words[-1])
    return list(found.values())


def verdict_chart(fresh: int, rotten: int) -> alt.Chart:
    data = pd.DataFrame({"verdict": ["fresh", "rotten"], "reviews": [fresh, rotten]})
    return (
        alt.Chart(data, height=90)
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            x=alt.X("reviews:Q", title=None, axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("verdict:N", title=None, sort=["fresh", "rotten"]),
            color=alt.Color("verdict:N", legend=None,
                            scale=alt.Scale(domain=list(VERDICT_COLORS), range=list(VERDICT_COLORS.values()))),
            tooltip=["verdict", "reviews"],
        )
    )


def render_opinion(opinion: dict[str, Any]) -> None:
    """Counts of fresh and rotten reviews and a bar of them (the reply's text has the consensus, the
    sources expander the quotes)."""
    if opinion.get("found") is False:
        return
    fresh, rotten = int(opinion.get("fresh") or 0), int(opinion.get("rotten") or 0)
    total = fresh + rotten
    with st.container(border=True):
        st.markdown(f"**Critics on {md_escape(opinion.get('movie') or 'this movie')}**")
        a, b, c = st.columns(3)
        a.metric("Fresh", f"{fresh:,}")
        b.metric("Rotten", f"{rotten:,}")
        c.metric("Fresh share", f"{100 * fresh / total:.0f}%" if total else "n/a")
        if total:
            st.altair_chart(verdict_chart(fresh, rotten), width="stretch")
