"""`python -m assistant.evaluate`: fine-tuning or RAG? The 2x2 evaluation (see assistant/evaluation/evaluate.py)."""
import sys

from assistant.evaluation.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
