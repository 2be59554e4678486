"""ONNX graphs for the no-code tests, made with onnx's helper API (no converter needed).

`logistic_regression_onnx` writes a fitted scikit-learn LogisticRegression as the
graph its predict() computes: argmax(X·Wᵀ + b) → classes. Its predictions are the
model's own, so a test can hold the ONNX service's answers to the pickle's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# An opset every ONNX Runtime of the last years reads (ArgMax, Gather, Gemm).
OPSET = 13


def logistic_regression_onnx(model: Any, path: Path, input_name: str = "float_input") -> Path:
    """The classifier as an ONNX file: a float [N, features] input, two outputs
    (`label`, int64 [N], and `scores`, float [N, classes])."""
    weights = np.asarray(model.coef_, dtype=np.float32)
    bias = np.asarray(model.intercept_, dtype=np.float32)
    classes = np.asarray(model.classes_).astype(np.int64)
    features = weights.shape[1]
    graph = helper.make_graph(
        nodes=[
            helper.make_node("Gemm", ["X", "W", "B"], ["scores"], transB=1),
            helper.make_node("ArgMax", ["scores"], ["index"], axis=1, keepdims=0),
            helper.make_node("Gather", ["classes", "index"], ["label"], axis=0),
        ],
        name="logistic_regression",
        inputs=[helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [None, features])],
        outputs=[
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, len(classes)]),
        ],
        initializer=[
            numpy_helper.from_array(weights, "W"),
            numpy_helper.from_array(bias, "B"),
            numpy_helper.from_array(classes, "classes"),
        ],
    )
    # The graph's input is named by the caller; Gemm reads "X", so rename through Identity.
    graph.node.insert(0, helper.make_node("Identity", [input_name], ["X"]))
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = 8  # readable by ONNX Runtime 1.10 and later
    onnx.checker.check_model(proto)
    path.write_bytes(proto.SerializeToString())
    return path
