"""`python -m assistant.api [--host H] [--port P]`: the OpenAI-compatible API (docs/api.md)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from assistant.argtypes import bounded
from assistant.logs import setup_logging

port_number = bounded("port", int, 1, 65535, "a whole number")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant.api", description=__doc__)
    parser.add_argument("--host", help="address to listen on (default: MRA_HOST, loopback)")
    parser.add_argument("--port", type=port_number, help="port (default: MRA_API_PORT, 8000)")
    args = parser.parse_args(argv)
    setup_logging()
    from assistant.api.server import serve
    from assistant.chat.assistant import AssistantError

    try:
        serve(args.host, args.port)
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
