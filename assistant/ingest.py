"""Ingest Rotten Tomatoes reviews into the local FAISS store: `mra ingest`, `python ingest.py` in a checkout.

    python ingest.py                      # the shared mirror (or MRA_DATA_DIR), incrementally
    python ingest.py FILE_OR_DIR ... [--index DIR] [--limit N] [--rebuild] [--json]
    python ingest.py my_reviews.csv            # any review table: its columns are inferred from header and values
    python ingest.py my.jsonl.gz --dry-run     # what it would read (format, mapping, labels, counts); writes nothing
    python ingest.py my.csv --map text=Review,sentiment=Verdict,movie=Film
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from assistant.logs import printable, setup_logging
from assistant.settings import Settings

log = logging.getLogger("ingest")


def parse_args(argv: list[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description="Read, clean, de-duplicate, chunk and embed reviews into the store.")
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default: the settings' data_dir, MRA_DATA_DIR)")
    parser.add_argument("--index", type=Path, help="store folder (default: the settings' index_dir: MRA_INDEX_DIR, else index/ in MRA_HOME)")
    parser.add_argument("--limit", type=int, help="only N records, the most-reviewed films' first (quick runs)")
    parser.add_argument("--rebuild", action="store_true", help="start a new store instead of adding to the live one")
    parser.add_argument("--map", dest="mapping", help="column mapping for other tables, instead of inferring it: "
                        "text=COL,sentiment=COL,movie=COL,...,labels=words|freshness|binary|scores")
    parser.add_argument("--dry-run", action="store_true",
                        help="show what would be read (format, mapping, labels, counts of the first rows); "
                             "embed and write nothing")
    parser.add_argument("--rows", type=positive_int, default=None,
                        help="rows of each file the dry run reads (default 1000)")
    parser.add_argument("--embedding-model", help="sentence-transformers name or folder (default: packaged MiniLM)")
    parser.add_argument("--precision", choices=["bfloat16", "float32"],
                        help="embedding arithmetic (default bfloat16 where the CPU has it natively)")
    parser.add_argument("--hub", action="store_true", help="download the rotten_tomatoes dataset from the Hugging Face hub")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {}
    if args.index:
        overrides["index_dir"] = args.index
    if args.embedding_model:
        overrides["embedding_model"] = args.embedding_model
    if args.precision:
        overrides["embedding_precision"] = args.precision
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
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        from huggingface_hub import HfApi

        HfApi().dataset_info("cornell-movie-review-data/rotten_tomatoes", timeout=5)
        return True
    except Exception:  # noqa: BLE001 - any failure means we cannot use it
        return False


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    setup_logging(verbose=args.verbose)
    from assistant.data.readers import ColumnMapping, ReaderError

    settings = settings_from(args)
    try:
        mapping = ColumnMapping.parse(args.mapping) if args.mapping else None
        if args.dry_run:  # reads the first rows only; nothing that embeds or writes is even imported
            return dry_run(args.paths or [settings.data_dir], mapping, args.rows, args.json)
    except (ReaderError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    from assistant.data.ingestion import ingest
    from assistant.data.store import StoreError

    try:
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


def dry_run(paths: list[Path], mapping, rows: int | None, as_json: bool) -> int:
    """Print what ingesting ``paths`` would read; 2 when some file would be refused as it stands."""
    from assistant.data.readers import preview_paths
    from assistant.data.readers.preview import DRY_RUN_ROWS

    previews = preview_paths(paths, mapping, rows or DRY_RUN_ROWS)
    if as_json:
        print(json.dumps([p.as_json() for p in previews]))
    else:
        for preview in previews:  # file names, headers and quotes are the file's: shown inert on a terminal
            print(printable("\n".join(preview.lines())))
        print("Dry run: nothing was embedded or written.")
    return 0 if all(p.ok for p in previews) else 2


if __name__ == "__main__":
    sys.exit(main())
