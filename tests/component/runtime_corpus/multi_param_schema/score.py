"""Several @input_schema parameters, defaults, and request_headers beside them."""

from inference_schema.parameter_types.standard_py_parameter_type import (
    StandardPythonParameterType,
)
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


@input_schema("a", StandardPythonParameterType(1))
@input_schema("b", StandardPythonParameterType("x"))
@input_schema("flags", StandardPythonParameterType({"upper": True}))
@output_schema(StandardPythonParameterType({"a": 1, "b": "x"}))
def run(a, b="default-b", flags=None, request_headers=None):
    text = b.upper() if flags and flags.get("upper") else b
    return {
        "a": a * 2,
        "b": text,
        "flags": flags,
        "custom": (request_headers or {}).get("X-Custom"),
    }
