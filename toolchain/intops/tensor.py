"""Data movement in the integer dialect: Reshape, Transpose.

    Reshape(x; shape)   same elements, same row-major order (C: an alias, no copy)
    Transpose(x; perm)  numpy transpose
"""

from __future__ import annotations

import numpy as np

from hqc.intops.base import Interval, IntOp, register
from hqc.intops.cgen import CEmitter, index, loops, strides
from hqc.intops.onnxgen import OnnxBuilder
from hqc.ir import Graph, Node


class _Same(IntOp):
    """Ops whose output values are some of the input values."""

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        return [ins[0]]


@register
class Reshape(_Same):
    name = "Reshape"
    attrs = {"shape": "ints"}

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        return xs[0].reshape((xs[0].shape[0],) + tuple(node.attrs["shape"]))

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        b.op("Reshape", [node.inputs[0], b.i64(list(node.attrs["shape"]))], node.outputs[0], out=node.outputs[0])

    def c(self, e: CEmitter, node: Node) -> None:
        e.alias(node.outputs[0], node.inputs[0])


@register
class Transpose(_Same):
    name = "Transpose"
    attrs = {"perm": "ints"}

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        return xs[0].transpose([0] + [p + 1 for p in node.attrs["perm"]])

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        b.op("Transpose", [node.inputs[0]], node.outputs[0], out=node.outputs[0], perm=list(node.attrs["perm"]))

    def c(self, e: CEmitter, node: Node) -> None:
        _c_transpose(e, node)


def _c_transpose(e: CEmitter, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    e.tensor(y)
    perm = list(node.attrs["perm"])
    xs = tuple(e.g.shape(x))
    ys = tuple(e.g.shape(y))
    xst = strides(xs)
    opens, closes, ind = loops(ys)
    src = index([xst[p] for p in perm])
    body = opens + [f"{ind}{e.buf[y]}[yi++] = {e.buf[x]}[{src}];"] + closes
    decl = "int32_t " + ", ".join(f"d{i}" for i in range(len(ys))) + ", yi = 0;"
    e.simple(node, body, decl)
