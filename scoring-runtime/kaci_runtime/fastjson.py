"""An exact, faster `json.loads` for unchanged score.py files, and the response encoder.

Azure's score.py files parse the request body with `json.loads(raw_data)`. For a
batch of 64 MNIST rows (540 KB) the standard module spends about 11 ms there,
several times the model's own time. orjson parses the same text several times
faster, but it does not accept everything the standard module accepts and it
does not support json.loads' keyword arguments. `loads` below therefore uses
orjson only where the result is known to be identical and falls back to the
standard module for everything else:

- any keyword argument (cls, object_hook, parse_float, strict, ...): stdlib;
- input that is not a `str` (bytes with a BOM or UTF-16/32, memoryview, ...): stdlib;
- anything orjson rejects (NaN, Infinity, 1e400, lone surrogates, invalid
  JSON, too deep): stdlib, which then returns its own result or raises its
  own exception with its own message;
- text with a run of 19 or more digits: stdlib, because orjson turns integers
  beyond 64 bits into floats (found by the property test);
- text with 900 or more opening brackets: stdlib, because the standard
  module's recursion limit (not orjson's 1024) decides whether it parses.

Equality with the standard module is checked by a hypothesis property test
(tests/unit/test_runtime_fastjson.py). `KACI_FAST_JSON=0` turns it off.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import orjson

_stdlib_loads = json.loads
_stdlib_dumps = json.dumps
_orjson_loads = orjson.loads
_orjson_dumps = orjson.dumps
_OrjsonError = orjson.JSONDecodeError

# Documents nested this deep go to the stdlib: its recursion limit (about 1000
# levels less the caller's stack), not orjson's 1024, decides whether they parse.
_DEPTH_GUARD = 900
# orjson turns integer literals beyond 64 bits into floats; the stdlib keeps them
# ints. Such a literal has at least 19 digits in a row (2**63 has 19).
_BIG_INT_DIGITS = b"0" * 19
# One C pass maps digits to "0" and everything else to " ", then a substring
# search finds any 19-digit run (float literals have at most 17 in a row).
_DIGITS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))


def _brackets_at_least(text: str, limit: int) -> bool:
    """Whether text has `limit` or more "[" and "{" (each find is a memchr)."""
    count = 0
    for bracket in "[{":
        at = text.find(bracket)
        while at >= 0:
            count += 1
            if count >= limit:
                return True
            at = text.find(bracket, at + 1)
    return False


def _needs_stdlib(text: str) -> bool:
    """Whether orjson might give something other than the stdlib for this text."""
    if len(text) < 19:
        return False
    shape = text.encode("utf-8", "surrogatepass").translate(_DIGITS)
    if shape.find(_BIG_INT_DIGITS) >= 0:
        return True
    # Nesting `_DEPTH_GUARD` deep needs that many openers and as many closers.
    return len(text) >= 2 * _DEPTH_GUARD and _brackets_at_least(text, _DEPTH_GUARD)


def loads(s: Any, **kwargs: Any) -> Any:
    """`json.loads` with the same results, faster for plain `str` input without options."""
    if kwargs or type(s) is not str or _needs_stdlib(s):
        return _stdlib_loads(s, **kwargs)
    try:
        return _orjson_loads(s)
    except _OrjsonError:
        return _stdlib_loads(s)


# The docstring and name of the original, so help(json.loads) still reads right.
loads.__doc__ = _stdlib_loads.__doc__
loads.__wrapped__ = _stdlib_loads  # type: ignore[attr-defined]


def fast_json_enabled(environ: dict[str, str] | None = None) -> bool:
    value = (environ if environ is not None else os.environ).get("KACI_FAST_JSON", "1")
    return value.strip().lower() not in {"0", "false", "no", "off"}


def install() -> bool:
    """Replace `json.loads` process-wide (score.py calls it as `json.loads`)."""
    if json.loads is loads:
        return True
    json.loads = loads
    return True


def uninstall() -> None:
    json.loads = _stdlib_loads


# orjson serialises some values the standard module refuses (datetime, dataclass,
# numpy without the option, subclasses) and writes NaN/Infinity as null. Passing
# those through to `default`, which refuses them, sends them to the stdlib path,
# so a run() result becomes exactly the JSON value Azure's json.dumps produced
# (or the same TypeError, turned into Azure's 500).
_DUMPS_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _refuse(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _has_non_finite(obj: Any) -> bool:
    stack = [obj]
    while stack:
        item = stack.pop()
        if type(item) is float:
            if not math.isfinite(item):
                return True
        elif type(item) is list or type(item) is tuple:
            stack.extend(item)
        elif type(item) is dict:
            stack.extend(item.values())
    return False


def dumps(obj: Any) -> bytes:
    """The JSON value `json.dumps(obj)` would give, as UTF-8 bytes (spacing may differ)."""
    try:
        out = _orjson_dumps(obj, default=_refuse, option=_DUMPS_OPTIONS)
    except TypeError:
        return _stdlib_dumps(obj).encode()
    # orjson writes NaN and +-Infinity as null; the stdlib writes NaN/Infinity.
    # Only a `null` in the output can hide one, so only then look.
    if b"null" in out and _has_non_finite(obj):
        return _stdlib_dumps(obj).encode()
    return out
