"""An abandoned reply stops computing at once, and a process holding one still exits promptly (issue 29)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from assistant.settings import Settings
from tests.tiny import tiny_artifacts  # noqa: F401 - a pytest fixture

ROOT = Path(__file__).resolve().parent.parent

# A reply read a few tokens, then abandoned: closed (`stream.close()`), dropped (`del`), and left in a global that is
# collected only as the interpreter exits; and one still being read, slowly, by a thread when the main thread ends. A thread count of its own makes the loop change torch's thread count, so closing it
# has work to hand to the compute thread (restoring the count): the path that hung at exit.
SCRIPT = textwrap.dedent("""
    import sys, threading, time
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from assistant.model import decoding
    from assistant.model.generation import ReviewGenerator
    from assistant.model.prompts import ReviewRequest

    steps = 0
    step = decoding.Decoding._step
    def counted(self):
        global steps
        steps += 1
        return step(self)
    decoding.Decoding._step = counted

    tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
    generator = ReviewGenerator(AutoModelForCausalLM.from_pretrained(sys.argv[1]), tokenizer, max_sentences=0,
                                threads=torch.get_num_threads() + 1)
    prompt = ReviewRequest("positive", "Toy Story", None, [])
    closed = generator.stream(prompt, max_new_tokens=400, temperature=1.0, seed=1)
    next(closed), next(closed)
    closed.close()
    after_close = steps
    time.sleep(0.3)
    stepped_after_close = steps - after_close
    dropped = generator.stream(prompt, max_new_tokens=400, temperature=1.0, seed=2)
    next(dropped)
    del dropped
    after_drop = steps
    time.sleep(0.3)
    print("steps after close", stepped_after_close, "after drop", steps - after_drop, flush=True)
    abandoned = generator.stream(prompt, max_new_tokens=400, temperature=1.0, seed=3)
    next(abandoned), next(abandoned)

    def slow_reader():  # a reply still being read when the main thread ends: it stops instead of running on
        for piece in generator.stream(prompt, max_new_tokens=400, temperature=1.0, seed=4):
            time.sleep(0.05)

    threading.Thread(target=slow_reader).start()  # not a daemon: the interpreter waits for it at exit
    time.sleep(0.3)
    print("abandoned", flush=True)
""")


def test_an_abandoned_reply_stops_and_the_process_exits(tiny_artifacts: Settings, tmp_path: Path) -> None:
    from assistant.model.bases import tuned_dir

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tuned_dir(tiny_artifacts))], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("abandoned"):
                break
        abandoned_at = time.monotonic()
        rc = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    exit_s = time.monotonic() - abandoned_at
    output = "".join(lines)
    assert "steps after close 0 after drop 0" in output, output
    assert rc == 0 and exit_s < 10, f"exited with {rc} {exit_s:.1f} s after the reply was abandoned:\n{output}"
