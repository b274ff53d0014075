"""Generation: end marker, length limit, seeds, streaming and batching, on tiny offline models."""
from __future__ import annotations

import pytest
import torch

from assistant.model.generation import ReviewGenerator, stop_token_ids
from assistant.model.prompts import END_MARKER, ReviewRequest, count_tokens
from assistant.model.scratch import TINY, build_model, train_tokenizer
from assistant.training.batches import encode_all
from assistant.training.examples import Example
from assistant.training.loop import TrainConfig, train
from tests.tiny import with_chat_template

torch.set_num_threads(1)  # tiny models: threads only add contention on a busy machine

TEXTS = ["A great film, warm and funny.", "A dull film, cold and flat.", "Toy Story is a joy."] * 40
REQUEST = ReviewRequest("positive", "Toy Story", None, ['A critic, fresh: "A joy."'])


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, vocab_size=300)


@pytest.fixture(scope="module")
def chat_tokenizer(tokenizer):
    return with_chat_template(tokenizer)


def forced(tokenizer, token_id: int, seed: int = 0):
    """A tiny GPT-2 whose next token is always `token_id` (final norm zeroed, bias aimed at that row)."""
    torch.manual_seed(seed)
    model = build_model(tokenizer, TINY)
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.zero_()
        model.transformer.ln_f.bias[0] = 1.0
        model.transformer.wte.weight[:, 0] = 0.0
        model.transformer.wte.weight[token_id, 0] = 50.0
    return model


def test_stops_at_end_marker_immediately(tokenizer):
    eos = tokenizer.convert_tokens_to_ids(END_MARKER)
    gen = ReviewGenerator(forced(tokenizer, eos), tokenizer, device="cpu")
    assert gen.generate(REQUEST, seed=0) == ""
    assert gen.stats.new_tokens == 1  # the marker itself, then nothing
    assert "".join(gen.stream(REQUEST, seed=0)) == ""
    assert gen.generate_many([REQUEST] * 3, seed=0) == ["", "", ""]


def test_chat_template_stops_at_its_turn_end(chat_tokenizer):
    im_end = chat_tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in stop_token_ids(chat_tokenizer)
    gen = ReviewGenerator(forced(chat_tokenizer, im_end), chat_tokenizer, device="cpu")
    assert gen.generate(REQUEST, max_new_tokens=10) == "" and gen.stats.new_tokens == 1


def test_respects_the_length_limit(tokenizer):
    word = tokenizer.convert_tokens_to_ids("Ġfilm")  # byte-level BPE: " film" is one token
    gen = ReviewGenerator(forced(tokenizer, word), tokenizer, device="cpu", repetition_penalty=1.0,
                          no_repeat_ngram_size=0)
    text = gen.generate(REQUEST, max_new_tokens=7, seed=0)
    assert gen.stats.new_tokens == 7
    assert text == " ".join(["film"] * 7)
    streamed = "".join(gen.stream(REQUEST, max_new_tokens=7, seed=0))
    assert streamed.strip() == text


def test_trained_model_writes_then_stops(tokenizer):
    torch.manual_seed(0)
    model = build_model(tokenizer, TINY)
    example = Example(REQUEST, "A great film, warm and funny.", "d1", "toy story")
    encoded = encode_all([example] * 4, tokenizer, 200)
    train(model, tokenizer, encoded, TrainConfig(max_minutes=0, max_steps=40, max_epochs=1000, lr=5e-3,
                                                 batch_tokens=1024, warmup_steps=1), scratch=True, progress=False)
    gen = ReviewGenerator(model, tokenizer, device="cpu")
    text = gen.generate(REQUEST, temperature=0, max_new_tokens=40)
    assert text == "A great film, warm and funny."
    assert gen.stats.new_tokens < 40  # stopped at the end marker, not the limit


def test_seeded_sampling_is_repeatable_and_streams_the_same_text(tokenizer):
    torch.manual_seed(0)
    gen = ReviewGenerator(build_model(tokenizer, TINY), tokenizer, device="cpu")
    a = gen.generate(REQUEST, seed=3, max_new_tokens=20)
    assert a == gen.generate(REQUEST, seed=3, max_new_tokens=20)
    assert a != gen.generate(REQUEST, seed=4, max_new_tokens=20)
    assert "".join(gen.stream(REQUEST, seed=3, max_new_tokens=20)).strip() == a


def test_generate_many_keeps_order(tokenizer):
    torch.manual_seed(0)
    gen = ReviewGenerator(build_model(tokenizer, TINY), tokenizer, device="cpu")
    requests = [ReviewRequest("positive", "Up"), REQUEST, ReviewRequest("negative", None, "the ending"),
                ReviewRequest("negative", "A much longer movie title than the others")]
    batched = gen.generate_many(requests, temperature=0, max_new_tokens=8, batch_size=3)
    single = [gen.generate(r, temperature=0, max_new_tokens=8) for r in requests]
    assert batched == single


def test_long_context_is_trimmed_to_the_window(tokenizer):
    torch.manual_seed(0)
    gen = ReviewGenerator(build_model(tokenizer, TINY), tokenizer, device="cpu")  # 256 positions
    huge = ReviewRequest("negative", "Toy Story", None, [f'Critic {i}, rotten: "' + "a dull film " * 40 + '"'
                                                         for i in range(8)])
    fitted = gen.fit(huge, max_new_tokens=50)
    assert count_tokens(fitted.text, tokenizer) == fitted.tokens <= TINY.n_positions - 50
    assert fitted.max_new_tokens == 50 and 0 < len(fitted.request.context) < 8 and fitted.dropped > 0
    assert isinstance(gen.generate(huge, max_new_tokens=50, seed=0), str)


def test_early_close_of_a_stream_stops_generation(tokenizer):
    word = tokenizer.convert_tokens_to_ids("Ġfilm")
    gen = ReviewGenerator(forced(tokenizer, word), tokenizer, device="cpu", repetition_penalty=1.0,
                          no_repeat_ngram_size=0)
    stream = gen.stream(ReviewRequest("positive"), max_new_tokens=200, seed=0)
    next(stream)
    stream.close()  # joins the worker thread; must not hang
    assert gen.stats.prompts == 1


def test_best_of_keeps_the_candidate_the_scorer_prefers(tokenizer):
    torch.manual_seed(0)
    gen = ReviewGenerator(build_model(tokenizer, TINY), tokenizer, device="cpu")
    seen: list[str] = []

    def scorer(texts):
        seen.extend(texts)
        return [len(t) / 1000 for t in texts]  # "more positive" = longer, for the test

    best = gen.best_of(ReviewRequest("positive", "Up"), scorer, n=4, max_new_tokens=12, seed=0)
    assert len(best.texts) == 4 and seen == [t for t in best.texts if t.strip()]
    assert best.text == max(seen, key=len) and best.on_target[best.chosen] == len(best.text) / 1000
    del seen[:]
    worst = gen.best_of(ReviewRequest("negative", "Up"), scorer, n=4, max_new_tokens=12, seed=0)
    assert worst.text == min(seen, key=len)
    assert worst.on_target == [None if not t.strip() else 1 - len(t) / 1000 for t in worst.texts]
    again = gen.best_of(ReviewRequest("negative", "Up"), scorer, n=4, max_new_tokens=12, seed=0)
    assert (again.chosen, again.texts, again.on_target) == (worst.chosen, worst.texts, worst.on_target)


def test_best_of_ranks_empty_drafts_last_and_never_scores_them(tokenizer):
    eos = tokenizer.convert_tokens_to_ids(END_MARKER)
    gen = ReviewGenerator(forced(tokenizer, eos), tokenizer, device="cpu")
    scored: list[list[str]] = []
    empty = gen.best_of(REQUEST, lambda texts: scored.append(texts) or [], n=3, seed=0)
    assert (empty.chosen, empty.text, empty.on_target) == (0, "", [None, None, None]) and scored == []

    word = tokenizer.convert_tokens_to_ids("Ġfilm")
    gen = ReviewGenerator(forced(tokenizer, word), tokenizer, device="cpu", repetition_penalty=1.0,
                          no_repeat_ngram_size=0)
    with pytest.raises(ValueError, match="2 scores for 3 drafts"):
        gen.best_of(REQUEST, lambda texts: [0.5, 0.5], n=3, max_new_tokens=3, seed=0)
    with pytest.raises(ValueError, match="at least one draft"):
        gen.best_of(REQUEST, lambda texts: [], n=0)


def test_best_of_keeps_the_most_critic_like_of_the_drafts_that_read_clearly_as_asked(tokenizer):
    torch.manual_seed(0)
    gen = ReviewGenerator(build_model(tokenizer, TINY), tokenizer, device="cpu")
    texts = gen.best_of(ReviewRequest("positive", "Up"), lambda t: [0.9] * len(t), n=4, max_new_tokens=12,
                        seed=0).texts
    written = [t for t in texts if t.strip()]
    assert len(set(written)) >= 3, "the test needs distinct drafts"
    shortest = min(written, key=len)
    # Every draft reads clearly positive; the critic-likeness scorer prefers the shortest one.
    liked = gen.best_of(ReviewRequest("positive", "Up"), lambda t: [0.9] * len(t), n=4, max_new_tokens=12, seed=0,
                        critic_probability=lambda t: [1.0 / (1 + len(x)) for x in t])
    assert liked.texts == texts and liked.text == shortest
    assert liked.likeness[liked.chosen] == max(s for s in liked.likeness if s is not None)
    # The most critic-like draft reads as the wrong sentiment: it is not kept, whatever its likeness.
    wrong = gen.best_of(ReviewRequest("positive", "Up"), lambda t: [0.1 if x.strip() == shortest else 0.9 for x in t],
                        n=4, max_new_tokens=12, seed=0, critic_probability=lambda t: [1.0 / (1 + len(x)) for x in t])
    assert wrong.text != shortest and wrong.on_target[wrong.chosen] == 0.9
    with pytest.raises(ValueError, match="critic-likeness scorer returned 1 scores"):
        gen.best_of(REQUEST, lambda t: [0.9] * len(t), n=4, max_new_tokens=12, seed=0,
                    critic_probability=lambda t: [0.5])


def test_best_of_reads_which_drafts_name_the_films_people_only_when_the_context_names_someone(tokenizer):
    from assistant.model.rules.names import names_film, request_words

    torch.manual_seed(0)
    gen = ReviewGenerator(build_model(tokenizer, TINY), tokenizer, device="cpu")
    named = ReviewRequest("positive", "Up", None, ['A critic, fresh: "Pete Docter makes it soar."'])
    drafts = gen.best_of(named, lambda t: [0.9] * len(t), n=3, max_new_tokens=8, seed=0)
    assert drafts.named == [names_film(t, request_words(named)) if t.strip() else None for t in drafts.texts]
    assert gen.best_of(ReviewRequest("positive", "Up"), lambda t: [0.9] * len(t), n=3, max_new_tokens=8,
                       seed=0).named == []  # no context: nothing to name
    assert gen.best_of(REQUEST, lambda t: [0.9] * len(t), n=3, max_new_tokens=8, seed=0).named == []  # none named
