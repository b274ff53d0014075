"""`python -m assistant ...`: the `mra` command (see assistant.commands)."""
import sys

from assistant.commands import main

if __name__ == "__main__":
    sys.exit(main())
