"""scripts/setup.sh's decisions, with a stand-in for .venv's Python that records each pip call instead of
installing: the Python check, torch's CPU build first on Linux without an NVIDIA GPU (the configured index's, then
the PyTorch CPU index's), the project editable against constraints.txt, and the stamp that makes a second run
instant."""
from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(platform.system() != "Linux", reason="the script's torch choice is Linux's")

FAKE_PYTHON = """#!/bin/bash
echo "$*" >> "$PIP_LOG"
case "$*" in
  "-c import sys; sys.exit(sys.version_info < (3, 11))") exit "${TOO_OLD:-0}";;
  -c*) exit 1;;                                   # torch not installed yet
  *--index-url*) exit 0;;
  *+cpu*) exit "${CPU_MISSING_HERE:-0}";;         # whether the configured index serves the CPU wheel
  *) exit 0;;
esac
"""


@pytest.fixture
def checkout(tmp_path) -> Path:
    for name in ("pyproject.toml", "constraints.txt", "requirements-nodeps.txt", "scripts/setup.sh"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    (tmp_path / "bin").mkdir()
    return tmp_path


def run(checkout: Path, *, gpu: bool = False, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    if gpu:
        smi = checkout / "bin" / "nvidia-smi"
        smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100'\n")
        smi.chmod(0o755)
    log = checkout / "pip.log"
    log.unlink(missing_ok=True)
    done = subprocess.run(["bash", "scripts/setup.sh"], cwd=checkout, capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{checkout / 'bin'}:/usr/bin:/bin", "PIP_LOG": str(log), **env})
    return done, (log.read_text().splitlines() if log.exists() else [])


def _installs(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("-m pip install")]


def test_without_a_gpu_the_cpu_torch_comes_first_then_the_project_against_the_constraints(checkout):
    done, calls = run(checkout)
    assert done.returncode == 0, done.stderr
    torch = (ROOT / "constraints.txt").read_text().split("\ntorch==")[1].split()[0]
    installs = _installs(calls)
    assert installs[0].endswith(f" torch=={torch}+cpu") and "--index-url" not in installs[0]
    assert installs[1].endswith("-c constraints.txt -e .[dev,qdrant,eval]")
    assert installs[2].endswith("--no-deps -r requirements-nodeps.txt") and len(installs) == 3
    again, calls = run(checkout)  # the stamp: nothing to do
    assert again.returncode == 0 and not _installs(calls)


def test_where_the_index_lacks_the_cpu_wheel_the_pytorch_cpu_index_serves_it(checkout):
    done, calls = run(checkout, CPU_MISSING_HERE="1")
    installs = _installs(calls)
    assert done.returncode == 0 and "--index-url https://download.pytorch.org/whl/cpu" in installs[1]
    assert installs[1].endswith("+cpu") and "download.pytorch.org" in done.stdout


def test_with_an_nvidia_gpu_the_index_default_torch_is_left_to_the_resolver(checkout):
    done, calls = run(checkout, gpu=True)
    installs = _installs(calls)
    assert done.returncode == 0 and not any("+cpu" in c for c in installs) and len(installs) == 2


def test_a_python_too_old_is_one_clear_line(checkout):
    done, calls = run(checkout, TOO_OLD="1")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and not _installs(calls)
    assert len(lines) == 1 and "Python 3.11 or newer is needed" in lines[0] and "PYTHON=" in lines[0]
