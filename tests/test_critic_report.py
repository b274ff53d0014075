"""The critic-likeness section of eval.md: complete table rows, the critics' row, thin films beside the full
ones, and ten pairs whose key matches where the reply was put."""
from __future__ import annotations

from assistant.evaluation.critic_likeness import shuffled_pairs
from assistant.evaluation.critic_report import critic_lines, pairs_lines, quoted


def _likeness(accuracy, median, garbled):
    return {"group": "held_out", "n": 4, "films": 2,
            "classifier": {"accuracy": accuracy, "ci95": [accuracy - 0.1, min(1.0, accuracy + 0.1)]},
            "mauve": {"mauve": 0.42, "note": None}, "length_words": {"median": median, "p25": 10.0, "p75": 30.0},
            "length_ratio": median / 19, "distinct_1": 0.5, "distinct_2": 0.9,
            "opening": {"per": 4, "share": 0.25}, "top_openings": [["a masterful blend", 2]],
            "garbled": {"share": garbled, "examples": ["babboni"], "note": None}}


def _arm(label, rag, accuracy, median, garbled, detail):
    return {"label": label, "model": "tuned", "rag": rag, "critic_likeness": _likeness(accuracy, median, garbled),
            "specificity": {"rate": detail}, "sentiment": {"positive": {"accuracy": 1.0}, "negative": {"accuracy": 0.5}}}


def _result():
    critics = {"length_words": {"median": 19.0, "p25": 12.0, "p75": 27.0}, "distinct_1": 0.7, "distinct_2": 0.98,
               "opening": {"per": 4, "share": 0.0}}
    rows = [("Jaws", "A <b>shark</b> | a legend.", "The shark delivers.")] * 3
    return {"arm_order": ["base_no_rag", "base_rag", "no_rag", "rag"], "base_no_rag": None, "base_rag": None,
            "no_rag": _arm("fine-tuning alone", False, 0.97, 42.0, 0.1, 0.08),
            "rag": _arm("both", True, 0.9, 38.0, 0.05, 0.68), "critics": critics,
            "pairs": {"arm": "rag", "pairs": shuffled_pairs(rows, seed=3)},
            "thin": {"requests": 4, "films": 2, "reviews_per_film": 5, "reviews_dropped": 30,
                     "facts_documents_dropped": 2,
                     "arms": {"rag": _arm("both", True, 0.8, 33.0, 0.0, 0.38),
                              "no_rag": _arm("fine-tuning alone", False, 0.97, 42.0, 0.1, 0.08)}}}


def test_every_arm_stands_beside_the_critics_and_the_thin_films():
    lines = critic_lines(_result())
    table = [line for line in lines if line.startswith("| ") and "classifier accuracy (95% CI" in line]
    start = lines.index(table[0])
    rows = lines[start:start + 5]
    assert [r.split(" | ")[0] for r in rows[2:]] == ["| fine-tuning alone", "| both", "| critics' quotes of the same films"]
    assert all(r.count("|") == rows[0].count("|") for r in rows)  # paste-ready: every row complete
    assert "| 0.97 (0.87-1.00) | 0.42 | 42 (10-30) | 2.21x |" in rows[2] and rows[3].endswith("| 0.05 |")
    thin = [line for line in lines if line.startswith("| both | 0.68 / 0.38 |")]
    assert thin and "| 0.90 / 0.80 | 38.0 / 33.0 | 0.05 / 0.00 |" in thin[0]
    assert any('"a masterful blend" (2)' in line and "babboni" in line for line in lines)


def test_the_key_says_where_each_reply_was_put():
    result = _result()
    lines = pairs_lines(result)
    key = lines[-2]
    assert key.startswith("Key (which one is the model's reply): ")
    letters = [part.split()[1] for part in key.split(": ")[1].rstrip(".").split(", ")]
    for i, letter in enumerate(letters, 1):
        at = lines.index(f"{i}. **Jaws**")
        assert lines[at + (1 if letter == "A" else 2)].endswith("The shark delivers.")
    assert "&lt;b&gt;shark&lt;/b&gt; \\| a legend." in "\n".join(lines)  # review text is never HTML


def test_nothing_to_show_without_scored_arms():
    assert critic_lines({"arm_order": ["rag"], "rag": None}) == [] and pairs_lines({}) == []
    assert quoted("a\n<script>") == "a &lt;script&gt;"
