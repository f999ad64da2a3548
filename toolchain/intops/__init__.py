"""The integer dialect `ai.hqc.int`, declared once.

Each op is one `IntOp` class (attributes and checks, interval bounds, numpy semantics,
ONNX form, C kernel) registered in `OPS` by the module that defines it; the numpy
reference (`hqc.intref`), model.int.onnx (`hqc.int_onnx`) and the C kernels
(`hqc.ckernels`) dispatch through `op_of(node)`, so the three cannot drift. To add an op:
write its class in the module of its family (or a new one imported below).

    weights  QConv, QLinear                        neuron  LIF
    arith    Add, Sub, Shl, LinComb, Mul, MatMul, Requant
    tensor   Reshape, Transpose, Slice, Gather, Concat, Pad, Expand
    pool     MaxPool, SumPool, ReduceSum
"""

from __future__ import annotations

from hqc.intops import arith, neuron, pool, tensor, weights  # noqa: F401  (register the ops)
from hqc.intops.base import (
    INT64_SAFE,
    INT_DOMAIN,
    OPS,
    Interval,
    IntOp,
    check_lowered,
    op_of,
    propagate_bounds,
    register,
)

__all__ = ["INT64_SAFE", "INT_DOMAIN", "OPS", "Interval", "IntOp", "check_lowered", "op_of", "propagate_bounds",
           "register"]
