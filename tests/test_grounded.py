"""The training-example filter: targets that use their context are kept and weighted up, invented names dropped."""
from __future__ import annotations

from langchain_core.documents import Document

from assistant.data.details import Rarity
from assistant.training.examples import DataConfig
from assistant.training.grounded import grounding, join_same_critic, select_examples

FACTS = Document(page_content="A 1979 film directed by Ridley Scott, starring Sigourney Weaver. The crew of the "
                              "Nostromo answers a distress call.",
                 metadata={"kind": "movie", "movie": "Alien", "movie_key": "alien", "doc_id": "f-alien",
                           "facts": {"key": "alien"}})
RARITY = Rarity.of(["A fun film with a great cast and a good story."] * 200 + ["The Nostromo drifts."])


def review(doc_id: str, text: str, sentiment: str = "positive", movie: str | None = "Alien",
           critic: str | None = "Ada Lumen") -> Document:
    return Document(page_content=text, metadata={"kind": "review", "doc_id": doc_id, "sentiment": sentiment,
                                                 "movie": movie, "movie_key": "alien" if movie else None,
                                                 "critic": critic})


def facts_first(doc: Document, k: int) -> list[Document]:
    return [FACTS]


def test_grounding_finds_the_context_details_the_target_reuses():
    context = ["About Alien: A 1979 film directed by Ridley Scott, starring Sigourney Weaver, on the Nostromo."]
    used, invented = grounding("Ridley Scott keeps the Nostromo tense.", context, "Alien", RARITY, 0.01)
    assert {"scott", "nostromo"} <= used and invented == []
    used, invented = grounding("A fun film with a great cast.", context, "Alien", RARITY, 0.01)
    assert used == set() and invented == []
    used, invented = grounding("Weaver is great, but Tom Hanks steals it.", context, "Alien", RARITY, 0.01)
    assert "weaver" in used and invented == ["Tom Hanks"]
    # without context only the title grounds a name
    assert grounding("See Alien with Ridley Scott's eye.", [], "Alien", RARITY, 0.01) == (set(), ["Ridley Scott's"])
    assert grounding("Ridley's Alien is great.", [], "Alien", RARITY, 0.01) == (set(), [])  # sentence opener


def test_grounded_targets_are_weighted_up_and_invented_names_dropped():
    docs = [review("a", "Ridley Scott makes the Nostromo feel real."),  # uses the facts: kept twice
            review("b", "Tom Hanks has never been better.", "negative"),  # names someone the facts do not: dropped
            review("c", "A fun ride with a great cast.", "negative")]  # uses nothing of its context
    config = DataConfig(context_share=1.0, grounded_weight=2, plain_context_keep=0.0, seed=1)
    examples, stats = select_examples(docs, facts_first, config, RARITY, n=10)
    assert [e.doc_id for e in examples] == ["a", "a"]
    assert examples[0].request.context and "Ridley Scott" in examples[0].request.context[0]
    assert stats["dropped_names_not_in_context"] == 1 and stats["dropped_context_unused"] == 1
    kept_plain, stats = select_examples(docs, facts_first, DataConfig(context_share=1.0, plain_context_keep=1.0),
                                        RARITY, n=10)
    assert sorted(e.doc_id for e in kept_plain) == ["a", "a", "c"] and stats["context_unused"] == 1


def test_examples_without_context_keep_only_targets_whose_names_are_the_title():
    docs = [review("a", "Great fun, and Alien still scares."), review("b", "Sigourney Weaver is superb here."),
            review("c", "A dull, joyless slog.", "negative")]
    examples, stats = select_examples(docs, None, DataConfig(context_share=0.5), RARITY, n=10)
    assert sorted(e.doc_id for e in examples) == ["a", "c"] and stats["dropped_names_without_context"] == 1
    assert all(not e.request.context for e in examples)
    everything, _ = select_examples(docs, None, DataConfig(names_from_context=False), RARITY, n=10)
    assert len(everything) == 3


def test_select_stops_at_n_balanced():
    docs = [review(f"p{i}", "A fun film.", "positive") for i in range(5)]
    docs += [review(f"n{i}", "A dull film.", "negative") for i in range(5)]
    examples, _ = select_examples(docs, None, DataConfig(), RARITY, n=4)
    assert sorted(e.request.sentiment for e in examples) == ["negative", "negative", "positive", "positive"]


def test_one_critics_quotes_join_and_different_critics_never_do():
    docs = [review("a", "A taut, frightening ride.", critic="Ada Lumen"),
            review("b", "Weaver's Ripley is the best thing in it.", critic="Ada Lumen"),
            review("c", "A taut, frightening ride!", critic="Ada Lumen"),  # another pull of quote a
            review("d", "Scott's sets drip with menace.", critic="Basil Thorne"),
            review("e", "Too slow by half.", "negative", critic="Ada Lumen")]  # another verdict
    joined, count = join_same_critic(docs)
    assert count == 1
    texts = sorted(d.page_content for d in joined)
    assert texts == ["A taut, frightening ride. Weaver's Ripley is the best thing in it.",
                     "Scott's sets drip with menace.", "Too slow by half."]
    long = [review(str(i), "One. Two. Three.", critic="Cy Long") for i in range(2)]
    long[1].page_content = "Four. Five."
    assert join_same_critic(long)[1] == 0  # five sentences would be too many: both stay apart
