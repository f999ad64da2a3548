"""Lowering rules for weight layers and products of activations.

    Conv/Gemm/MatMul(x, W) [+ bias], plan choice c (Q(W) = unit_c · w_int)
                                   → QConv/QLinear(X) with the integer codes,
                                     a = a_x · unit_c, b = bias
    Conv with group G > 1 (depthwise: G = C)
                                   → QConv group=G (codes per output channel of the
                                     (O, C/G, k…) weight, as hqc.quant)
    MatMul(W, x), W constant (token mixing W · x, x (..., K, N))
                                   → QLinear weight_left=1, a = a_x · unit_c on the
                                     output-channel axis −2 (a 1-D x is the plain QLinear)
    a weight layer on a·X + b with a per channel (a BatchNorm before it)
                                   → X put on one scale (common_scale), the offset
                                     pushed through: b_out = bias + Q(W) ⊛ b
    MatMul(x, y) of integer tensors (q·kᵀ, ·v)
                                   → MatMul, a = a_x · a_y (a scale such as 0.125 is
                                     never applied: it is folded into the next threshold)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hqc.intops.weights import pad_spatial, windows
from hqc.ir import Node
from hqc.layers import LayerInfo
from hqc.lowering.affine import Sym, arr, compact, is_scalar, scalar
from hqc.lowering.rules import rule
from hqc.lowering.weights import LayerCodes, packed_bytes, qattrs

if TYPE_CHECKING:
    from hqc.lowering.lowerer import Lowerer


def _weight_left(node: Node, layer: LayerInfo) -> bool:
    """MatMul(W, x): the constant weight is the left operand (y = W · x)."""
    return node.op == "MatMul" and node.inputs[0] == layer.weight


def _weight_input(lw: Lowerer, node: Node, layer: LayerInfo) -> tuple[Sym, np.ndarray | None]:
    """The layer's input as a plain view a·X (one scale, no offset) and its offset b
    (None when 0), which the caller pushes through the layer: f(a·X + b) = a·f(X) + f(b)
    with f linear. A scale that varies (a per-channel BatchNorm before the layer, as in
    MaxFormer's attention on the residual stream) is first put on one common scale
    (`hqc.lowering.arith.common_scale`: exact integer multiples when the ratios allow,
    else rounded there)."""
    s = lw.sym_of(node, 1 if _weight_left(node, layer) else 0)
    if s.plain:
        return s, None
    if not is_scalar(s.a):
        from hqc.lowering.arith import common_scale

        (s,) = common_scale(lw, node, [s], uniform_axes=tuple(range(len(s.shape))))
        assert is_scalar(s.a), "common_scale over every axis gives one scale"
    off = s.b if np.any(s.b != 0) else None
    rank = len(s.shape)
    return Sym(s.t, arr(scalar(s.a), rank), arr(0.0, rank), s.shape, s.lo, s.hi, s.layer), off


def _conv_float(x: np.ndarray, w: np.ndarray, strides: list[int], pads: list[int], dil: list[int],
                group: int) -> np.ndarray:
    """float64 convolution (zero padding, groups) of a small offset field x (B, C, *sp)."""
    nd = w.ndim - 2
    win = windows(pad_spatial(np.asarray(x, np.float64), pads, nd, 0), list(w.shape[2:]), strides, dil)
    bsz, c = win.shape[:2]
    o, cg = w.shape[0], c // group
    win = win.reshape((bsz, group, cg) + win.shape[2:])  # (B, G, Cg, *out, *k)
    wg = w.reshape((group, o // group, cg) + w.shape[2:])  # (G, Og, Cg, *k)
    letters = "hijklm"[: nd]
    y = np.einsum(f"bgc...{letters},goc{letters}->bgo...", win, wg)
    return y.reshape((bsz, o) + y.shape[3:])


def _dequant(lc: LayerCodes) -> np.ndarray:
    """Q(W) = unit_c · w_int in float64 (PyTorch layout)."""
    return lc.w_int.astype(np.float64) * lc.unit.reshape((-1,) + (1,) * (lc.w_int.ndim - 1))


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
    s, off = _weight_input(lw, node, layer)
    lc = lw.codes_of(layer, max(abs(s.lo), abs(s.hi)))
    nd = lc.w_int.ndim - 2
    group = int(node.attrs.get("group", 1))
    if node.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise lw.unsupported(node, "auto_pad is not supported")
    attrs = qattrs(layer, lc)
    attrs.update(
        nd=nd,
        strides=list(node.attrs.get("strides", [1] * nd)),
        pads=list(node.attrs.get("pads", [0] * (2 * nd))),
        dilations=list(node.attrs.get("dilations", [1] * nd)),
    )
    if group != 1:
        attrs["group"] = group  # output block j sees input block j only (depthwise: group = C)
    out_shape = lw.shape(node.outputs[0])
    t = lw.emit("QConv", [s.t], node.outputs[0], attrs, out_shape)
    rank = len(out_shape)
    shp = [1] * rank
    shp[1] = -1
    a = compact(scalar(s.a) * lc.unit.reshape(shp))
    bias = lw.const(node, 2)
    b = arr(0.0, rank) if bias is None else compact(np.asarray(bias, np.float64).reshape(shp))
    if off is not None:  # Q(W) ⊛ b: the input offset through the layer (border windows see less of it)
        field = np.broadcast_to(off, (off.shape[0],) + tuple(s.shape[1:]))
        b = compact(b + _conv_float(field, _dequant(lc), attrs["strides"], attrs["pads"], attrs["dilations"], group))
    lw.put(node, t, a, b, layer.name)
    _layer_record(lw, layer, lc, s)


def _linear(lw: Lowerer, node: Node, alpha: float = 1.0, bias: np.ndarray | None = None) -> None:
    layer = lw.layer_of(node)
    if layer is None:
        raise lw.unsupported(node, f"{node.op} of two activations with a constant weight expected")
    s, off = _weight_input(lw, node, layer)
    lc = lw.codes_of(layer, max(abs(s.lo), abs(s.hi)))
    out_shape = lw.shape(node.outputs[0])
    attrs = qattrs(layer, lc)
    rank = len(out_shape)
    unit = lc.unit
    if _weight_left(node, layer) and len(s.shape) > 1:
        # W · x: x (..., K, N) → (..., O, N); the output channels are on axis −2
        attrs["weight_left"] = 1
        unit = lc.unit.reshape(-1, 1)
    t = lw.emit("QLinear", [s.t], node.outputs[0], attrs, out_shape)
    a = compact(scalar(s.a) * alpha * arr(unit, rank))
    b = arr(0.0, rank) if bias is None else compact(arr(bias, rank))
    if off is not None:  # Q(W)·b: the input offset through the layer
        wq = _dequant(lc)
        if attrs.get("weight_left"):
            field = np.broadcast_to(off, off.shape[:-2] + (wq.shape[1], off.shape[-1]))
            y_off = np.matmul(wq, field)
        else:
            field = np.broadcast_to(off, off.shape[:-1] + (wq.shape[1],))
            y_off = np.matmul(field, wq.T)
        b = compact(b + alpha * arr(y_off, rank))
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
