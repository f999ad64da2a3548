"""Lowering rules for pooling and reductions.

    MaxPool (a > 0 per channel)              → MaxPool (padding never wins)
    ReduceMean / ReduceSum / GlobalAveragePool over n elements
                                             → ReduceSum, a → a / n (mean)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hqc.intops.base import prod
from hqc.ir import Node
from hqc.lowering.rules import rule

if TYPE_CHECKING:
    from hqc.lowering.lowerer import Lowerer


@rule("MaxPool")
def maxpool(lw: Lowerer, node: Node) -> None:
    s = lw.sym_of(node, 0)
    if len(node.outputs) > 1 and any(node.outputs[1:]):
        raise lw.unsupported(node, "MaxPool with an indices output")
    if np.any(s.a <= 0) or any(d != 1 for d in s.a.shape[2:]) or any(d != 1 for d in s.b.shape[2:]):
        raise lw.unsupported(node, "max-pool of a tensor whose scale is not positive per channel")
    if node.attrs.get("ceil_mode", 0) or any(d != 1 for d in node.attrs.get("dilations", [1])):
        raise lw.unsupported(node, "ceil_mode and dilations are not supported")
    if node.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise lw.unsupported(node, "auto_pad is not supported")
    k = list(node.attrs["kernel_shape"])
    nd = len(k)
    attrs = {
        "kernel_shape": k,
        "strides": list(node.attrs.get("strides", [1] * nd)),
        "pads": list(node.attrs.get("pads", [0] * (2 * nd))),
    }
    if any(p >= kk for p, kk in zip(attrs["pads"], k + k, strict=True)):
        raise lw.unsupported(node, "padding as large as the window")
    out_shape = lw.shape(node.outputs[0])
    t = lw.emit("MaxPool", [s.t], node.outputs[0], attrs, out_shape)
    lw.put(node, t, s.a, s.b)


def _reduce(lw: Lowerer, node: Node, mean: bool, axes: list[int] | None = None) -> None:
    s = lw.sym_of(node, 0)
    rank = len(s.shape)
    if axes is None:
        if len(node.inputs) > 1 and node.inputs[1]:
            axes = [int(v) for v in np.asarray(lw.const(node, 1)).reshape(-1)]
        else:
            axes = list(node.attrs.get("axes", []))
    if not axes:
        axes = list(range(rank))
    axes = sorted({a % rank for a in axes})
    keep = bool(node.attrs.get("keepdims", 1)) if node.op != "GlobalAveragePool" else True
    if any(s.a.shape[a] != 1 or s.b.shape[a] != 1 for a in axes):
        raise lw.unsupported(node, "reduction over an axis along which the scale varies")
    n = prod(s.shape[a] for a in axes)
    out_shape = lw.shape(node.outputs[0])
    a = s.a / n if mean else s.a
    b = s.b if mean else s.b * n
    if not keep:
        a = a.reshape([d for i, d in enumerate(a.shape) if i not in axes])
        b = b.reshape([d for i, d in enumerate(b.shape) if i not in axes])
    t = lw.emit("ReduceSum", [s.t], node.outputs[0], {"axes": axes, "keepdims": int(keep)}, out_shape)
    lw.put(node, t, a, b)


@rule("ReduceMean")
def reduce_mean(lw: Lowerer, node: Node) -> None:
    _reduce(lw, node, True)


@rule("ReduceSum")
def reduce_sum(lw: Lowerer, node: Node) -> None:
    _reduce(lw, node, False)


@rule("GlobalAveragePool")
def global_average_pool(lw: Lowerer, node: Node) -> None:
    _reduce(lw, node, True, list(range(2, len(lw.sym_of(node, 0).shape))))
