"""Small ONNX graphs built with onnx.helper, and onnxruntime runners, for the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

FLOAT_RTOL, FLOAT_ATOL = 1e-5, 1e-6


def run_ort(model: onnx.ModelProto | str | Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def make_model(nodes, inputs, outputs, inits=(), opset: int = 17, name: str = "g") -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def lif_loop_model(T: int = 4, C: int = 3, th: float = 1.0, tau: float = 2.0, opset: int = 17) -> onnx.ModelProto:
    """Conv-free SpikingJelly-style LIF unrolled by hand, then a Gemm head.

    X [T, 1, C] → per step: h = v + (x - v)/tau; s = (h - th >= 0); v = h (1 - s) → stack.
    """
    nodes = []
    inits = [
        ("zero", np.zeros((1, C), np.float32)),
        ("tau", np.array(tau, np.float32)),
        ("th", np.array(th, np.float32)),
        ("zf", np.array(0.0, np.float32)),
        ("one", np.array(1.0, np.float32)),
        ("ax0", np.array([0], np.int64)),
        ("W", np.random.default_rng(0).normal(size=(C, 5)).astype(np.float32)),
    ]
    v = "zero"
    stacked = []
    for t in range(T):
        inits.append((f"i{t}", np.array(t, np.int64)))
        nodes += [
            helper.make_node("Gather", ["X", f"i{t}"], [f"x{t}"], axis=0),
            helper.make_node("Sub", [f"x{t}", v], [f"d{t}"]),
            helper.make_node("Div", [f"d{t}", "tau"], [f"q{t}"]),
            helper.make_node("Add", [v, f"q{t}"], [f"h{t}"]),
            helper.make_node("Sub", [f"h{t}", "th"], [f"m{t}"]),
            helper.make_node("GreaterOrEqual", [f"m{t}", "zf"], [f"c{t}"]),
            helper.make_node("Cast", [f"c{t}"], [f"s{t}"], to=TensorProto.FLOAT),
            helper.make_node("Sub", ["one", f"s{t}"], [f"r{t}"]),
            helper.make_node("Mul", [f"h{t}", f"r{t}"], [f"v{t}"]),
            helper.make_node("Unsqueeze", [f"s{t}", "ax0"], [f"u{t}"]),
        ]
        v = f"v{t}"
        stacked.append(f"u{t}")
    nodes += [
        helper.make_node("Concat", stacked, ["S"], axis=0),
        helper.make_node("ReduceMean", ["S"], ["M"], axes=[0], keepdims=0)
        if opset < 18
        else helper.make_node("ReduceMean", ["S", "ax0"], ["M"], keepdims=0),
        helper.make_node("MatMul", ["M", "W"], ["Y"]),
    ]
    return make_model(nodes, [("X", [T, 1, C])], [("Y", [1, 5])], inits, opset=opset)
