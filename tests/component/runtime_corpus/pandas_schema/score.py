"""@input_schema with PandasParameterType: run() gets a DataFrame."""

import pandas as pd
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
from inference_schema.parameter_types.standard_py_parameter_type import (
    StandardPythonParameterType,
)
from inference_schema.schema_decorators import input_schema, output_schema

SAMPLE = pd.DataFrame({"age": [31, 45], "income": [52000.5, 61000.0], "city": ["Oslo", "Lima"]})


def init():
    pass


@input_schema("data", PandasParameterType(SAMPLE))
@output_schema(StandardPythonParameterType({"rows": 2, "columns": ["age"]}))
def run(data):
    return {
        "type": type(data).__name__,
        "rows": len(data),
        "columns": list(data.columns),
        "mean_age": float(data["age"].mean()),
    }
