"""The critic-likeness part of eval.md: each arm beside the critics, full and thin films, and ten blind pairs."""
from __future__ import annotations

import math
from typing import Any

from assistant.evaluation.charts import RETRIEVAL_ON

HOW = "docs/critic-likeness.md"


def fmt(value: Any, digits: int = 2) -> str:
    """A number as the report prints it: n/a for a missing or undefined one."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def quoted(text: str | None) -> str:
    """Review and reply text as plain markdown text: one line, no table breaks, no HTML."""
    flat = " ".join((text or "(empty)").split())
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _arms(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(k, result[k]) for k in result.get("arm_order", []) if (result.get(k) or {}).get("critic_likeness")]


def _length(summary: dict[str, Any]) -> str:
    s = summary.get("length_words") or {}
    return f"{fmt(s.get('median'), 0)} ({fmt(s.get('p25'), 0)}-{fmt(s.get('p75'), 0)})"


def _classifier(c: dict[str, Any]) -> str:
    c = c.get("classifier") or {}
    ci = c.get("ci95")
    return f"{fmt(c.get('accuracy'))} ({fmt(ci[0])}-{fmt(ci[1])})" if ci else fmt(c.get("accuracy"))


def _opening(s: dict[str, Any]) -> str:
    o = s.get("opening") or {}
    return f"{fmt(o.get('share'))} (of {o.get('per', 0)})"


def likeness_table(arms: list[tuple[str, dict[str, Any]]], critics: dict[str, Any] | None) -> list[str]:
    head = ("| arm | model | retrieval | classifier accuracy (95% CI; 0.5 = can't tell) | MAUVE (1 = same) | words: "
            "median (p25-p75) | median vs critics' | distinct-1 / -2 | shares its 3-word opening | replies with a "
            "garbled word |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for _, arm in arms:
        c = arm["critic_likeness"]
        garbled = (c.get("garbled") or {}).get("share")
        lines.append(f"| {arm['label']} | {arm['model']} | {RETRIEVAL_ON[arm['rag']]} | {_classifier(c)} | "
                     f"{fmt((c.get('mauve') or {}).get('mauve'))} | {_length(c)} | {fmt(c.get('length_ratio'))}x | "
                     f"{fmt(c.get('distinct_1'))} / {fmt(c.get('distinct_2'))} | {_opening(c)} | {fmt(garbled)} |")
    if critics:
        lines.append(f"| critics' quotes of the same films | | | | | {_length(critics)} | 1.00x | "
                     f"{fmt(critics.get('distinct_1'))} / {fmt(critics.get('distinct_2'))} | {_opening(critics)} | |")
    return lines


def _notes(arms: list[tuple[str, dict[str, Any]]]) -> list[str]:
    lines = []
    for _, arm in arms:
        c = arm["critic_likeness"]
        openings = ", ".join(f'"{quoted(o)}" ({n})' for o, n in c.get("top_openings") or [])
        garbled = c.get("garbled") or {}
        words = ", ".join(quoted(w) for w in garbled.get("examples") or [])
        parts = ([f"most repeated openings {openings}"] if openings else []) + (
            [f"garbled words {words}"] if words else []) + ([garbled["note"]] if garbled.get("note") else []) + (
            [(c.get("mauve") or {})["note"]] if (c.get("mauve") or {}).get("note") else [])
        if parts:
            lines.append(f"- {arm['label']}: " + "; ".join(parts) + ".")
    return lines + [""] if lines else []


def thin_table(result: dict[str, Any]) -> list[str]:
    """Each arm on the full held-out films and on the same films thinned, the numbers that move side by side."""
    thin = result.get("thin") or {}
    if not thin.get("arms"):
        return [thin["note"], ""] if thin.get("note") else []
    head = ("| arm | uses a detail of the film: full / thin | judged as asked, positive: full / thin | negative: "
            "full / thin | classifier accuracy: full / thin | median words: full / thin | replies with a garbled "
            "word: full / thin |")
    lines = [f"The same {thin['requests']} held-out requests again, over a copy of the store in which each of their "
             f"{thin['films']} films keeps {thin['reviews_per_film']} of its reviews and no facts card "
             f"({thin['reviews_dropped']} reviews and {thin['facts_documents_dropped']} facts documents left out), "
             "as a user's own file of new films arrives. Details are checked against everything the data knows "
             "about the film; the model saw only the five reviews.", "", head,
             "|" + "---|" * head.count(" | ") + "---|"]
    for key, arm in _arms(result):
        other = thin["arms"].get(key)
        if not other:
            continue

        def both(read, digits: int = 2) -> str:
            return f"{fmt(read(arm), digits)} / {fmt(read(other), digits)}"

        def sentiment(direction: str):
            return lambda a: ((a.get("sentiment") or {}).get(direction) or {}).get("accuracy")

        lines.append(
            f"| {arm['label']} | {both(lambda a: (a.get('specificity') or {}).get('rate'))} | "
            f"{both(sentiment('positive'))} | {both(sentiment('negative'))} | "
            f"{both(lambda a: a['critic_likeness']['classifier'].get('accuracy'))} | "
            f"{both(lambda a: a['critic_likeness']['length_words'].get('median'), 1)} | "
            f"{both(lambda a: (a['critic_likeness'].get('garbled') or {}).get('share'))} |")
    return lines + [""]


def pairs_lines(result: dict[str, Any]) -> list[str]:
    """Ten pairs, the key below them: a reader can judge for themselves before looking."""
    block = result.get("pairs") or {}
    pairs, arm = block.get("pairs") or [], result.get(block.get("arm") or "") or {}
    if not pairs:
        return []
    lines = ["## Which is the critic? Ten pairs", "",
             f"Each pair is a real critic's quote and a reply of the arm \"{arm.get('label', block.get('arm'))}\" "
             "about the same held-out film, in a coin-flip order. Guess, then check the key below.", ""]
    for i, p in enumerate(pairs, 1):
        lines += [f"{i}. **{quoted(p['film'])}**", f"   - A: {quoted(p['a'])}", f"   - B: {quoted(p['b'])}"]
    key = ", ".join(f"{i} {p['reply']}" for i, p in enumerate(pairs, 1))
    return lines + ["", f"Key (which one is the model's reply): {key}.", ""]


def critic_lines(result: dict[str, Any]) -> list[str]:
    """The section of eval.md: the table, its notes, the thin films beside it; empty when no arm was scored."""
    arms = _arms(result)
    if not arms:
        return []
    first = arms[0][1]["critic_likeness"]
    on = "held-out films" if first.get("group") == "held_out" else "films named in the requests"
    lines = ["## Does it read like a critic?", "",
             f"{first['n']} replies per arm about {first['films']} {on}, each beside a critic's quote of the same "
             "film (in the asked sentiment where the film has one, not one the arm was shown). How each number is "
             f"measured: [{HOW}](../{HOW}).", "",
             *likeness_table(arms, result.get("critics")), "", *_notes(arms)]
    thin = thin_table(result)
    if thin:
        lines += ["### Thin films: five reviews, no facts card", "", *thin]
    return lines
