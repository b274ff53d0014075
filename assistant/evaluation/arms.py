"""The 2x2 evaluation's arms: which can run, and asking the chat chain one request as a user would."""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

from assistant.evaluation.requests import GROUPS, EvalRequest
from assistant.settings import Sampling

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArmSpec:
    key: str
    label: str
    model: str  # the chain's model argument
    rag: bool


ARMS: dict[str, ArmSpec] = {a.key: a for a in (
    ArmSpec("base_no_rag", "neither", "base", False),
    ArmSpec("base_rag", "RAG alone", "base", True),
    ArmSpec("no_rag", "fine-tuning alone", "tuned", False),
    ArmSpec("rag", "both", "tuned", True),
)}
ARM_ORDER: tuple[str, ...] = tuple(ARMS)
PAIRED_RAG = {"no_rag": ("rag", "base_rag"), "base_no_rag": ("base_rag", "rag")}


@dataclass(frozen=True)
class EvalOptions:
    n_requests: int = 24
    max_new_tokens: int = Sampling().max_new_tokens  # the chat's defaults: measure what users get
    temperature: float = Sampling().temperature
    top_k: int | None = None  # None: settings.top_k, as in the chat
    retrieval_queries: int = 300
    filter_queries: int = 100
    seed: int = 2024
    quick: bool = False
    samples: int = 4
    guidance: float | None = None  # sentiment guidance; None: settings.sampling.guidance, as in the chat
    groups: tuple[str, ...] = GROUPS  # request groups asked (requests.GROUPS)
    arms: tuple[str, ...] | None = None  # None: every arm that can run
    thin: bool = False  # also the held-out films with five reviews each and no facts card (evaluation.thin)
    drafts: int | None = None  # drafts per review; None: settings.sampling.drafts, as in the chat

    @classmethod
    def quick_run(cls, **overrides: Any) -> EvalOptions:
        return cls(**{"n_requests": 6, "max_new_tokens": 40, "retrieval_queries": 60, "filter_queries": 30,
                      "quick": True, **overrides})


@dataclass
class Turn:
    """One request answered by one arm, as the chat returned it."""

    request_id: str
    text: str = ""
    sources: list[dict] = field(default_factory=list)
    parsed: dict = field(default_factory=dict)
    mode: str | None = None
    model: str | None = None
    first_token_s: float | None = None
    total_s: float | None = None
    retrieval_s: float | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None


def as_dict(obj: Any) -> dict:
    """Reply parts may be dicts, dataclasses or objects with to_dict(); read them all the same way."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if is_dataclass(obj):
        return asdict(obj)
    return dict(vars(obj))


# ---- which arms can run --------------------------------------------------------------------------

def read_card(settings: Any) -> dict | None:
    """The card of the fine-tuned model the chain answers with as 'tuned' (the user's own, else the shipped
    adapter's: `assistant.chat.loading`), with its folder and origin under "_path" and "_origin"; None when
    there is none."""
    from assistant.model import shipped
    from assistant.model.bases import tuned_dir
    from assistant.model.card import CARD_JSON, CardError
    from assistant.model.card import read_card as read_card_file

    folder = tuned_dir(settings)
    if settings.tuned_model == "own" and (folder / "config.json").exists() and any(folder.glob("*.safetensors")):
        try:
            card = read_card_file(folder / CARD_JSON)
        except CardError as exc:  # a hand-edited card: the model still answers, its card is not read
            log.warning("%s", exc)
            card = {}
        return {**card, "_path": str(folder), "_origin": "own"}
    if shipped.applies_to(settings):
        return {**shipped.read_card(), "_path": str(shipped.shipped_dir()), "_origin": "shipped"}
    return None


def plan_arms(card: dict | None, status: dict, settings: Any) -> tuple[list[str], dict[str, str], dict]:
    """Arms to run, arms skipped with the reason, and what is known about the two models.

    A model the chain cannot serve is skipped rather than run: the chain would quietly answer with the
    other model, and the row would measure the wrong thing.
    """
    models = status.get("models") if isinstance(status.get("models"), dict) else {}
    tuned_status, base_status = as_dict(models.get("tuned")), as_dict(models.get("base"))
    tuned = card is not None and tuned_status.get("available", True) is not False
    base_name = str((card or {}).get("base") or base_status.get("name") or settings.base_model)
    base_kind = "scratch" if "scratch" in base_name.lower() else base_name
    skipped: dict[str, str] = {}
    run: list[str] = []
    for key in ARM_ORDER:
        spec = ARMS[key]
        if spec.model == "tuned" and card is None:
            skipped[key] = "no fine-tuned model yet (train one: python -m assistant.finetune)"
        elif spec.model == "tuned" and not tuned:
            skipped[key] = f"the chain could not load the fine-tuned model ({tuned_status.get('error')})"
        elif spec.model == "base" and base_kind == "scratch":
            skipped[key] = "the base was trained from scratch: an untrained network has no 'before' row"
        elif spec.model == "base" and base_status.get("available") is False:
            skipped[key] = f"the chain could not load the base model ({base_status.get('error')})"
        else:
            run.append(key)
    info = {"tuned": {"available": tuned, **_card_summary(card, settings)},
            "base": {"available": not any(ARMS[k].model == "base" for k in skipped), "name": base_name,
                     "kind": base_kind}}
    return run, skipped, info


def _card_summary(card: dict | None, settings: Any) -> dict:
    from assistant.model.bases import tuned_dir

    if card is None:
        return {}
    keys = ("base", "method", "params", "train_minutes", "train_examples", "judge_acc", "sentiment_acc",
            "evaluated_at")
    return {"path": card.get("_path") or str(tuned_dir(settings)), "origin": card.get("_origin", "own"),
            **{k: card.get(k) for k in keys if k in card}}


# ---- asking the chain ----------------------------------------------------------------------------

def ask(assistant: Any, session_id: str, request: EvalRequest, spec: ArmSpec, options: EvalOptions,
        max_new_tokens: int | None = None) -> Turn:
    """One request through the chain's stream, timed as the user sees it (first text, then the whole reply)."""
    turn = Turn(request.id)
    kwargs = dict(rag=spec.rag, model=spec.model, top_k=options.top_k, temperature=options.temperature,
                  max_new_tokens=max_new_tokens or options.max_new_tokens, seed=request.seed, remember=False,
                  drafts=options.drafts,  # None: the settings' (MRA_SAMPLING__DRAFTS), as the chat writes them
                  guidance=options.guidance)
    started = time.perf_counter()
    reply = None
    try:
        for item in assistant.stream(session_id, request.text, **kwargs):
            if isinstance(item, str):
                if item.strip() and turn.first_token_s is None:
                    turn.first_token_s = time.perf_counter() - started
            else:
                reply = item
    except Exception as exc:  # one failed reply is a miss in every metric, not the end of the run
        log.warning("%s %s failed: %s", spec.key, request.id, exc)
        turn.error = f"{type(exc).__name__}: {exc}"
    turn.total_s = time.perf_counter() - started
    if reply is not None:
        turn.text = (getattr(reply, "text", "") or "").strip()
        turn.sources = [as_dict(s) for s in getattr(reply, "sources", None) or []]
        turn.parsed = as_dict(getattr(reply, "request", None))
        turn.mode, turn.model = getattr(reply, "mode", None), getattr(reply, "model", None)
        timings = as_dict(getattr(reply, "timings", None))
        turn.retrieval_s = timings.get("retrieval_s")
        turn.notes = [str(n) for n in getattr(reply, "notes", None) or []]
    if turn.first_token_s is None and turn.text:
        turn.first_token_s = turn.total_s  # the whole reply arrived at once
    return turn


def run_arms(assistant: Any, keys: Sequence[str], requests: Sequence[EvalRequest], options: EvalOptions,
             run_id: str) -> dict[str, list[Turn]]:
    """Every request through every arm, one at a time (what a chat user waits for), each in a fresh session.

    Arms take turns request by request, so a machine that gets busier or quieter during the run, or a model
    that speeds up once warm, weighs on every arm alike instead of on whichever ran first.
    """
    for key in keys:  # untimed warm-up: models and the embedding model load on first use
        ask(assistant, f"eval-{run_id}-{key}-warmup", requests[0], ARMS[key], options, max_new_tokens=1)
    turns: dict[str, list[Turn]] = {key: [] for key in keys}
    started = time.perf_counter()
    for i, request in enumerate(requests):
        for key in keys:
            turns[key].append(ask(assistant, f"eval-{run_id}-{key}-{request.id}", request, ARMS[key], options))
            log.info("[%d/%d] %s %s -> %r", i + 1, len(requests), key, request.id, turns[key][-1].text[:70])
    log.info("%d replies in %.0f s", len(requests) * len(keys), time.perf_counter() - started)
    return turns


def unusable(spec: ArmSpec, turns: Sequence[Turn]) -> str | None:
    """Why an arm's replies do not measure the arm: the chain fell back to the other model, or every request failed."""
    wrong = [t.model for t in turns if t.model and t.model != spec.model]
    if wrong:
        return (f"the chain answered {len(wrong)} of {len(turns)} requests with the {wrong[0]} model instead of "
                f"the {spec.model} model")
    if turns and all(t.error for t in turns):
        return f"every request failed ({turns[0].error})"
    return None

