"""Files made to take the reader down: a gzip bomb in one line, a line or a field of tens of megabytes, JSON nested
100,000 deep, escape sequences in a file's name and header. Each is refused or skipped and counted, in bounded
memory, with one line and never a traceback."""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import ingest
from assistant.data.readers import ReaderError, ReadStats, preview_file, read_file
from assistant.data.readers.base import LINE_TOO_LONG, REST_TOO_BIG, TOO_DEEP
from assistant.data.readers.bounded import MAX_LINE_BYTES

ROOT = Path(__file__).resolve().parent.parent
GOOD_ROWS = "".join(f'fresh,"A fine and witty film, number {i}.",Film {i}\n' for i in range(5))
HEADER = "sentiment,review,movie\n"


def gzip_bomb(path: Path, expanded_mb: int, head: bytes = b"") -> Path:
    """``head`` then one line of ``expanded_mb`` MiB of "a", as gzip members: megabytes that inflate a thousandfold."""
    member = gzip.compress(b"a" * (1 << 20), compresslevel=9)
    with open(path, "wb") as out:
        if head:
            out.write(gzip.compress(head))
        for _ in range(expanded_mb):
            out.write(member)
        out.write(gzip.compress(b"\n"))
    return path


def run_dry_run(path: Path) -> tuple[int, str, int]:
    """(exit code, stderr, peak resident KiB) of `ingest.py PATH --dry-run` in a process of its own.

    The peak is the process's own VmHWM: ru_maxrss would carry over the high-water mark of the pytest process it
    was forked from."""
    probe = ("import re, sys; sys.path.insert(0, '.'); import ingest; code = ingest.main(sys.argv[1:]); "
             "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
             "print('maxrss', hwm, file=sys.stderr); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", probe, str(path), "--dry-run"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    *lines, last = done.stderr.strip().splitlines()
    return done.returncode, "\n".join(lines), int(last.split()[1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory read from Linux's /proc")
def test_a_gzip_bomb_in_one_line_is_refused_with_one_line_in_bounded_memory(tmp_path):
    bomb = gzip_bomb(tmp_path / "bomb.csv.gz", 400)  # ~400 KB on disk, 400 MiB in one line
    assert bomb.stat().st_size < 1 << 20
    code, err, peak_kib = run_dry_run(bomb)
    assert code == 2 and "Traceback" not in err, err
    assert len(err.splitlines()) == 1 and "bomb.csv.gz: not a review table" in err, err
    assert peak_kib < 200 * 1024, f"peak {peak_kib / 1024:.0f} MiB"


def test_a_bomb_after_the_header_ends_the_file_counted_once(tmp_path):
    bomb = gzip_bomb(tmp_path / "late_bomb.csv.gz", 200, (HEADER + GOOD_ROWS).encode())
    stats = ReadStats()
    records = list(read_file(bomb, "csv", stats))
    assert len(records) == 5 and stats.skipped == {LINE_TOO_LONG: 1, REST_TOO_BIG: 1}, stats


def test_a_line_over_the_bound_is_skipped_and_counted_and_the_rest_is_read(tmp_path):
    source = tmp_path / "long_line.csv"
    huge = "x" * (MAX_LINE_BYTES + 10)
    source.write_text(HEADER + GOOD_ROWS + f'fresh,"{huge}",Huge\n' + GOOD_ROWS.replace("Film", "Later"))
    stats = ReadStats()
    records = list(read_file(source, "csv", stats))
    assert len(records) == 10 and stats.rows == 11 and stats.skipped == {LINE_TOO_LONG: 1}, stats
    assert all(len(r.text) < 100 for r in records)


def test_a_header_over_the_bound_is_one_line_error(tmp_path):
    source = tmp_path / "wide.csv"
    source.write_text("a" * (MAX_LINE_BYTES + 1) + "\n" + GOOD_ROWS)
    with pytest.raises(ReaderError, match="first line is over 1 MiB"):
        preview_file(source)


def test_a_50_mb_review_field_is_skipped_not_split_into_thousands_of_chunks(tmp_path):
    source = tmp_path / "field.csv"
    with open(source, "w") as out:
        out.write(HEADER + GOOD_ROWS)
        out.write('rotten,"' + ("Long words. " * ((50 << 20) // 12)) + '",Long\n')
    stats = ReadStats()
    records = list(read_file(source, "csv", stats))
    assert len(records) == 5 and stats.skipped == {LINE_TOO_LONG: 1}, stats


def test_a_long_review_keeps_its_first_chunks_and_the_cut_is_counted(settings, embeddings, tmp_path):
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from assistant.data.ingestion import (
        MAX_CHUNKS_PER_RECORD,
        REVIEW_CUT,
        ingest,
        to_chunks,
    )
    from assistant.data.records import Review

    long_text = " ".join(f"Sentence {i} of a very long full review." for i in range(20_000))  # ~800 KB
    cut: Counter = Counter()
    chunks = to_chunks([Review(long_text, "positive", movie="Long"), Review("Short quote.", "negative", movie="Up")],
                       RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=100), cut)
    assert len(chunks) == MAX_CHUNKS_PER_RECORD + 1 and cut == {REVIEW_CUT: 1}
    assert chunks[0].page_content.startswith("Sentence 0 of") and chunks[-1].page_content == "Short quote."
    source = tmp_path / "long.csv"
    source.write_text(HEADER + GOOD_ROWS + f'fresh,"{long_text}",Long\n')
    summary = ingest([source], settings, embeddings=embeddings, show_bar=False)
    assert summary.embedded == 5 + MAX_CHUNKS_PER_RECORD and summary.cleaned.get(REVIEW_CUT) == 1, summary
    assert f"{REVIEW_CUT}: 1" in summary.lines()[1]


def test_a_field_of_quoted_lines_cannot_grow_past_the_bound(tmp_path):
    source = tmp_path / "quoted.csv"
    many_lines = "\n".join(["Another line of the same review."] * (2 * MAX_LINE_BYTES // 32))
    source.write_text(HEADER + GOOD_ROWS + f'fresh,"{many_lines}",Huge\n')
    stats = ReadStats()
    records = list(read_file(source, "csv", stats))
    assert all(len(r.text) <= MAX_LINE_BYTES for r in records)
    assert stats.skipped, "the oversized field is counted"


def test_json_nested_100000_deep_is_skipped_and_counted(tmp_path, capsys):
    source = tmp_path / "deep.jsonl"
    deep = '{"review": ' + "[" * 100_000 + "]" * 100_000 + ', "sentiment": "fresh", "movie": "Deep"}'
    rows = [f'{{"review": "A fine film, number {i}.", "sentiment": "fresh", "movie": "Film {i}"}}' for i in range(5)]
    source.write_text("\n".join(rows[:2] + [deep] + rows[2:]) + "\n")
    stats = ReadStats()
    records = list(read_file(source, "csv", stats))
    assert len(records) == 5 and stats.skipped == {TOO_DEEP: 1}, stats
    assert ingest.main([str(source), "--dry-run"]) == 0
    assert "nested too deep: 1" in capsys.readouterr().out


def test_dry_run_prints_hostile_names_and_headers_inert(tmp_path, capsys):
    source = tmp_path / "evil\x1b]0;PWNED\x07\x1b[2J.csv"
    source.write_text("review\x1b[2J,sentiment\u202e,movie\n" + "".join(
        f'"A fine and witty film, number {i}.",fresh,Film {i}\n' for i in range(5)))
    ingest.main([str(source), "--dry-run"])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out, out
    assert "\\u001b]0;PWNED" in out, "the name is shown, made visible"


def test_a_bomb_of_blank_space_is_refused_without_reading_it_all(tmp_path):
    blank = tmp_path / "blank.csv.gz"
    blank.write_bytes(gzip.compress(b" " * (1 << 20), compresslevel=9) * 300)  # 300 MiB of spaces from ~300 KB
    with pytest.raises(ReaderError, match="nothing but blank space"):
        preview_file(blank)
