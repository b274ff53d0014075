"""Where a reply ends: end markers and the sentence bound, the same when streamed, batched or on either path."""
from __future__ import annotations

import pytest
import torch

from assistant.model.generation import ReviewGenerator
from assistant.model.prompts import END_MARKER, ReviewRequest
from assistant.model.scratch import TINY, build_model, train_tokenizer
from assistant.model.stopping import ReplyText, reply_end

torch.set_num_threads(1)

TEXTS = ["A great film. A dull plot! Is it fun? Yes.", "Warm and funny... and cold."] * 40


@pytest.mark.parametrize("text, sentences, end", [
    ("A great film. A dull plot. More", 2, len("A great film. A dull plot.")),
    ("A great film. A dull plot.", 2, None),  # the second sentence may still go on ("plot.com"?) until a space
    ("Wow!) Then it ends.\n", 1, len("Wow!)")),
    ("It costs 3.5 dollars and...and more. Then", 1, len("It costs 3.5 dollars and...and more.")),
    ("Too long. Much too long.", 0, None),
    ("Fine<|endoftext|>junk. More. Text.", 1, len("Fine")),
])
def test_reply_end(text, sentences, end):
    assert reply_end(text, [END_MARKER], sentences) == end


@pytest.mark.parametrize("text, end", [
    # an exclamation is not yet a review: it goes on to the sentence that says why
    ("Absolutely smashing! Stallone has never been better in a role. More", len(
        "Absolutely smashing! Stallone has never been better in a role.")),
    # one sentence of a critic's length is the whole review: no second one to wander in
    ("A grim, gripping thriller that never lets its star off the hook. Then more.", len(
        "A grim, gripping thriller that never lets its star off the hook.")),
    ("Wow. Great. Fine.", None),  # still short of a review: it may go on
])
def test_a_sentence_too_short_to_be_a_review_does_not_end_it(text, end):
    assert reply_end(text, [END_MARKER], 1, min_words=8) == end
    assert reply_end(text, [END_MARKER], 1) == len(text.split(". ")[0].split("! ")[0]) + 1  # without: the first


class _Pieces:
    """A stand-in tokenizer whose tokens are the given text pieces."""

    def __init__(self, pieces):
        self.pieces = pieces

    def decode(self, ids, skip_special_tokens=True):
        return "".join(self.pieces[i] for i in ids)


def test_streamed_text_never_takes_back_what_it_showed():
    pieces = [" Great", " film", ".", " Dull", "<|", "endoftext|>", " more"]
    reply = ReplyText(_Pieces(pieces), [END_MARKER], max_sentences=0)
    shown = [reply.add([i]) for i in range(len(pieces))]
    assert shown == ["Great", " film", ".", " Dull", "", "", ""]  # "<|" held back until it turned out a marker
    assert reply.ended and reply.text == "Great film. Dull" and reply.finish() == ""

    bounded = ReplyText(_Pieces(pieces), [END_MARKER], max_sentences=1)
    assert "".join(bounded.add([i]) for i in range(4)) == "Great film." and bounded.ended


class _Bytes:
    """A stand-in byte-level tokenizer: a character's bytes may come in different tokens."""

    def __init__(self, pieces):
        self.pieces = pieces

    def decode(self, ids, skip_special_tokens=True):
        return b"".join(self.pieces[i] for i in ids).decode("utf-8", errors="replace")


def test_split_characters_wait_for_their_last_byte():
    reply = ReplyText(_Bytes([b" Caf", b"\xc3", b"\xa9!"]), [], max_sentences=0)
    assert [reply.add([0]), reply.add([1]), reply.add([2])] == ["Caf", "", "\u00e9!"]
    assert reply.finish() == "" and reply.text == "Caf\u00e9!"


@pytest.mark.parametrize("fast", [True, False])
def test_generation_stops_after_the_sentence_bound(fast):
    tokenizer = train_tokenizer(TEXTS, vocab_size=300)
    torch.manual_seed(0)
    model = build_model(tokenizer, TINY).eval()
    script = tokenizer(" A great film. A dull plot! Is it fun? Yes.", add_special_tokens=False)["input_ids"]

    def scripted(input_ids, scores):  # writes the script whatever the random model would
        step = input_ids.shape[1] - prompt_length
        forced = torch.full_like(scores, float("-inf"))
        forced[:, script[step % len(script)]] = 0.0
        return forced

    request = ReviewRequest("positive", "Up")
    gen = ReviewGenerator(model, tokenizer, max_sentences=2, min_words=0, fast=fast, repetition_penalty=1.0,
                          no_repeat_ngram_size=0)
    prompt_length = gen.fit(request, 40).tokens
    assert gen.generate(request, max_new_tokens=40, seed=0, processors=[scripted]) == "A great film. A dull plot!"
    assert gen.stats.new_tokens < len(script)  # stopped there, not at the token limit
    assert "".join(gen.stream(request, max_new_tokens=40, seed=0, processors=[scripted])) == "A great film. A dull plot!"
    gen.min_words = 8  # the two sentences are six words: too short to be a review, so it goes on
    assert gen.generate(request, max_new_tokens=len(script), seed=0, processors=[scripted]) == \
        "A great film. A dull plot! Is it fun? Yes."
    gen.max_sentences, gen.min_words = 0, 0
    assert gen.generate(request, max_new_tokens=len(script), seed=0, processors=[scripted]) == \
        "A great film. A dull plot! Is it fun? Yes."
