"""Benchmark: the page's "Build the review index" job, timed from scratch, as the page runs it.

    .venv/bin/python bench/page_build.py [--index /tmp/page-index]

Runs `ui.jobs.Builder` (the page's process-wide build queue) on a fresh index folder: a quick index of the first
reviews, then the full one, in the build thread, while this process's main thread is left at one torch thread as a
Streamlit server's chat would leave it. Prints one JSON object: wall time, each phase's chunks, the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from assistant.data.store import ReviewStore  # noqa: E402
from assistant.logs import setup_logging  # noqa: E402
from assistant.settings import get_settings  # noqa: E402
from ui.jobs import QUICK_LIMIT, Builder  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", type=Path, default=None, help="a new folder for the index (default: a temporary one)")
    args = p.parse_args()
    setup_logging()
    torch.set_num_threads(1)  # the server's own threads, as the page's chat leaves them
    with tempfile.TemporaryDirectory() as tmp:
        index = args.index or Path(tmp) / "index"
        settings = get_settings().model_copy(update={"index_dir": index})
        load_start = os.getloadavg()
        builder, started = Builder(), time.perf_counter()
        builder.start(settings, ["index"], minutes=0)
        while builder.busy():
            time.sleep(1)
        seconds = time.perf_counter() - started
        [job] = builder.snapshot()
        chunks = ReviewStore.open(settings).manifest.counts.get("chunks") if job.state == "done" else None
        print(json.dumps({"state": job.state, "error": job.error, "seconds": round(seconds, 1),
                          "minutes": round(seconds / 60, 2), "quick_limit": QUICK_LIMIT, "chunks": chunks,
                          "load_average_start": load_start, "load_average_end": os.getloadavg()}))
    return 0 if job.state == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
