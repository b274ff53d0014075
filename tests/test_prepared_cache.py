"""Fine-tuning data prepared once per data key and store: later runs (any output folder) start at once."""
from __future__ import annotations

from types import SimpleNamespace

from langchain_core.documents import Document

from assistant.model.sentiment_probe import BASENAME
from assistant.training import examples as training_data
from assistant.training import grounded
from assistant.training.examples import DataConfig, Split
from assistant.training.finetune import prepare_examples
from tests.test_sentiment_probe import VectorStore


def _store(updated: float) -> tuple[VectorStore, Split]:
    docs = [Document(page_content=f"A {'great' if i % 2 else 'dull'} film, number {i}.",
                     metadata={"doc_id": f"r-{i}", "sentiment": "positive" if i % 2 else "negative",
                               "movie": f"M{i % 7}", "movie_key": f"m{i % 7}"}) for i in range(80)]
    store = VectorStore(docs, {d.metadata["doc_id"]: 4.0 for d in docs})
    store.manifest = SimpleNamespace(embedding_model="m", counts={"chunks": 80}, sources={"f": "h"}, updated=updated)
    return store, Split(train=docs[:70], val=docs[70:])


def test_a_second_run_reuses_examples_and_probe_from_the_shared_cache(tmp_path, monkeypatch):
    built = []
    real = grounded.select_examples
    monkeypatch.setattr(grounded, "select_examples", lambda *a, **k: built.append(1) or real(*a, **k))
    monkeypatch.setattr(training_data, "store_neighbours", lambda store: lambda doc, k: [])
    data, shared = DataConfig(min_label_confidence=0.5), tmp_path / "prepared"
    store, split = _store(updated=1.0)

    first = prepare_examples(store, split, data, 20, tmp_path / "run1" / "examples.jsonl", tmp_path / "out1", shared)
    again = prepare_examples(store, split, data, 20, tmp_path / "run2" / "examples.jsonl", tmp_path / "out2", shared)
    assert built == [1] and again == first  # a --restart or another folder: nothing prepared twice
    for suffix in (".json", ".npz"):
        one, two = (tmp_path / out / f"{BASENAME}{suffix}" for out in ("out1", "out2"))
        assert two.read_bytes() == one.read_bytes()  # the probe came along
    assert (tmp_path / "run2" / "examples.jsonl").exists()  # and a resume of run 2 finds its own copy

    changed, _ = _store(updated=2.0)  # the store was rebuilt: its data may differ
    prepare_examples(changed, split, data, 20, tmp_path / "run3" / "examples.jsonl", tmp_path / "out3", shared)
    other = DataConfig(min_label_confidence=0.5, context_share=0.3)
    prepare_examples(store, split, other, 20, tmp_path / "run4" / "examples.jsonl", tmp_path / "out4", shared)
    assert built == [1, 1, 1] and len(list(shared.glob("examples-*.jsonl"))) == 3
    assert not list(shared.glob(".*"))  # no temporary files left behind


def test_no_examples_is_one_clear_error_and_no_model(tmp_path, monkeypatch, capsys):
    """Nothing to learn from: the command says so and stops, rather than publish an untrained model as the user's."""
    from assistant.settings import Settings
    from assistant.training import finetune as ft

    monkeypatch.setattr("assistant.training.examples.open_split", lambda settings, data: (object(), object()))
    monkeypatch.setattr(ft, "prepare_examples", lambda *args, **kwargs: ({"data": {}}, []))
    settings = Settings(models_dir=tmp_path / "models", index_dir=tmp_path / "index")
    assert ft.run(ft.parse_args(["--max-minutes", "1"]), settings) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no training examples" in err
    assert not (tmp_path / "models" / "tuned").exists() or not any((tmp_path / "models" / "tuned").glob("gen-*"))
