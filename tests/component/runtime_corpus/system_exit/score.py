"""run() calling sys.exit(): kaci answers a JSON 500 (a deliberate difference)."""

import sys


def init():
    pass


def run(raw_data):
    if raw_data == "exit":
        sys.exit(1)
    return {"ok": raw_data}
