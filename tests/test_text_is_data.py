"""Text is data everywhere: control and bidi characters go at ingest (and are counted), whatever reaches a
terminal is printable, a Markdown export loads nothing, and an out-of-range seed is a usage error."""
from __future__ import annotations

import io
import json
import logging
import re

import pytest

from assistant.chat.export import render_markdown
from assistant.cli import main as cli_main
from assistant.data.ingestion import ingest
from assistant.data.store import ReviewStore
from assistant.data.text import CONTROLS_REMOVED, clean_text
from assistant.logs import PrintableFormatter, printable
from tests.tiny import store_exchange, tiny_artifacts, tiny_chat, tiny_loaded  # noqa: F401 - fixtures

OSC_TITLE = "\x1b]0;PWNED\x07"
HOSTILE = [
    f"A thrilling ride{OSC_TITLE} from start to finish.",  # retitles the terminal window
    "Dull and\x1b[2J\x1b[H lifeless, a chore.",  # clears the screen
    "Fresh\x08\x08\x08\x08\x08Rotten: the best film of the year.",  # backspaces over what was printed
    "Warm and witty \u202eecnetnes desrever\u202c throughout.",  # bidi override: shows reversed
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_cleaning_removes_control_and_bidi_characters(raw):
    cleaned = clean_text(raw)
    assert cleaned.isprintable() and "PWNED" not in cleaned
    assert clean_text("caf\u00e9, na\u00efve \u2014 \u0645\u0631\u062d\u0628\u0627") == \
        "caf\u00e9, na\u00efve \u2014 \u0645\u0631\u062d\u0628\u0627", "printable text stays, right-to-left too"


ESCAPED_BIDI = [
    "Warm &#x202E;txet nedih&#x202C; throughout.",  # a numeric entity of RIGHT-TO-LEFT OVERRIDE
    "Warm &#8238;txet nedih throughout.",  # the same, decimal
    "Warm \u00e2\u20ac\u00aetxet nedih throughout.",  # its UTF-8 bytes read as cp1252 (mojibake ftfy repairs)
    "Retitled &#x1b;]0;PWNED&#x07; and &#x2066;isolated&#x2069;.",  # an escape sequence and isolates, escaped
]


@pytest.mark.parametrize("raw", ESCAPED_BIDI)
def test_controls_that_only_appear_after_unescaping_are_removed_too(raw):
    cleaned = clean_text(raw)
    assert cleaned.isprintable(), repr(cleaned)
    assert "txet nedih" in cleaned or "isolated" in cleaned, "the words stay, only the controls go"


def test_an_escaped_bidi_control_is_counted_once_as_cleaned():
    from assistant.data.text import counting_cleanups

    with counting_cleanups() as counts:
        clean_text("A &#x202E;txet nedih")
        clean_text("B \u202e &#x202E; both kinds")
        clean_text("C plain")
        clean_text("D\nnew line &#x202E; then an escaped one")
    assert counts == {CONTROLS_REMOVED: 3}


def test_ingest_stores_clean_text_and_counts_the_step(settings, embeddings, tmp_path):
    source = tmp_path / "hostile.csv"
    source.write_text("Freshness,Review\n" + "".join(f'{2 if i % 2 == 0 else 0},"{t}"\n' for i, t in
                                                      enumerate(HOSTILE)) + '2,"A plain, honest review."\n')
    summary = ingest([source], settings, embeddings=embeddings, show_bar=False)
    assert summary.kept == 5 and summary.cleaned == {CONTROLS_REMOVED: 4}
    assert "cleaned: control or bidi characters removed: 4" in summary.lines()[1]
    store = ReviewStore.open(settings, embeddings)
    assert all(d.page_content.isprintable() for d in store.iter_documents(kind=None))


def test_a_review_with_a_terminal_escape_prints_without_it(tiny_chat):
    """Stored text predating the cleaning (or a message a user typed) still reaches the terminal inert."""
    store_exchange(tiny_chat, "hostile", f"Review {OSC_TITLE}", f"Reply {OSC_TITLE}\r\x1b[2J",
                   {"sources": [{"critic": "Ada", "text": f"Quote {OSC_TITLE}"}], "notes": [OSC_TITLE]})
    for argv in (["sessions", "show", "hostile"], ["sessions", "list"], ["sessions", "export", "hostile",
                                                                         "--format", "json"]):
        out = io.StringIO()
        assert cli_main(argv, out=out, assistant=tiny_chat, settings=tiny_chat.settings) == 0
        shown = out.getvalue()
        assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown, argv
    assert "Reply \\u001b]0;PWNED\\u0007" in printable(f"Reply {OSC_TITLE}")
    exported = json.loads(shown)  # printable JSON reads back exactly
    assert exported["messages"][1]["content"] == f"Reply {OSC_TITLE}\r\x1b[2J"


def test_log_lines_are_printable():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "file %s", (f"evil{OSC_TITLE}.csv",), None)
    line = PrintableFormatter("%(message)s").format(record)
    assert line == "file evil\\u001b]0;PWNED\\u0007.csv"


def test_markdown_export_escapes_html_and_drops_remote_images(tiny_chat):
    store_exchange(tiny_chat, "md", "<script>alert(1)</script> ![pixel](http://evil.example/p.png?who=me)",
                   "A <img src=x onerror=alert(1)> review ![](https://evil.example/t.gif) [x][1]\n\n"
                   "![ref][1]\n\n[1]: http://evil.example/r.png",
                   {"sources": [{"critic": "<b>Ada</b>", "text": "![q](http://evil.example/q.png)"}],
                    "notes": ["<iframe src=http://evil.example>"]})
    memory = tiny_chat.memory
    md = render_markdown(memory.get("md", "cli"), memory.messages("md", "cli"))
    assert "<script>" not in md and "<img" not in md and "<b>" not in md and "<iframe" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md, "shown as typed"
    assert "](http" not in md and "![" not in md, "no image syntax survives"
    assert "[image removed: pixel]" in md and "[image removed]" in md


@pytest.mark.parametrize("seed", ["1e23", "99999999999999999999999", "-1", "4294967296", "x"])
def test_an_out_of_range_seed_is_a_one_line_usage_error(seed, capsys):
    from assistant.cli import parse_args as chat_args
    from assistant.evaluation.evaluate import parse_args as evaluation_args
    from assistant.training.finetune import parse_args as finetune_args

    for parse, argv in ((chat_args, ["ask", "hi", "--seed", seed]), (finetune_args, ["--seed", seed]),
                        (evaluation_args, ["--seed", seed])):
        with pytest.raises(SystemExit) as exited:
            parse(argv)
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert exited.value.code == 2 and "seed must be" in error, error
    assert chat_args(["ask", "hi", "--seed", "4294967295"]).seed == 4294967295


# The patterns GFM renderers (remark-gfm, as Streamlit's st.markdown uses it) find bare links with in the text left
# after Markdown escapes are resolved (mdast-util-gfm-autolink-literal): backslash escapes alone do not stop them.
GFM_URL = re.compile(r"(https?://|www(?=\.))([-.\w]+)", re.I)
GFM_EMAIL = re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)")
LINKY = "Read it at https://evil.example/x, www.evil.example or write to me@evil.example [go](javascript:alert(1))"


def _as_rendered(markdown: str) -> str:
    """The text a renderer holds once Markdown escapes are resolved."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def test_bare_urls_on_the_page_are_no_links_yet_read_as_typed():
    from ui.markup import md_escape

    shown = _as_rendered(md_escape(LINKY))
    assert not GFM_URL.search(shown) and not GFM_EMAIL.search(shown), shown
    assert shown.replace("\u2060", "") == LINKY


def test_markdown_export_has_no_live_links():
    from markdown_it import MarkdownIt

    renderer = MarkdownIt("commonmark")
    renderer.validateLink = lambda url: True  # as a permissive viewer: javascript: allowed
    for text in (LINKY, "[x][1]\n\n[1]: javascript:alert(1)", "\\[x](javascript:alert(1))", "<javascript:alert(1)>"):
        md = inert_text(text)
        assert "<a " not in renderer.render(md), md
        assert not GFM_URL.search(_as_rendered(md)) and not GFM_EMAIL.search(_as_rendered(md)), md


def inert_text(text: str) -> str:
    from assistant.chat.export import inert

    return inert(text)
