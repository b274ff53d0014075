#!/usr/bin/env bash
# Set up (first time: a few minutes), then serve the chat UI on http://127.0.0.1:8501.
# The page builds what is missing (the review index, the fine-tuned model) in the background, with progress.
# Address and port come from the settings: MRA_HOST (default 127.0.0.1, this machine only) and MRA_PORT.
# Serving beyond loopback has no authentication: read SECURITY.md first. Extra arguments go to `streamlit run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-0} TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m ui "$@"
