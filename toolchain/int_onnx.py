"""model.int.onnx: the lowered IR as standard ONNX (opset 17) that onnxruntime runs.

Each op's ONNX form is declared with the op in `hqc.intops` (its `onnx` method); this
module assembles the model. Every tensor is int64 (fp32 layers are float islands marked
`hqc:fp32`). ONNX BitShift is defined for unsigned types only, so power-of-two weights
appear as the integers ±2^j in an int64 MatMul, and the LIF's shifts as Mul / exact Div by
powers of two: the same integers the C kernels produce with shifts.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import onnx
from onnx import helper

from hqc.intops import op_of
from hqc.intops.onnxgen import FP32_MARK, I64, OPSET, OnnxBuilder
from hqc.ir import Graph

log = logging.getLogger(__name__)

__all__ = ["FP32_MARK", "OPSET", "run_ort", "session", "to_int_onnx"]


def to_int_onnx(g: Graph) -> onnx.ModelProto:
    """Lowered IR (domain ai.hqc.int) → a standard ONNX model (opset 17, int64 in and out).

    Pre: `g` came from lower-int. Post: `onnx.checker` passes; onnxruntime's integer
    outputs equal `hqc.intref.run` on the same inputs.
    """
    b = OnnxBuilder()
    for node in g.nodes():
        op_of(node).onnx(b, g, node)

    def vi(t: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(t, I64, list(g.shape(t)))

    graph = helper.make_graph(b.nodes, g.name or "hqc_int", [vi(t) for t in g.inputs],
                              [vi(t) for t in g.outputs], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hqc")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def session(model: onnx.ModelProto | str) -> Any:
    """An onnxruntime CPU session (single-threaded, quiet) for model.int.onnx."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def run_ort(sess: Any, x: np.ndarray) -> np.ndarray:
    """Run model.int.onnx on stacked model inputs (G, *input shape) → (G, *output shape)."""
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: np.ascontiguousarray(xi, dtype=np.int64)})[0] for xi in np.asarray(x)]
    return np.stack(outs)
