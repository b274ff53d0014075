"""Movie-review chat in the browser: `streamlit run ui/app.py`.

Ask for a positive or negative review; switch RAG and the model (base / fine-tuned) to see what
each changes, or compare both ways side by side. Works with whatever is built so far and offers
to build the rest.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run ui/app.py` puts only ui/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from assistant.chat.pending import THIS_PROCESS  # noqa: E402
from assistant.logs import setup_logging  # noqa: E402
from ui.about import about_page  # noqa: E402
from ui.access import refuse_remote_clients  # noqa: E402
from ui.add_reviews import add_reviews_page  # noqa: E402
from ui.build import render_rebuild, render_setup, with_model_choice  # noqa: E402
from ui.chat_view import follow, options_for, render_history  # noqa: E402
from ui.chats import ensure_session, owner_id, render_chats, turns_from_messages  # noqa: E402
from ui.markup import md_escape  # noqa: E402
from ui.reply_worker import REPLY_WAIT_S, reply_worker  # noqa: E402
from ui.runtime import current_settings, exit_promptly, load_assistant, probe  # noqa: E402
from ui.sidebar import render_controls, render_quick_prompts, render_status  # noqa: E402

log = logging.getLogger("ui")

PLACEHOLDER = "Ask for a review, e.g. a negative review of Gigli"
MAX_MESSAGE_CHARS = 2000


def _base_label(status: dict | None) -> str:
    base = ((status or {}).get("models") or {}).get("base") or {}
    return str(base.get("name") or "base model").rstrip("/").rsplit("/", 1)[-1]


def chat_page() -> None:
    settings = with_model_choice(current_settings())
    artifacts = probe(settings)
    st.title("Movie review assistant")
    st.caption("Ask for a positive or negative review of a movie. Switch RAG and the model in the sidebar "
               "to see what retrieval and fine-tuning each change.")
    controls = render_controls(artifacts, settings.top_k, settings.sampling)
    quick = render_quick_prompts()
    chats_box = st.sidebar.container()
    try:
        with st.spinner("Loading the model and the review index (once per server start)…", show_time=True):
            assistant = load_assistant(settings, artifacts)
        status = assistant.status()
    except Exception as exc:  # one readable line and the way out, not a traceback
        log.exception("loading the assistant failed")
        st.error(f"The assistant could not start: {md_escape(str(exc))}", icon=":material/error:")
        render_setup(settings, artifacts, "base model")
        return
    render_rebuild(settings, artifacts, render_status(status))
    render_setup(settings, artifacts, _base_label(status))

    owner = owner_id()  # this browser's: it sees, continues and changes only its own chats
    session_id = ensure_session(owner, assistant.memory)
    worker = reply_worker()
    prompt = st.chat_input(PLACEHOLDER, key="chat_input", max_chars=MAX_MESSAGE_CHARS) or quick
    if prompt:  # kept at once; the reply is written in the background and survives this run (reply_worker.py)
        try:
            assistant.memory.add_pending(session_id, owner, prompt, options_for(controls))
        except Exception as exc:  # e.g. a chat database that cannot be written: say so, keep the page up
            log.exception("keeping the message failed")
            st.error(f"Your message could not be saved: {md_escape(str(exc))}", icon=":material/error:")
    render_chats(assistant, chats_box, owner)  # before the reply is followed, so the sidebar works meanwhile
    messages = assistant.memory.messages(session_id, owner)
    mine = [p for p in assistant.memory.pending(session_id, owner) if p.writer == THIS_PROCESS]
    if any(p.state == "queued" for p in mine):
        worker.submit(assistant, session_id)

    def ask_again(pending_id: int) -> None:
        if assistant.memory.retry_pending(pending_id, owner):
            worker.submit(assistant, session_id)
        st.rerun()

    slot = render_history(turns_from_messages(messages), on_retry=ask_again)

    def still_pending(pending_id: int) -> bool:
        return any(p.id == pending_id for p in assistant.memory.pending(session_id, owner))

    if follow(worker, mine, slot, max(60.0, REPLY_WAIT_S * 2), still_pending):
        st.rerun()  # its turn is stored: show it whole, and follow the next message waiting


def main() -> None:
    setup_logging()  # once per process: basicConfig leaves an existing configuration alone
    compare = bool(st.session_state.get("compare"))
    st.set_page_config(page_title="Movie review assistant", page_icon=":material/movie:",
                       layout="wide" if compare else "centered")
    exit_promptly()  # once per process: a stopped server ends within seconds
    refuse_remote_clients(current_settings().host)  # before anything a visitor could read or run
    page = st.navigation([
        st.Page(chat_page, title="Chat", icon=":material/chat:", default=True),
        st.Page(add_reviews_page, title="Add reviews", icon=":material/upload_file:", url_path="add-reviews"),
        st.Page(about_page, title="About the model", icon=":material/info:", url_path="about"),
    ])
    page.run()


main()
