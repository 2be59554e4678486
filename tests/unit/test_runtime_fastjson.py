"""kaci_runtime.fastjson: its json.loads gives exactly what the standard module gives.

Property tests (hypothesis) compare results value by value, type by type (int
vs float, -0.0 vs 0.0, NaN), and, when the standard module raises, that the
fast one raises the same exception with the same message.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kaci_runtime import fastjson


def same(a: Any, b: Any) -> bool:
    """Equal values of identical types all the way down (NaN equals NaN, -0.0 is not 0.0)."""
    stack = [(a, b)]  # iterative: documents may be nested deeper than Python's stack
    while stack:
        x, y = stack.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, float):
            if math.isnan(x) or math.isnan(y):
                if not (math.isnan(x) and math.isnan(y)):
                    return False
            elif x != y or math.copysign(1.0, x) != math.copysign(1.0, y):
                return False
        elif isinstance(x, list):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif isinstance(x, dict):
            if list(x) != list(y):
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif x != y:
            return False
    return True


def outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as ex:  # the exception itself is the result being compared
        return "raised", (type(ex), str(ex))


def assert_equivalent(text: Any, **kwargs: Any) -> None:
    expected = outcome(fastjson._stdlib_loads, text, **kwargs)
    actual = outcome(fastjson.loads, text, **kwargs)
    assert expected[0] == actual[0], (text, expected, actual)
    if expected[0] == "ok":
        assert same(expected[1], actual[1]), (text, expected, actual)
    else:
        assert expected[1] == actual[1]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=30,
)

FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # The same examples on every run, so CI cannot fail by chance; raise max_examples to explore.
    derandomize=True,
)


@FUZZ
@given(json_values, st.booleans(), st.sampled_from([None, 0, 2]))
def test_loads_matches_stdlib_on_documents(
    value: Any, ensure_ascii: bool, indent: int | None
) -> None:
    assert_equivalent(json.dumps(value, ensure_ascii=ensure_ascii, indent=indent))


@FUZZ
@given(st.text())
def test_loads_matches_stdlib_on_any_text(text: str) -> None:
    assert_equivalent(text)


JSONISH = st.text(alphabet=list('[]{}",:0123456789.eE+-truefalsnul \t\n\\/ud8bcDFx'), max_size=40)


@FUZZ
@given(JSONISH)
def test_loads_matches_stdlib_on_json_like_text(text: str) -> None:
    assert_equivalent(text)


NUMBER = st.from_regex(r"\A-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,4})?\Z")


@FUZZ
@given(NUMBER)
def test_loads_matches_stdlib_on_numbers(number: str) -> None:
    assert_equivalent(number)
    assert_equivalent(f'[{number}, {{"k": {number}}}]')


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        "[Infinity, -Infinity, NaN]",
        "18446744073709551616",  # 2**64
        "-9223372036854775809",
        "123456789012345678901234567890",
        '"\\ud800"',  # a lone surrogate escape
        '"\\ud83d\\ude00"',  # a pair
        '{"a": 1, "a": 2}',
        "1e400",
        "-0",
        "-0.0",
        "\ufeff[1]",  # a BOM in a str: the stdlib refuses it
        "[1,]",
        " [1] ",
        "[" * 600 + "]" * 600,
        "[" * 100_000 + "]" * 100_000,
        '"\x00"',
        "",
    ],
)
def test_loads_matches_stdlib_on_edge_cases(text: str) -> None:
    assert_equivalent(text)


def test_loads_passes_keyword_arguments_and_other_types_to_the_stdlib() -> None:
    assert_equivalent('{"b": 1, "a": 2}', object_pairs_hook=list)
    assert_equivalent('{"x": 1.5}', parse_float=str)
    assert_equivalent('"\t"', strict=False)
    for raw in (b'{"a": 1}', bytearray(b"[1]"), "[1]".encode("utf-16"), b"\xef\xbb\xbf[1]"):
        assert_equivalent(raw)
    with pytest.raises(TypeError):
        fastjson.loads(memoryview(b"[1]"))  # the stdlib refuses a memoryview; so must we


def test_install_replaces_json_loads_and_uninstall_restores_it() -> None:
    try:
        fastjson.install()
        assert json.loads is fastjson.loads
        assert json.loads('{"data": [[1.5, 2]]}') == {"data": [[1.5, 2]]}
    finally:
        fastjson.uninstall()
    assert json.loads is fastjson._stdlib_loads


def test_fast_json_switch() -> None:
    assert fastjson.fast_json_enabled({})
    assert not fastjson.fast_json_enabled({"KACI_FAST_JSON": "0"})
    assert not fastjson.fast_json_enabled({"KACI_FAST_JSON": "false"})
    assert fastjson.fast_json_enabled({"KACI_FAST_JSON": "1"})


# -- dumps: the same JSON value as json.dumps, or the same refusal --------------------------


@FUZZ
@given(json_values)
def test_dumps_gives_the_value_json_dumps_gives(value: Any) -> None:
    expected = json.loads(json.dumps(value))
    actual = json.loads(fastjson.dumps(value))
    assert same(expected, actual)


class Color(enum.IntEnum):
    RED = 1


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize(
    "value",
    [
        [float("nan"), float("inf"), -float("inf"), None],
        {"a": [1, 2**70]},
        {1: "int key", 2.5: "float key", None: "none key", False: "bool key"},
        (1, 2, 3),
        [Color.RED],
        "\ud800 lone surrogate",
        "ünïcödé",
    ],
)
def test_dumps_edge_cases_match(value: Any) -> None:
    assert same(json.loads(json.dumps(value)), json.loads(fastjson.dumps(value)))


@pytest.mark.parametrize(
    "value",
    [np.zeros(2), datetime.datetime(2020, 1, 1), Point(1), {1, 2}, object()],
)
def test_dumps_refuses_what_json_dumps_refuses(value: Any) -> None:
    with pytest.raises(TypeError):
        json.dumps(value)
    with pytest.raises(TypeError):
        fastjson.dumps(value)


def test_loads_agrees_with_stdlib_around_its_recursion_limit() -> None:
    depth = 1
    while outcome(fastjson._stdlib_loads, "[" * depth + "]" * depth)[0] == "ok":
        depth += 50
    for d in range(max(1, depth - 60), depth + 60, 3):
        assert_equivalent("[" * d + "]" * d)
        assert_equivalent('{"a":' * d + "1" + "}" * d)
