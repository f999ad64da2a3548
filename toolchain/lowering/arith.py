"""Lowering rules for affine and elementwise arithmetic.

    BatchNormalization / Mul / Div / Add / Sub by constants / Neg
                                            → a, b updated; no integer op
    Add(x, y) / Sub(x, y) of integer tensors (residuals)
                                            → Add / Sub (+ Shl when a_y / a_x = 2^k)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from hqc.ir import Node
from hqc.lowering.affine import Sym, arr, compact, is_scalar, scalar
from hqc.lowering.rules import rule

if TYPE_CHECKING:
    from hqc.lowering.lowerer import Lowerer


def _binary_const(lw: Lowerer, node: Node) -> tuple[Sym, np.ndarray, int] | None:
    """(sym, const, sym_slot) when one operand is a constant."""
    c0, c1 = lw.const(node, 0), lw.const(node, 1)
    if c0 is None and c1 is None:
        return None
    if c0 is not None and c1 is not None:
        raise lw.unsupported(node, "both operands constant (not folded by canonicalize)")
    slot = 1 if c0 is not None else 0
    s = lw.sym_of(node, slot)
    c = c0 if c0 is not None else c1
    out_shape = lw.shape(node.outputs[0])
    if tuple(np.broadcast_shapes(s.shape, np.shape(c))) != tuple(s.shape) or out_shape != s.shape:
        raise lw.unsupported(node, "a constant operand that broadcasts the integer tensor is not supported")
    return s, arr(c, len(s.shape)), slot


def _view(lw: Lowerer, node: Node, s: Sym, a: np.ndarray, b: np.ndarray) -> None:
    lw.sym[node.outputs[0]] = Sym(s.t, compact(a), compact(b), s.shape, s.lo, s.hi, s.layer)


@rule("Mul")
def mul(lw: Lowerer, node: Node) -> None:
    bc = _binary_const(lw, node)
    if bc is None:
        raise lw.unsupported(node, "elementwise product of two activations is not supported")
    s, c, _ = bc
    _view(lw, node, s, s.a * c, s.b * c)


@rule("Div")
def div(lw: Lowerer, node: Node) -> None:
    bc = _binary_const(lw, node)
    if bc is None or bc[2] != 0:
        raise lw.unsupported(node, "only division by a constant is supported")
    s, c, _ = bc
    _view(lw, node, s, s.a / c, s.b / c)


@rule("Neg")
def neg(lw: Lowerer, node: Node) -> None:
    s = lw.sym_of(node, 0)
    lw.sym[node.outputs[0]] = Sym(s.t, -s.a, -s.b, s.shape, s.lo, s.hi, s.layer)


@rule("BatchNormalization")
def batchnorm(lw: Lowerer, node: Node) -> None:
    s = lw.sym_of(node, 0)
    if len(node.outputs) > 1 and any(node.outputs[1:]):
        raise lw.unsupported(node, "training-mode BatchNormalization")
    scale, bias, mean, var = (np.asarray(lw.const(node, i), np.float64) for i in range(1, 5))
    eps = float(np.float32(node.attrs.get("epsilon", 1e-5)))
    g = scale / np.sqrt(var.astype(np.float32).astype(np.float64) + eps)
    shape = [1] * len(s.shape)
    shape[1] = -1
    g, bias, mean = g.reshape(shape), bias.reshape(shape), mean.reshape(shape)
    _view(lw, node, s, s.a * g, (s.b - mean) * g + bias)


def _add_sub(lw: Lowerer, node: Node, sign: int) -> None:
    bc = _binary_const(lw, node)
    if bc is not None:
        s, c, slot = bc
        if sign > 0:
            a, b = s.a, s.b + c
        elif slot == 0:  # x - c
            a, b = s.a, s.b - c
        else:  # c - x
            a, b = -s.a, c - s.b
        _view(lw, node, s, a, b)
        return
    x, y = lw.sym_of(node, 0), lw.sym_of(node, 1)
    if x.shape != y.shape:
        raise lw.unsupported(node, f"operands of shapes {list(x.shape)} and {list(y.shape)} (broadcasting)")
    xt, yt, a = x.t, y.t, x.a
    if is_scalar(x.a) and is_scalar(y.a):
        ax, ay = scalar(x.a), scalar(y.a)
        r = ay / ax if ax != 0 else math.inf
        k = round(math.log2(abs(r))) if r not in (0, math.inf) and math.isfinite(r) else None
        if k is None or abs(r) != 2.0**k or r < 0:
            raise lw.unsupported(node, f"adding integer tensors of scales {ax:g} and {ay:g} "
                                       "(their ratio is not a power of two)")
        if k > 0:
            yt = lw.emit("Shl", [y.t], node.outputs[0] + "_shl", {"n": k}, y.shape)
        elif k < 0:
            xt = lw.emit("Shl", [x.t], node.outputs[0] + "_shl", {"n": -k}, x.shape)
            a = y.a
    elif not np.array_equal(*np.broadcast_arrays(x.a, y.a)):
        raise lw.unsupported(node, "adding integer tensors with different per-channel scales")
    b = x.b + y.b if sign > 0 else x.b - y.b
    t = lw.emit("Add" if sign > 0 else "Sub", [xt, yt], node.outputs[0], {}, x.shape)
    lw.put(node, t, a, compact(b))


@rule("Add")
def add(lw: Lowerer, node: Node) -> None:
    _add_sub(lw, node, 1)


@rule("Sub")
def sub(lw: Lowerer, node: Node) -> None:
    _add_sub(lw, node, -1)
