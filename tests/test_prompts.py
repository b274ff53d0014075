"""The prompt module (both templates) and the training-data preparation built on it."""
from __future__ import annotations

import pytest
from langchain_core.documents import Document

from assistant.data.details import Rarity
from assistant.data.records import Review
from assistant.model.prompts import (
    END_MARKER,
    ReviewRequest,
    as_written,
    build_prompt,
    build_training_text,
    clean_completion,
    count_tokens,
    end_marker,
    fit_context,
    fit_prompt,
    fit_text,
    format_context_item,
    parse_prompt,
)
from assistant.model.scratch import train_tokenizer
from assistant.training.examples import (
    DataConfig,
    context_for,
    is_duplicate,
    looks_tokenized,
    review_docs,
    sample_balanced,
    split_by_movie,
)
from assistant.training.grounded import PLAIN_RECIPE, select_examples
from tests.tiny import with_chat_template

TEXTS = ["A dazzling, funny film with a big heart and a great cast.",
         "A dull, lifeless mess of a movie that wastes its actors.",
         "Roger Ebert loved the toys, the jokes and the tender ending."] * 30


@pytest.fixture(scope="module")
def plain_tokenizer():
    return train_tokenizer(TEXTS, vocab_size=400)


@pytest.fixture(scope="module")
def chat_tokenizer(plain_tokenizer):
    return with_chat_template(plain_tokenizer)


REQUESTS = [
    ReviewRequest("negative", "Toy Story", "the toys", ['Roger Ebert (Chicago Sun-Times), fresh: "A joy."',
                                                        'A critic, rotten: "Too long."']),
    ReviewRequest("positive", "Mr. Smith Goes to Washington"),
    ReviewRequest("positive", None, "the U.S. release", []),
    ReviewRequest("negative"),
]


@pytest.mark.parametrize("template", ["plain", "chat"])
@pytest.mark.parametrize("request_", REQUESTS)
def test_prompt_round_trips(template, request_, plain_tokenizer, chat_tokenizer):
    tok = plain_tokenizer if template == "plain" else chat_tokenizer
    prompt = build_prompt(request_, tok)
    assert parse_prompt(prompt) == request_
    train_prompt, completion = build_training_text(request_, "  A   fine\nfilm. ", tok)
    assert train_prompt == prompt  # training and the chain read the very same prompt
    assert completion.strip().startswith("A fine film.")
    assert completion.endswith(end_marker(tok))
    assert clean_completion(completion, tok) == "A fine film."


UNTIDY = [ReviewRequest("negative", "  Toy\n Story ", "the  toys..", ["Roger  Ebert (Sun), fresh:\n \"A  joy.\""]),
          ReviewRequest("positive", " ", "\t", []), ReviewRequest("positive", "Up", "...", [])]


@pytest.mark.parametrize("template", ["plain", "chat"])
@pytest.mark.parametrize("request_", REQUESTS + UNTIDY)
def test_as_written_is_what_the_prompt_shows(template, request_, plain_tokenizer, chat_tokenizer):
    """The decoding rules read `as_written(request)`: exactly what the text shows, as parse_prompt reads it."""
    tok = plain_tokenizer if template == "plain" else chat_tokenizer
    assert parse_prompt(build_prompt(request_, tok)) == as_written(request_)


def test_a_bare_text_prompt_is_read_back_with_the_budget_its_window_leaves(chat_tokenizer):
    fitted = fit_prompt(REQUESTS[0], chat_tokenizer, 512, 60)
    assert fitted.dropped == 0 and fit_text(fitted.text, chat_tokenizer, 512, 60) == fitted  # from the text alone
    assert fitted.with_budget(10_000).max_new_tokens == 512 - fitted.tokens
    assert fitted.with_budget(5).max_new_tokens == 5 and fitted.with_budget(0).max_new_tokens == 1
    with pytest.raises(ValueError, match="no review instruction"):
        fit_text("Tell me a joke.", chat_tokenizer, 512, 60)


def test_templates_differ_as_designed(plain_tokenizer, chat_tokenizer):
    request = REQUESTS[0]
    plain = build_prompt(request, plain_tokenizer)
    chat = build_prompt(request, chat_tokenizer)
    assert plain.endswith("\nReview:") and "<|im_start|>" not in plain
    assert chat.startswith("<|im_start|>system") and chat.endswith("<|im_start|>assistant\n")
    assert plain.index("Context") < plain.index("Write a negative")  # instruction last
    assert end_marker(plain_tokenizer) == END_MARKER and end_marker(chat_tokenizer) == "<|im_end|>"
    assert build_training_text(request, "Meh.", plain_tokenizer)[1] == " Meh." + END_MARKER


def test_bad_sentiment_is_refused():
    with pytest.raises(ValueError, match="sentiment"):
        ReviewRequest("neutral", "Toy Story")


def test_format_context_item():
    meta = Review("x", "positive", movie="Toy Story", critic="Roger Ebert", publication="Chicago Sun-Times").metadata()
    assert format_context_item(meta, " A  joy\nfrom start to finish. ") == \
        'Roger Ebert (Chicago Sun-Times), fresh: "A joy from start to finish."'
    assert format_context_item(meta, "Fun.", show_movie=True) == 'Roger Ebert (Chicago Sun-Times) on Toy Story, fresh: "Fun."'
    assert format_context_item({"sentiment": "negative"}, "Bad.") == 'A critic, rotten: "Bad."'
    assert format_context_item({"kind": "movie", "movie": "Up"}, "Up (2009). Directed by Pete Docter") == \
        "About Up: Up (2009). Directed by Pete Docter"
    assert format_context_item({"kind": "movie"}, "Untitled movie (2003). Genre: Drama") == \
        "About the movie: The film (2003). Genre: Drama"
    long = format_context_item({}, "word " * 200)
    assert len(long) < 360 and long.endswith('..."')


@pytest.mark.parametrize("template", ["plain", "chat"])
def test_fit_context_respects_budget(template, plain_tokenizer, chat_tokenizer):
    tok = plain_tokenizer if template == "plain" else chat_tokenizer
    items = [f'Critic {i}, fresh: "' + "a dazzling funny film with heart " * 6 + '"' for i in range(6)]
    request = ReviewRequest("positive", "Toy Story", None, items)
    bare = count_tokens(build_prompt(ReviewRequest("positive", "Toy Story"), tok), tok)
    full = count_tokens(build_prompt(request, tok), tok)
    assert fit_context(request, tok, full) == request  # fits: unchanged
    short = ReviewRequest("positive", "Toy Story", None, [items[0][:45]])
    one_short = count_tokens(build_prompt(short, tok), tok)
    for budget in (full - 1, (full + bare) // 2, one_short):
        fitted = fit_context(request, tok, budget)
        assert count_tokens(build_prompt(fitted, tok), tok) <= budget
        assert fitted.context and fitted.context[0].startswith("Critic 0")  # best-ranked item kept first
    assert len(fit_context(request, tok, one_short).context) == 1  # shortened, not dropped
    assert fit_context(request, tok, bare).context == []


# ---- training data ---------------------------------------------------------------------------

def _doc(text: str, sentiment: str, movie: str | None, critic: str = "C") -> Document:
    review = Review(text, sentiment, movie=movie, critic=critic)
    return Document(page_content=text, metadata=review.metadata())


MOVIES = ["Toy Story", "Cars", "Up", "Heat", "Alien", "Jaws", "Brazil", "Fargo", "Rocky", "Psycho"]
DOCS = [_doc(f"{'A wonderful' if i % 2 else 'A tedious'} picture number {i} about {m}, with a lot to say.",
             "positive" if i % 2 else "negative", m) for i, m in enumerate(MOVIES * 6)]


def test_review_docs_filters():
    bad = [
        _doc("it is n't a good movie , really .", "negative", "Cars"),  # Pang & Lee tokenized style
        _doc("A fine, long enough review of the thing.", "unknown", "Cars"),
        _doc("Too short.", "positive", "Cars"),
        _doc("A long quote that the source cut off right in the mid", "positive", "Cars"),
        _doc("Excellent, excellent. [Full review in Spanish]", "positive", "Cars"),
        Document(page_content="Toy Story (1995). Directed by John Lasseter, a long synopsis.",
                 metadata={"kind": "movie", "sentiment": "unknown"}),
    ]
    kept = list(review_docs(bad + DOCS + DOCS[:3]))  # duplicates appear once
    assert kept == DOCS
    assert looks_tokenized("it is n't bad , really .") and not looks_tokenized("It isn't bad, really.")


def test_split_is_movie_disjoint_and_stable():
    config = DataConfig(val_share=0.3, seed=3)
    split = split_by_movie(DOCS, config)
    train_movies = {d.metadata["movie_key"] for d in split.train}
    assert split.val and split.train and not (train_movies & split.val_movies)
    again = split_by_movie(list(reversed(DOCS)), config)
    assert {d.metadata["doc_id"] for d in again.val} == {d.metadata["doc_id"] for d in split.val}


def test_sample_balanced():
    picked = sample_balanced(DOCS, 20, titled_share=1.0, seed=1)
    assert len(picked) == 20
    assert sum(d.metadata["sentiment"] == "positive" for d in picked) == 10


def test_context_excludes_target_and_duplicates():
    target = DOCS[0]
    copy_other_id = Document(page_content=target.page_content.upper() + "!", metadata={**DOCS[1].metadata, "doc_id": "x"})
    near = DOCS[2]
    quoting = Document(page_content="As they said: " + target.page_content, metadata={**DOCS[3].metadata, "doc_id": "q"})
    good = [DOCS[4], DOCS[5]]

    def neighbours(doc, k):
        return [(doc, 1.0), (copy_other_id, 0.9), (near, 0.97), (quoting, 0.8)] + [(g, 0.5) for g in good]

    items = context_for(target, neighbours, 3)
    assert len(items) == 2 and all("picture number 4" in items[0] or "number 5" in i for i in items)
    assert is_duplicate(target, near, 0.97) and not is_duplicate(target, good[0], 0.5)

    def plain_neighbours(doc, k):  # a callable may also return bare documents
        return good

    rarity = Rarity.of(d.page_content for d in DOCS)
    config = DataConfig(context_share=0.5, seed=2, **PLAIN_RECIPE)
    examples, _ = select_examples(DOCS[:40], plain_neighbours, config, rarity, n=40)
    with_context = [e for e in examples if e.request.context]
    assert len(examples) == 40 and 10 <= len(with_context) <= 30
    assert all(e.review not in " ".join(e.request.context) for e in examples)
    movies = {d.metadata["doc_id"]: d.metadata["movie"] for d in DOCS}
    assert all(e.request.movie == movies[e.doc_id] for e in examples)
