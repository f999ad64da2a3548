"""Lowering rules for data movement.

    Reshape / Flatten / Squeeze / Unsqueeze  → Reshape (a, b follow the channel axis)
    Identity / Dropout                       → nothing (the same view)
    Transpose                                → Transpose (a, b transposed)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hqc.intops.base import prod
from hqc.ir import Node
from hqc.lowering.affine import reshape_aff
from hqc.lowering.rules import rule

if TYPE_CHECKING:
    from hqc.lowering.lowerer import Lowerer


@rule("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def reshape_like(lw: Lowerer, node: Node) -> None:
    s = lw.sym_of(node, 0)
    out_shape = lw.shape(node.outputs[0])
    if prod(out_shape) != prod(s.shape):
        raise lw.unsupported(node, f"reshape {list(s.shape)} → {list(out_shape)} changes the size")
    a = reshape_aff(s.a, s.shape, out_shape, node.name)
    b = reshape_aff(s.b, s.shape, out_shape, node.name)
    t = lw.emit("Reshape", [s.t], node.outputs[0], {"shape": list(out_shape)}, out_shape)
    lw.put(node, t, a, b, s.layer)


@rule("Identity", "Dropout")
def identity(lw: Lowerer, node: Node) -> None:
    lw.sym[node.outputs[0]] = lw.sym_of(node, 0)


@rule("Transpose")
def transpose(lw: Lowerer, node: Node) -> None:
    s = lw.sym_of(node, 0)
    perm = list(node.attrs.get("perm", list(reversed(range(len(s.shape))))))
    out_shape = tuple(s.shape[p] for p in perm)
    t = lw.emit("Transpose", [s.t], node.outputs[0], {"perm": perm}, out_shape)
    lw.put(node, t, s.a.transpose(perm), s.b.transpose(perm), s.layer)
