#!/usr/bin/env bash
# Set up (first time: a few minutes), then serve the chat UI on http://127.0.0.1:8501.
# The page builds what is missing (the review index, the fine-tuned model) in the background, with progress.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-0} TOKENIZERS_PARALLELISM=false
exec .venv/bin/streamlit run ui/app.py --server.address "${HOST:-127.0.0.1}" --server.port "${PORT:-8501}" \
  --server.headless true --browser.gatherUsageStats false "$@"
