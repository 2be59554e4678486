"""An undecorated run(raw_data): the body (or the GET query as JSON) as a string."""

import json


def init():
    global calls
    calls = 0


def run(raw_data):
    global calls
    calls += 1
    if raw_data == "raise":
        raise ValueError("boom from run()")
    if raw_data == "none":
        return None
    if raw_data == "text":
        return "just a string"
    try:
        parsed = json.loads(raw_data)
    except ValueError:
        return {"raw": raw_data, "type": type(raw_data).__name__}
    return {"parsed": parsed, "type": type(raw_data).__name__}
