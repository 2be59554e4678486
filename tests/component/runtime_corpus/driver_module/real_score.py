"""The actual score script behind a driver module."""

from inference_schema.parameter_types.standard_py_parameter_type import (
    StandardPythonParameterType,
)
from inference_schema.schema_decorators import input_schema, output_schema

state = {}


def init():
    state["ready"] = True


@input_schema("x", StandardPythonParameterType(1))
@output_schema(StandardPythonParameterType({"x": 2}))
def run(x):
    return {"x": x * 2, "ready": state.get("ready", False)}
