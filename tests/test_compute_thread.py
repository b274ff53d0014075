"""The compute thread: work from any thread runs on one thread, results and errors come back to the caller."""
from __future__ import annotations

import threading

import pytest

from assistant.model.compute_thread import ComputeThread


def test_work_from_many_threads_runs_on_one_and_comes_back():
    compute = ComputeThread("test-compute")
    names, results = [], []

    def job(value):
        names.append(threading.current_thread().name)
        return value * 2

    callers = [threading.Thread(target=lambda v=v: results.append(compute.run(job, v))) for v in range(5)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert sorted(results) == [0, 2, 4, 6, 8]
    assert set(names) == {"test-compute"}


def test_an_error_is_raised_on_the_callers_thread_and_the_thread_keeps_serving():
    compute = ComputeThread("test-compute-errors")

    def broken():
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        compute.run(broken)
    assert compute.run(lambda: threading.current_thread().name) == "test-compute-errors"


def test_work_that_asks_for_more_work_runs_it_in_place():
    compute = ComputeThread("test-compute-nested")
    # a job waiting on a job queued behind itself would never finish; run inline instead
    assert compute.run(lambda: compute.run(lambda: threading.current_thread().name)) == "test-compute-nested"


def test_no_thread_is_started_once_the_process_is_exiting(monkeypatch):
    from assistant.model.compute_thread import ComputeThreadClosed

    compute = ComputeThread("test-compute-exit")
    monkeypatch.setattr("sys.is_finalizing", lambda: True)  # Thread.start() then can wait forever
    with pytest.raises(ComputeThreadClosed):
        compute.run(lambda: 1)
    assert compute._thread is None
