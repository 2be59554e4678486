"""A nested StandardPythonParameterType schema (dict of lists of dicts) and its swagger."""

from inference_schema.parameter_types.standard_py_parameter_type import (
    StandardPythonParameterType,
)
from inference_schema.schema_decorators import input_schema, output_schema

ROW = StandardPythonParameterType({"id": 1, "tags": ["a"], "score": 0.5, "ok": True})


def init():
    pass


@input_schema("items", StandardPythonParameterType([ROW]))
@input_schema("meta", StandardPythonParameterType({"source": "test", "version": 2}))
@output_schema(StandardPythonParameterType({"count": 1, "ids": [1]}))
def run(items, meta):
    return {"count": len(items), "ids": [i["id"] for i in items], "meta": meta}
