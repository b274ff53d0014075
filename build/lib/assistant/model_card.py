"""`python -m assistant.model_card`: (re-)evaluate the saved tuned model and rewrite its card."""
import sys

from assistant.evaluation.model_card import main

if __name__ == "__main__":
    sys.exit(main())
