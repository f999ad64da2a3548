"""Lowering rules for pooling and reductions.

    MaxPool                                  → MaxPool (padding never wins; channels
                                               with a < 0: min, attribute `sign`)
    AveragePool over n = k₁·k₂               → SumPool, a → a/n (count_include_pad=0
                                               with padding: × L/nᵥ(p), a → a/L)
    ReduceMean / ReduceSum / GlobalAveragePool over n elements
                                             → ReduceSum, a → a / n (mean)
    … over an axis along which the scale varies (the channel mean of a per-channel-scaled
      tensor)                                → LinComb onto a scale constant along the axes
                                               (hqc.lowering.arith.common_scale), ReduceSum
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from hqc.intops.base import prod
from hqc.intops.pool import valid_counts
from hqc.ir import Node
from hqc.lowering.arith import common_scale
from hqc.lowering.rules import rule

if TYPE_CHECKING:
    from hqc.lowering.affine import Sym
    from hqc.lowering.lowerer import Lowerer


def _window_attrs(lw: Lowerer, node: Node, s: Sym, what: str) -> dict:
    """kernel_shape, strides, pads of a MaxPool/AveragePool; lw.unsupported for the
    attributes the integer pools do not model (an auto_pad, dilations, a ceil_mode that
    changes the output shape, padding as large as the window)."""
    if any(d != 1 for d in s.a.shape[2:]) or any(d != 1 for d in s.b.shape[2:]):
        raise lw.unsupported(node, f"{what} of a tensor whose scale varies along a pooled axis")
    if any(d != 1 for d in node.attrs.get("dilations", [1])):
        raise lw.unsupported(node, "dilations are not supported")
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
    return attrs


def _floor_shape(shape: tuple[int, ...], attrs: dict) -> tuple[int, ...]:
    k, st, pads = attrs["kernel_shape"], attrs["strides"], attrs["pads"]
    nd = len(k)
    sp = tuple((shape[2 + i] + pads[i] + pads[i + nd] - k[i]) // st[i] + 1 for i in range(nd))
    return tuple(shape[:2]) + sp


@rule("MaxPool")
def maxpool(lw: Lowerer, node: Node) -> None:
    """max(a·X + b) = a·max(X) + b per channel where a > 0, and a·min(X) + b where a < 0
    (a negative BatchNorm γ before the pool): MaxPool with a per-channel `sign` (−1: min)
    when any channel's scale is negative; a = 0 channels are constant (any choice)."""
    s = lw.sym_of(node, 0)
    if len(node.outputs) > 1 and any(node.outputs[1:]):
        raise lw.unsupported(node, "MaxPool with an indices output")
    attrs = _window_attrs(lw, node, s, "max-pool")
    out_shape = lw.shape(node.outputs[0])
    if tuple(out_shape) != _floor_shape(s.shape, attrs):
        raise lw.unsupported(node, "ceil_mode windows that run past the input are not supported")
    if np.any(s.a < 0):
        if s.a.size > 1 and s.a.shape[1] != s.a.size:
            raise lw.unsupported(node, "max-pool of a tensor with a negative scale that is not per channel")
        a_c = np.broadcast_to(s.a.reshape(-1), (s.shape[1],))
        attrs["sign"] = np.where(a_c < 0, -1, 1).astype(np.int64)
    t = lw.emit("MaxPool", [s.t], node.outputs[0], attrs, out_shape)
    lw.put(node, t, s.a, s.b)


@rule("AveragePool")
def average_pool(lw: Lowerer, node: Node) -> None:
    """mean over the window = (a/n)·ΣX + b  → SumPool, a → a/n.

    Without padding, or with count_include_pad=1 on a tensor without offset (b = 0),
    n is the window size. With count_include_pad=0 and padding the divisor is the
    number nᵥ(p) of the window's elements inside the input, which varies at the borders:
    with L = lcm of all nᵥ(p), SumPool multiplies each window sum by the integer
    L/nᵥ(p), and a → a/L — exact. count_include_pad=1 with padding and b ≠ 0 weighs
    the offset by nᵥ(p)/n, a different offset per position: an error."""
    s = lw.sym_of(node, 0)
    attrs = _window_attrs(lw, node, s, "average pool")
    out_shape = lw.shape(node.outputs[0])
    if tuple(out_shape) != _floor_shape(s.shape, attrs):
        raise lw.unsupported(node, "ceil_mode windows that run past the input are not supported")
    n = prod(attrs["kernel_shape"])
    a = s.a / n
    if any(attrs["pads"]):
        if node.attrs.get("count_include_pad", 0):
            if np.any(s.b != 0):
                raise lw.unsupported(node, "average pool with count_include_pad=1 and padding of a tensor with "
                                           "an offset: the border windows weigh the offset differently")
        else:
            cnt = valid_counts(s.shape[2:], attrs["kernel_shape"], attrs["strides"], attrs["pads"])
            lcm = math.lcm(*(int(v) for v in np.unique(cnt)))
            if np.any(cnt != n):
                attrs["mult"] = (lcm // cnt).astype(np.int64)
                a = s.a / lcm
    t = lw.emit("SumPool", [s.t], node.outputs[0], attrs, out_shape)
    lw.put(node, t, a, s.b)


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
    if any(s.a.shape[a] != 1 for a in axes):
        s = common_scale(lw, node, [s], uniform_axes=tuple(axes))[0]
    n = prod(s.shape[a] for a in axes)
    out_shape = lw.shape(node.outputs[0])
    a = s.a / n if mean else s.a
    if any(s.b.shape[a] != 1 for a in axes):  # Σ over the axes of the broadcast offsets
        full = np.broadcast_to(s.b, tuple(s.shape[i] if i in axes else d for i, d in enumerate(s.b.shape)))
        b = full.sum(axis=tuple(axes), keepdims=True) / (n if mean else 1)
    else:
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
