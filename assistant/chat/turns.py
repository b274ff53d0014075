"""Answering a message that was kept the moment it was sent (pending.py): the same steps for the page and the CLI.

    item = assistant.memory.claim_pending(session_id)      # after memory.add_pending(...)
    answer_pending(assistant, item, on_event=print)        # stored as a turn, or left unanswered with why
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from assistant.chat.pending import LOST_REPLY, Pending
from assistant.chat.replies import Reply
from assistant.model.compute_thread import exiting

log = logging.getLogger(__name__)


def answer_pending(assistant: Any, item: Pending, on_event: Callable[[Any], None] | None = None) -> Any:
    """Write the reply to a claimed message: each token (str) and the finished Reply go to `on_event`; a compare
    pair comes back as {"rag": Reply, "no_rag": Reply}. The message stops being pending once its turn is stored;
    if the reply fails, or is interrupted, it stays, unanswered, with a one-line reason, and the error is raised."""
    options = dict(item.options)
    compare, rag = bool(options.pop("compare", False)), bool(options.pop("rag", True))
    try:
        if compare:
            result: Any = assistant.compare(item.session_id, item.text, owner=item.owner, **options)
        else:
            result = None
            for event in assistant.stream(item.session_id, item.text, owner=item.owner, rag=rag, **options):
                if isinstance(event, Reply):
                    result = event
                if on_event is not None:
                    on_event(event)
    except BaseException as exc:  # KeyboardInterrupt and SystemExit too: the question stays, marked
        reason = str(exc).splitlines()[0] if str(exc) else ""
        # Stopped, not broken: said as for a killed process. A pool shut down by the stop refuses new work with
        # "cannot schedule new futures after shutdown", sometimes before the stop is seen here.
        shutdown = isinstance(exc, RuntimeError) and "after shutdown" in reason
        if exiting() or shutdown or not isinstance(exc, Exception):
            why = LOST_REPLY
        else:
            why = f"the reply failed ({type(exc).__name__}{': ' + reason if reason else ''})"
        assistant.memory.fail_pending(item.id, why[:300])
        raise
    assistant.memory.finish_pending(item.id)
    return result
