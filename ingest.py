"""`python ingest.py ...` in a checkout: the ingest command (assistant/ingest.py; installed, `mra ingest`)."""
import sys

from assistant.ingest import main

if __name__ == "__main__":
    sys.exit(main())
