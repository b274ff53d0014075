"""What the assistant answers: the `Reply` (text and everything behind it), and the texts no model writes
(help, small talk, "why?", an empty message)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from assistant.chat.export import source_line
from assistant.chat.intent import ParsedRequest
from assistant.chat.retrieval import Source
from assistant.model.drafts import describe
from assistant.model.prompts import other_sentiment

INGEST_HINT = "python ingest.py"
FINETUNE_HINT = "python -m assistant.finetune"


@dataclass
class Reply:
    text: str
    request: ParsedRequest
    sources: list[Source] = field(default_factory=list)
    mode: str = "chat"  # rag | no_rag | data | chat
    model: str | None = None  # tuned | base; None when no language model wrote the reply
    timings: dict[str, float | None] = field(
        default_factory=lambda: {"retrieval_s": 0.0, "first_token_s": None, "total_s": 0.0})
    notes: list[str] = field(default_factory=list)
    opinion: dict[str, Any] | None = None
    prompt: str | None = None  # exactly what the model was given
    prompt_tokens: int | None = None
    max_new_tokens: int | None = None
    window: int | None = None  # the model's context window the prompt was budgeted against
    seed: int | None = None
    model_name: str | None = None
    tuned_origin: str | None = None  # the tuned model's: "shipped" (in the repo) or "own" (the user's fine-tune)
    session_id: str = ""
    drafts: dict[str, Any] | None = None  # best-of-n: drafts.record / fallback_record; None for one live draft
    guidance: float | None = None  # sentiment guidance scale the review was written with (1 = off)

    def to_json(self) -> dict[str, Any]:
        """The machine-readable shape of `python -m assistant ask --json`."""
        r = self.request
        return {
            "reply": self.text,
            "sources": [s.to_dict() for s in self.sources],
            "request": {"kind": r.kind, "sentiment": r.sentiment, "movie": r.movie, "movie_key": r.movie_key,
                        "topic": r.topic, "fuzzy_score": r.fuzzy_score, "followup": r.followup,
                        "sentiment_from": r.sentiment_from, "suggestions": r.suggestions},
            "mode": self.mode, "model": self.model, "model_name": self.model_name,
            "tuned_origin": self.tuned_origin,
            "timings": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.timings.items()},
            "notes": self.notes, "opinion": self.opinion, "seed": self.seed,
            "prompt_tokens": self.prompt_tokens, "max_new_tokens": self.max_new_tokens, "window": self.window,
            "session_id": self.session_id, "drafts": self.drafts, "guidance": self.guidance,
        }

    def memory_meta(self) -> dict[str, Any]:
        """What the session keeps of this reply, for follow-ups, "why?" and display."""
        return {"mode": self.mode, "model": self.model, "model_name": self.model_name,
                "tuned_origin": self.tuned_origin, "request": self.request.to_dict(),
                "sources": [s.to_dict() for s in self.sources],
                "notes": self.notes, "opinion": self.opinion, "seed": self.seed, "drafts": self.drafts,
                "guidance": self.guidance, "timings": self.to_json()["timings"]}

    def to_state(self) -> dict[str, Any]:
        """Plain data (the chat graph's state is checkpointed, and only plain data is revived from it)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**data, "request": self.request.to_dict(), "sources": [s.to_dict() for s in self.sources]}

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Reply:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["request"] = ParsedRequest.from_dict(data.get("request")) or ParsedRequest(kind="empty")
        values["sources"] = [Source.from_dict(s) for s in data.get("sources") or []]
        return cls(**values)


# ---- texts no model writes ----------------------------------------------------------------------------------

def help_text(*, titles: list[str], parsed: ParsedRequest | None, rag: bool, rag_error: str | None,
              reviews: int) -> str:
    """`titles`: popular titles for the examples; `rag_error`: why retrieval is unavailable, None when it is."""
    a, b, c = (list(titles) + ["Toy Story", "The Matrix", "Gigli"])[:3]
    lines = []
    if parsed is not None and not parsed.understood:
        lines.append("I didn't catch a request in that.")
        if parsed.suggestions:
            lines.append(f"If you meant a movie, close titles in the data: {', '.join(parsed.suggestions)}.")
        lines.append("")
    lines += [
        "I write short movie reviews, positive or negative, and tell you what critics in the data thought.",
        "Try:",
        f"- Write a positive review of {a}",
        f"- Give me a scathing one for {b}",
        "- A rave about a horror movie",
        f"- then: now a negative one / another / same movie but harsher / what about {c}?",
        f"- What do critics think of {b}?  or  Is {a} fresh?",
        "- why?  (what the last review was based on)",
    ]
    if rag_error is not None:
        lines.append(f"Retrieval is unavailable ({rag_error}).")
    elif rag:
        lines.append(f"Retrieval (RAG) is on: reviews are first looked up among {reviews:,} critics' reviews "
                     "and shown as sources; turn it off to see the model alone.")
    else:
        lines.append("Retrieval (RAG) is off: the model writes alone; turn it on to ground it in real reviews.")
    return "\n".join(lines)


_SMALLTALK = [
    (re.compile(r"^(?:thanks?|thank you|thx|ty|cheers)", re.I),
     "You're welcome! Ask for another review, or what critics thought of a movie, whenever you like."),
    (re.compile(r"^(?:bye|goodbye|see (?:you|ya)|good night)", re.I),
     "Bye! This conversation is saved; pick it up again any time."),
    (re.compile(r"^(?:how are you|how'?s it going|what'?s up|sup)\b", re.I),
     "All good, and ready to write. Which movie shall I review?"),
    (re.compile(r"^(?:ok(?:ay)?|k|cool|great|nice|awesome|lol|haha+|good (?:job|bot)|well done|(?:that|this) "
                r"(?:is|was))\b", re.I),
     "Glad to help. Ask for another one, the other side, or a different movie."),
]


def smalltalk_text(text: str, *, example: str, tuned: bool, reviews: int) -> str:
    hint = (f"Try \u201cWrite a positive review of {example}\u201d or \u201cWhat do critics think of "
            f"{example}?\u201d; say help for more.")
    for pattern, answer in _SMALLTALK:
        if pattern.search(text):
            return answer
    if re.search(r"^(?:who|what) are you|^are you|^who made you", text, re.I):
        kind = ("a small language model fine-tuned on critics' reviews" if tuned
                else "a small pretrained language model (not fine-tuned yet)")
        data = f", plus a search over {reviews:,} Rotten Tomatoes critics' reviews" if reviews else ""
        return f"I'm a movie-review assistant: {kind}{data}. {hint}"
    return f"Hi! I write positive or negative movie reviews and can tell you what critics thought. {hint}"


def empty_text(parsed: ParsedRequest) -> str:
    if parsed.understood:
        return "Say something: for example \u201cWrite a positive review of Toy Story\u201d, or help."
    return ("I couldn't read that message (it looks like markup or binary data, with no words in it). "
            "Try plain text, for example \u201cWrite a positive review of Toy Story\u201d.")


def why_text(previous: ParsedRequest | None, meta: dict[str, Any] | None) -> tuple[str, list[Source]]:
    """What the session's last review or opinion was based on, from what the session kept of it."""
    if not meta:
        return ("There is nothing to explain yet: ask for a review first, for example "
                "\u201cWrite a positive review of Toy Story\u201d.", [])
    request = previous or ParsedRequest(kind="review")
    sources = [Source.from_dict(s) for s in meta.get("sources") or []]
    about = f" of {request.movie}" if request.movie else ""
    mode, model = meta.get("mode"), meta.get("model")
    lines: list[str] = []
    if mode == "data":
        lines.append(f"Those figures{about} come straight from the review data: fresh and rotten reviews "
                     "counted in the store, the consensus from the movie's record, and quotes chosen as the most "
                     "typical of each side (nearest the average of their embeddings). No language model "
                     "was involved.")
    elif mode == "rag":
        lines.append(f"That {request.sentiment or ''} review{about} was written by the {model} model with "
                     f"{len(sources)} retrieved document(s) in its context (RAG on):")
        lines += [f"{i}. {source_line(s.to_dict())}" for i, s in enumerate(sources, 1)]
        lines.append("The model may borrow facts and phrasing from these; it is small and can still get "
                     "things wrong.")
    elif mode == "no_rag":
        lines.append(f"That {request.sentiment or ''} review{about} came from the {model} model alone: "
                     "retrieval was off, so nothing grounds it. Ask again with RAG on (or compare) to see "
                     "which reviews it would draw on.")
    else:
        lines.append("My last answer was not a generated review, so there is nothing behind it to show.")
    chose = describe(meta.get("drafts"), request.sentiment)
    if chose and mode in ("rag", "no_rag"):
        if meta["drafts"].get("likeness"):
            # said only when the word check set a draft aside: otherwise it changed nothing
            words = " and without a word no review uses" if any(meta["drafts"].get("garbled") or ()) else ""
            named = meta["drafts"].get("named") or ()
            if any(named) and not all(v for v in named if v is not None):  # said only where it narrowed the choice
                words += " that name the film's people"
            lines.append(f"It is one of {meta['drafts']['n']} drafts written at once: I {chose}, of those the "
                         f"sentiment probe read clearly as {request.sentiment}{words}, the one most like a critic's "
                         f"quote.")
        else:
            lines.append(f"It is one of {meta['drafts']['n']} drafts written at once: I {chose}, the one the "
                         f"{meta['drafts']['scorer']} read as most {request.sentiment}.")
    guidance = float(meta.get("guidance") or 1.0)
    if guidance > 1.0 and mode in ("rag", "no_rag") and request.sentiment:
        lines.append(f"Each word was steered away from what a {other_sentiment(request.sentiment)} review of "
                     f"the same request would say (sentiment guidance {guidance:g}).")
    if request.sentiment_from == "data":
        lines.append(f"It was {request.sentiment} because most critics in the data felt that way about "
                     f"{request.movie}.")
    elif request.sentiment_from == "default":
        lines.append("It was positive because you did not ask for a side.")
    return "\n".join(lines), sources
