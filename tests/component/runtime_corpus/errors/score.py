"""run() failing in the ways Azure answers with 500 (and one it encodes anyway)."""

import json


class Custom:
    pass


def init():
    pass


def run(raw_data):
    kind = json.loads(raw_data).get("kind")
    if kind == "value_error":
        raise ValueError("bad value")
    if kind == "key_error":
        return {}["missing"]
    if kind == "unencodable":
        return {"obj": Custom()}
    if kind == "set":
        return {1, 2}
    if kind == "bytes":
        return b"raw bytes"
    if kind == "nan":
        return [float("nan"), float("inf"), 1.5]
    if kind == "big_int":
        return [2**70, -(2**65)]
    if kind == "tuple":
        return (1, "two", None, True)
    if kind == "nested":
        return {"a": {"b": [1, {"c": None}]}, "unicode": "h\u00e9llo \u2603"}
    return {"kind": kind}
