"""@input_schema with NumpyParameterType: run() gets a numpy array."""

import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


@input_schema("data", NumpyParameterType(np.array([[1.5, 2.5], [3.5, 4.5]])))
@output_schema(NumpyParameterType(np.array([4.0, 8.0])))
def run(data):
    return {
        "type": type(data).__name__,
        "shape": list(data.shape),
        "sums": data.sum(axis=1).tolist(),
    }
