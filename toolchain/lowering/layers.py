"""Lowering rules for weight layers and products of activations.

    Conv/Gemm/MatMul(x, W) [+ bias], plan choice c (Q(W) = unit_c · w_int)
                                   → QConv/QLinear(X) with the integer codes,
                                     a = a_x · unit_c, b = bias
    MatMul(x, y) of integer tensors (q·kᵀ, ·v)
                                   → MatMul, a = a_x · a_y (a scale such as 0.125 is
                                     never applied: it is folded into the next threshold)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hqc.ir import Node
from hqc.layers import LayerInfo
from hqc.lowering.affine import Sym, arr, compact, scalar
from hqc.lowering.rules import rule
from hqc.lowering.weights import LayerCodes, packed_bytes, qattrs

if TYPE_CHECKING:
    from hqc.lowering.lowerer import Lowerer


def _weight_input(lw: Lowerer, node: Node, layer: LayerInfo) -> Sym:
    if node.op == "MatMul" and node.inputs[0] == layer.weight:
        raise lw.unsupported(node, "MatMul W·x with the weight on the left is not supported")
    s = lw.sym_of(node, 0)
    if not s.plain:
        raise lw.unsupported(node, "the input of a weight layer must be an integer tensor "
                                   "with one scale and no offset")
    return s


def _layer_record(lw: Lowerer, layer: LayerInfo, lc: LayerCodes, s_in: Sym) -> None:
    if layer.name in lw.layer_recs:
        return
    c = lc.choice
    input_kind = "spikes" if s_in.spikes else "integers"
    lw.layer_recs[layer.name] = {
        "name": layer.name,
        "kind": layer.kind,
        "quantizer": c.name,
        "bits": c.bits,
        "params": int(layer.params),
        "packed_bytes": packed_bytes(layer.params, c.bits),
        "fp32_bytes": 4 * int(layer.params),
        "input": input_kind,
        "input_range": [int(s_in.lo), int(s_in.hi)],
        "arith": {"fp32": "double accumulate of float32 weights (exact, see docs)",
                  "uniform": "integer add" if input_kind == "spikes" else "integer MAC",
                  "pot": "shift and add"}[c.kind],
        "fraction_bits": None,
        **({"fp32_weights_rounded": lc.fp32_rounded} if c.kind == "fp32" else {}),
    }


@rule("Conv")
def conv(lw: Lowerer, node: Node) -> None:
    layer = lw.layer_of(node)
    if layer is None:
        raise lw.unsupported(node, "Conv without a constant weight")
    s = _weight_input(lw, node, layer)
    lc = lw.codes_of(layer, max(abs(s.lo), abs(s.hi)))
    nd = lc.w_int.ndim - 2
    if node.attrs.get("group", 1) != 1:
        raise lw.unsupported(node, "grouped convolution is not supported")
    if node.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise lw.unsupported(node, "auto_pad is not supported")
    attrs = qattrs(layer, lc)
    attrs.update(
        nd=nd,
        strides=list(node.attrs.get("strides", [1] * nd)),
        pads=list(node.attrs.get("pads", [0] * (2 * nd))),
        dilations=list(node.attrs.get("dilations", [1] * nd)),
    )
    out_shape = lw.shape(node.outputs[0])
    t = lw.emit("QConv", [s.t], node.outputs[0], attrs, out_shape)
    rank = len(out_shape)
    shp = [1] * rank
    shp[1] = -1
    a = compact(scalar(s.a) * lc.unit.reshape(shp))
    bias = lw.const(node, 2)
    b = arr(0.0, rank) if bias is None else compact(np.asarray(bias, np.float64).reshape(shp))
    lw.put(node, t, a, b, layer.name)
    _layer_record(lw, layer, lc, s)


def _linear(lw: Lowerer, node: Node, alpha: float = 1.0, bias: np.ndarray | None = None) -> None:
    layer = lw.layer_of(node)
    if layer is None:
        raise lw.unsupported(node, f"{node.op} of two activations with a constant weight expected")
    s = _weight_input(lw, node, layer)
    lc = lw.codes_of(layer, max(abs(s.lo), abs(s.hi)))
    out_shape = lw.shape(node.outputs[0])
    t = lw.emit("QLinear", [s.t], node.outputs[0], qattrs(layer, lc), out_shape)
    rank = len(out_shape)
    a = compact(scalar(s.a) * alpha * arr(lc.unit, rank))
    b = arr(0.0, rank) if bias is None else compact(arr(bias, rank))
    lw.put(node, t, a, b, layer.name)
    _layer_record(lw, layer, lc, s)


@rule("Gemm")
def gemm(lw: Lowerer, node: Node) -> None:
    if node.attrs.get("transA", 0):
        raise lw.unsupported(node, "Gemm with transA=1")
    c = lw.const(node, 2)
    beta = float(node.attrs.get("beta", 1.0))
    bias: Any = None if c is None else np.asarray(c, np.float64) * beta
    _linear(lw, node, float(node.attrs.get("alpha", 1.0)), bias)


@rule("MatMul")
def matmul(lw: Lowerer, node: Node) -> None:
    if lw.layer_of(node) is not None:
        _linear(lw, node)
        return
    x, y = lw.sym_of(node, 0), lw.sym_of(node, 1)
    if not (x.plain and y.plain):
        raise lw.unsupported(node, "MatMul of activations needs integer tensors with one scale and no offset")
    out_shape = lw.shape(node.outputs[0])
    t = lw.emit("MatMul", [x.t, y.t], node.outputs[0], {}, out_shape)
    lw.put(node, t, arr(scalar(x.a) * scalar(y.a), len(out_shape)), arr(0.0, len(out_shape)))
