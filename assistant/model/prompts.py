"""The one prompt format, shared by training and the chat chain so the two cannot drift.

A request asks for a positive or negative review, names the movie when known (and optionally a
topic), and may carry a context block of retrieved reviews. Bases with a chat template (SmolLM2)
read it as a chat turn; plain bases (GPT-2, scratch) read a plain text template. Either way the
completion is the review followed by an end marker.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

SENTIMENTS: tuple[str, ...] = ("positive", "negative")
END_MARKER = "<|endoftext|>"  # GPT-2's own eos: one token for GPT-2, the scratch tokenizer and SmolLM2
SYSTEM_PROMPT = "You are a film critic. You write short, vivid movie reviews."
CONTEXT_HEADER = "Context (what critics wrote):"
REVIEW_CUE = "Review:"
MAX_CONTEXT_ITEM_CHARS = 320
MAX_FACTS_CHARS = 560  # a facts card: year, director, leads, genre, a synopsis line, the consensus

_INSTRUCTION_RE = re.compile(
    r'^Write a (?P<sentiment>positive|negative) (?:review of "(?P<movie>.*)"|movie review)'
    r"(?: about (?P<topic>.*?))?\.(?=[ \t]*$|<\|)",
    re.MULTILINE,
)


def other_sentiment(sentiment: str) -> str:
    """'negative' for 'positive' and back."""
    return SENTIMENTS[1 - SENTIMENTS.index(sentiment)]


@dataclass(frozen=True)
class ReviewRequest:
    """What the user asked for: sentiment, optional movie title and topic, optional retrieved context."""

    sentiment: str
    movie: str | None = None
    topic: str | None = None
    context: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.sentiment not in SENTIMENTS:
            raise ValueError(f"sentiment must be one of {SENTIMENTS}, not {self.sentiment!r}")


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "..."


def format_context_item(doc_metadata: dict[str, Any], text: str, *, show_movie: bool = False,
                        max_chars: int = MAX_CONTEXT_ITEM_CHARS) -> str:
    """One retrieved document as a context line: 'Critic (Publication), fresh: "quote"'.

    Movie-facts documents (kind="movie"; a joined card from `assistant.data.facts`) become 'About Title: ...'.
    `show_movie` names the movie of a review, for neighbours about a different film than the one requested.
    """
    if doc_metadata.get("kind") == "movie":
        # A joined facts card (assistant/data/facts.py) is already compact: names and plot, no boilerplate.
        body = _shorten(_one_line(text), MAX_FACTS_CHARS if doc_metadata.get("facts") else max_chars)
        if not doc_metadata.get("movie"):  # facts of an untitled source movie
            return "About the movie: " + re.sub(r"^Untitled movie\b", "The film", body)
        return f"About {doc_metadata['movie']}: {body}"
    body = _shorten(_one_line(text), max_chars)
    who = _one_line(doc_metadata.get("critic") or "") or "A critic"
    if doc_metadata.get("publication"):
        who += f" ({_one_line(doc_metadata['publication'])})"
    if show_movie and doc_metadata.get("movie"):
        who += f" on {_one_line(doc_metadata['movie'])}"
    verdict = {"positive": "fresh", "negative": "rotten"}.get(doc_metadata.get("sentiment") or "")
    if verdict:
        who += f", {verdict}"
    return f'{who}: "{body}"'


def as_written(request: ReviewRequest) -> ReviewRequest:
    """The request as its prompt writes it: each part on one line, a topic without its closing full stops, an
    empty title or topic left out. What the model is shown, and so what the decoding rules read
    (assistant/model/rules); `parse_prompt` reads the same back out of the text."""
    movie, topic = _one_line(request.movie or ""), _one_line(request.topic or "")
    return ReviewRequest(request.sentiment, movie or None, topic.rstrip(".") if topic else None,
                         [_one_line(item) for item in request.context])


def shown_texts(request: ReviewRequest) -> list[str]:
    """Every text of the request the model is shown (its context, the title, the topic): a word of these is one the
    model may write without making it up."""
    return [*(request.context or ()), request.movie or "", request.topic or ""]


def request_message(request: ReviewRequest) -> str:
    """The user's turn: context block first, the instruction last (small models weigh the end most)."""
    shown = as_written(request)
    lines: list[str] = []
    if shown.context:
        lines.append(CONTEXT_HEADER)
        lines.extend(f"- {item}" for item in shown.context)
        lines.append("")
    instruction = f"Write a {shown.sentiment} " + (f'review of "{shown.movie}"' if shown.movie else "movie review")
    if shown.topic is not None:
        instruction += f" about {shown.topic}"
    lines.append(instruction + ".")
    return "\n".join(lines)


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def end_marker(tokenizer: Any) -> str:
    """What ends a completion for this tokenizer: the chat turn's end token, else END_MARKER."""
    if has_chat_template(tokenizer) and getattr(tokenizer, "eos_token", None):
        return tokenizer.eos_token
    return END_MARKER


def build_prompt(request: ReviewRequest, tokenizer: Any) -> str:
    """The text a model continues with the review: chat template when the tokenizer has one, else plain."""
    message = request_message(request)
    if has_chat_template(tokenizer):
        turns = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": message}]
        return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    return f"{message}\n{REVIEW_CUE}"


def build_training_text(request: ReviewRequest, review: str, tokenizer: Any) -> tuple[str, str]:
    """(prompt, completion) for one training example; the loss falls on the completion only."""
    text = _one_line(review)
    sep = "" if has_chat_template(tokenizer) else " "  # GPT-2 BPE words carry their leading space
    return build_prompt(request, tokenizer), f"{sep}{text}{end_marker(tokenizer)}"


def parse_prompt(prompt: str) -> ReviewRequest:
    """Read a request back out of a prompt of either template (`as_written`'s request): for a prompt handed over
    as bare text (`fit_text`), tests and debugging. Code that built the prompt keeps its `FittedPrompt` instead."""
    match = None
    for match in _INSTRUCTION_RE.finditer(prompt):
        pass  # the last instruction line is the request's own
    if match is None:
        raise ValueError("no review instruction found in prompt")
    context: list[str] = []
    head = prompt.find(CONTEXT_HEADER)
    if 0 <= head < match.start():
        for line in prompt[head + len(CONTEXT_HEADER):match.start()].splitlines():
            if line.startswith("- "):
                context.append(line[2:])
    return ReviewRequest(match["sentiment"], match["movie"], match["topic"], context)


def clean_completion(text: str, tokenizer: Any | None = None) -> str:
    """Cut generated text at the first end marker and tidy whitespace."""
    markers = {END_MARKER}
    if tokenizer is not None:
        markers.add(end_marker(tokenizer))
        if getattr(tokenizer, "eos_token", None):
            markers.add(tokenizer.eos_token)
    for marker in markers:
        text = text.split(marker, 1)[0]
    return text.strip()


def count_tokens(text: str, tokenizer: Any) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def fit_context(request: ReviewRequest, tokenizer: Any, max_prompt_tokens: int) -> ReviewRequest:
    """Drop trailing context items, then shorten the last kept one, until the prompt fits the budget.

    Context is assumed ranked best first. Returns the request without context when even one
    shortened item does not fit (the instruction itself is never cut).
    """
    if count_tokens(build_prompt(request, tokenizer), tokenizer) <= max_prompt_tokens:
        return request
    items = list(request.context)
    while items:
        candidate = replace(request, context=items)
        if count_tokens(build_prompt(candidate, tokenizer), tokenizer) <= max_prompt_tokens:
            return candidate
        if len(items) > 1:
            items.pop()
            continue
        words = items[0].split()
        lo, hi, best = 1, len(words) - 1, None  # longest prefix of the only item that fits
        while lo <= hi:
            mid = (lo + hi) // 2
            trial = replace(request, context=[" ".join(words[:mid]) + '..."'])
            if count_tokens(build_prompt(trial, tokenizer), tokenizer) <= max_prompt_tokens:
                best, lo = trial, mid + 1
            else:
                hi = mid - 1
        if best is not None:
            return best
        items = []
    return replace(request, context=[])


@dataclass(frozen=True)
class FittedPrompt:
    """A request fitted to the model's window once, and the exact text the model is given (and the reply reports).

    `negative_text` is the same prompt asking for the opposite sentiment: sentiment guidance's negative prompt."""

    request: ReviewRequest  # what was kept: context trimmed, topic or title shortened when they had to be
    text: str
    negative_text: str
    tokens: int  # of `text`
    max_new_tokens: int  # the review's budget: tokens + max_new_tokens <= window
    window: int
    dropped: int = 0  # context items that did not fit

    def with_budget(self, max_new_tokens: int) -> FittedPrompt:
        """The same prompt with the review's budget set to `max_new_tokens`, as far as the window leaves room."""
        return replace(self, max_new_tokens=max(1, min(max_new_tokens, self.window - self.tokens)))


def plan_budget(tokenizer: Any, window: int, max_new_tokens: int) -> tuple[int, int]:
    """(new tokens, prompt budget) with budget + new tokens == window, leaving room for the bare instruction."""
    bare = count_tokens(build_prompt(ReviewRequest("negative", "M", None, []), tokenizer), tokenizer)
    new_tokens = max(1, min(max_new_tokens, window - bare - 16))
    return new_tokens, window - new_tokens


def fit_request(request: ReviewRequest, tokenizer: Any, budget: int) -> ReviewRequest:
    """Context trimmed first (`fit_context`); then the topic and the movie name, which come from the user."""
    fitted = fit_context(request, tokenizer, budget)
    steps = (lambda r: replace(r, topic=None),
             lambda r: replace(r, movie=" ".join((r.movie or "").split()[:4]) or None),
             lambda r: replace(r, movie=None))
    for step in steps:
        if count_tokens(build_prompt(fitted, tokenizer), tokenizer) <= budget:
            return fitted
        fitted = fit_context(step(fitted), tokenizer, budget)
    return fitted


def fit_prompt(request: ReviewRequest, tokenizer: Any, window: int, max_new_tokens: int) -> FittedPrompt:
    """The one fitting of a request: prompt plus review fit `window` tokens."""
    new_tokens, budget = plan_budget(tokenizer, window, max_new_tokens)
    fitted = fit_request(request, tokenizer, budget)
    text = build_prompt(fitted, tokenizer)
    return FittedPrompt(request=fitted, text=text, negative_text=opposite_prompt(text),
                        tokens=count_tokens(text, tokenizer), max_new_tokens=new_tokens, window=window,
                        dropped=len(request.context) - len(fitted.context))


def fit_text(text: str, tokenizer: Any, window: int, max_new_tokens: int) -> FittedPrompt:
    """A prompt handed over as bare text, its request read back (`parse_prompt`; ValueError when it is not one
    of ours), with as much of `max_new_tokens` as the window leaves room for. The text is kept as it is."""
    return FittedPrompt(request=parse_prompt(text), text=text, negative_text=opposite_prompt(text),
                        tokens=count_tokens(text, tokenizer), max_new_tokens=max_new_tokens,
                        window=window).with_budget(max_new_tokens)


def opposite_prompt(prompt: str) -> str:
    """The same prompt asking for the other sentiment: only the instruction's sentiment word changes, so the
    prompt's other tokens (context, title, template) stay exactly as they were."""
    match = None
    for match in _INSTRUCTION_RE.finditer(prompt):
        pass  # the last instruction line is the request's own
    if match is None:
        raise ValueError("no review instruction found in prompt")
    start, end = match.span("sentiment")
    return prompt[:start] + other_sentiment(match["sentiment"]) + prompt[end:]
