"""The evaluation's PNG charts: the headline measures per arm (with chance levels), latency, retrieval."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CHARTS = {"arms": "eval_arms.png", "latency": "eval_latency.png", "retrieval": "eval_retrieval.png"}
RETRIEVAL_ON = {True: "on", False: "off"}


def _arms(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(k, result[k]) for k in result.get("arm_order", []) if result.get(k)]


def write_charts(result: dict[str, Any], out: Path) -> dict[str, str]:
    """PNG charts beside the JSON; returns {name: file name} for those written."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers or in tests
    import matplotlib.pyplot as plt

    written: dict[str, str] = {}
    arms = _arms(result)
    if arms:
        _arms_chart(plt, arms, out / CHARTS["arms"])
        _latency_chart(plt, arms, out / CHARTS["latency"])
        written.update(arms=CHARTS["arms"], latency=CHARTS["latency"])
    else:
        for name in ("arms", "latency"):  # a stale chart from an earlier run would contradict this report
            (out / CHARTS[name]).unlink(missing_ok=True)
    if result.get("retrieval"):
        _retrieval_chart(plt, result["retrieval"], out / CHARTS["retrieval"])
        written["retrieval"] = CHARTS["retrieval"]
    return written


def _direction(arm: dict[str, Any], direction: str) -> Any:
    return ((arm.get("sentiment") or {}).get(direction) or {}).get("accuracy")


ARM_METRICS: tuple[tuple[str, Any, Any], ...] = (
    ("uses a name or\ndetail of the movie", lambda a: (a.get("specificity") or {}).get("rate"),
     lambda a: (a.get("specificity") or {}).get("chance")),
    ("its names found in\ncontext / data", lambda a: (a.get("faithfulness") or {}).get("grounded_share"),
     lambda a: None),
    ("repeats 8 words of\na retrieved review", lambda a: (a.get("retrieved_copy") or {}).get("rate"),
     lambda a: None),
    ("positive asked:\njudged positive", lambda a: _direction(a, "positive"), lambda a: 0.5),
    ("negative asked:\njudged negative", lambda a: _direction(a, "negative"), lambda a: 0.5),
    ("8-gram copy of\ntraining reviews", lambda a: a["copy_rate_8gram"], lambda a: None),
)


def _arms_chart(plt: Any, arms: Sequence[tuple[str, dict]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(11, 4.8), dpi=110)
    width = 0.8 / len(arms)
    for i, (_, arm) in enumerate(arms):
        xs = [m + (i - (len(arms) - 1) / 2) * width for m in range(len(ARM_METRICS))]
        values = [_num(get(arm)) for _, get, _ in ARM_METRICS]
        ax.bar(xs, values, width * 0.95, label=f"{arm['label']} ({arm['model']}, RAG {RETRIEVAL_ON[arm['rag']]})")
        for x, (_, _, chance) in zip(xs, ARM_METRICS):
            level = chance(arm)
            if level is not None:
                ax.hlines(level, x - width / 2, x + width / 2, colors="black", linestyles="dashed", linewidth=1)
    ax.set_xticks(range(len(ARM_METRICS)), [name for name, _, _ in ARM_METRICS])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share (0-1)")
    ax.set_title("Is the review about this movie, and true? Each arm on the same requests (dashes: chance)")
    ax.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _latency_chart(plt: Any, arms: Sequence[tuple[str, dict]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    labels = [arm["label"] for _, arm in arms]
    series = [("first token p50", "first_token_s", "p50"), ("first token p95", "first_token_s", "p95"),
              ("full reply p50", "total_s", "p50"), ("full reply p95", "total_s", "p95")]
    width = 0.8 / len(series)
    for i, (name, metric, q) in enumerate(series):
        xs = [a + (i - 1.5) * width for a in range(len(arms))]
        ax.bar(xs, [_num(arm["latency"][metric][q]) for _, arm in arms], width * 0.95, label=name)
    ax.set_xticks(range(len(arms)), labels)
    ax.set_ylabel("seconds")
    ax.set_title("Latency, one request at a time on this machine")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _retrieval_chart(plt: Any, retrieval: dict[str, Any], path: Path) -> None:
    ks = retrieval["ks"]
    cols = [f"recall@{k}" for k in ks] + [f"precision@{k}" for k in ks] + ["mrr@10"]
    fig, ax = plt.subplots(figsize=(7, 3.4), dpi=110)
    for i, (name, values) in enumerate((("plain top-k", retrieval), ("MMR", retrieval["mmr"]))):
        ax.bar([c + (i - 0.5) * 0.4 for c in range(len(cols))], [_num(values.get(c)) for c in cols], 0.38, label=name)
    chance = retrieval.get("chance") or {}
    for c, col in enumerate(cols):
        if col in chance:
            ax.hlines(_num(chance[col]), c - 0.4, c + 0.4, colors="black", linestyles="dashed", linewidth=1)
    ax.set_xticks(range(len(cols)), cols)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Same-movie retrieval from one review ({retrieval['queries']} queries; dashes: chance)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else 0.0
