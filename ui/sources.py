"""Where a RAG reply came from (critics' reviews) and what critics think (fresh/rotten counts)."""
from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

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


def render_sources(sources: list[Any]) -> None:
    with st.expander(f"Sources ({len(sources)})", icon=":material/menu_book:"):
        st.markdown("\n\n".join(source_markdown(source) for source in sources))


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
