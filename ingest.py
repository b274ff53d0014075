"""Ingest Rotten Tomatoes reviews into the local FAISS store.

    python ingest.py                      # the shared mirror (or MRA_DATA_DIR), incrementally
    python ingest.py FILE_OR_DIR ... [--index DIR] [--limit N] [--rebuild] [--json]
    python ingest.py my.csv --map text=Review,sentiment=Verdict,movie=Film
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from assistant.logs import setup_logging
from assistant.settings import Settings

log = logging.getLogger("ingest")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Read, clean, de-duplicate, chunk and embed reviews into the store.")
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default: the shared data mirror)")
    parser.add_argument("--index", type=Path, help="store folder (default: var/index or MRA_INDEX_DIR)")
    parser.add_argument("--limit", type=int, help="stop after N unique records (quick runs)")
    parser.add_argument("--rebuild", action="store_true", help="start a new store instead of adding to the live one")
    parser.add_argument("--map", dest="mapping", help="column mapping for other CSVs: text=COL,sentiment=COL,movie=COL,...")
    parser.add_argument("--embedding-model", help="sentence-transformers name or folder (default: packaged MiniLM)")
    parser.add_argument("--backend", choices=["torch", "onnx", "openvino"], help="embedding backend")
    parser.add_argument("--hub", action="store_true", help="download the rotten_tomatoes dataset from the Hugging Face hub")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {}
    if args.index:
        overrides["index_dir"] = args.index
    if args.embedding_model:
        overrides["embedding_model"] = args.embedding_model
    if args.backend:
        overrides["embedding_backend"] = args.backend
    return Settings(**overrides)


def default_sources(settings: Settings, hub: bool) -> tuple[list[Path], bool]:
    """(paths, use_hub): the shared mirror when present, else the hub dataset when reachable, else a clear error."""
    from assistant.data.readers import ReaderError

    if hub or settings.data_dir.is_dir():
        return ([] if hub else [settings.data_dir]), hub
    if hub_reachable():
        log.info("No data at %s: using the rotten_tomatoes dataset from the Hugging Face hub", settings.data_dir)
        return [], True
    raise ReaderError(
        settings.data_dir,
        "no review data here and the Hugging Face hub is unreachable; "
        "pass files or folders (python ingest.py PATH...) or set MRA_DATA_DIR",
    )


def hub_reachable() -> bool:
    import os

    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        from huggingface_hub import HfApi

        HfApi().dataset_info("cornell-movie-review-data/rotten_tomatoes", timeout=5)
        return True
    except Exception:  # noqa: BLE001 - any failure means we cannot use it
        return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(verbose=args.verbose)
    from assistant.data.ingestion import ingest
    from assistant.data.readers import ColumnMapping, ReaderError
    from assistant.data.store import StoreError

    settings = settings_from(args)
    try:
        mapping = ColumnMapping.parse(args.mapping) if args.mapping else None
        paths, hub = (args.paths, args.hub) if args.paths else default_sources(settings, args.hub)
        summary = ingest(paths, settings, limit=args.limit, rebuild=args.rebuild, mapping=mapping, hub=hub)
    except (ReaderError, StoreError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        log.error("Interrupted: nothing was changed, the previous store is whole.")
        return 130
    if args.json:
        print(json.dumps(summary.as_json()))
    else:
        for line in summary.lines():
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
