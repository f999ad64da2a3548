"""Arithmetic ops of the integer dialect: Add, Sub, Shl, MatMul, Requant.

    Add/Sub(x, y)   elementwise, same shapes;   Shl(x; n) = x · 2^n
    MatMul(x, y)    batched integer matrix product (numpy broadcasting)
    Requant(x)      L = x · mult + bias   (int64 logits; mult, bias per channel)

ONNX: Add / Sub / Mul by 2^n / MatMul (int64) / Mul + Add. C: elementwise loops; MatMul
row by row, skipping zeros of the left side (spikes select rows, never multiply);
Requant as a shift-and-add constant multiply.
"""

from __future__ import annotations

import numpy as np

from hqc.errors import ModelError
from hqc.intops.base import Interval, IntOp, mul, prod, register, times
from hqc.intops.cgen import I64, SHL, SPIKE, CEmitter, c_array, c_ints, index, loops, strides, wide
from hqc.intops.onnxgen import OnnxBuilder
from hqc.intops.weights import imatmul
from hqc.ir import Graph, Node


class _Binary(IntOp):
    arity = (2, 2)

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        b.op(self.name, list(node.inputs), node.outputs[0], out=node.outputs[0])

    def c(self, e: CEmitter, node: Node) -> None:
        _c_elementwise(e, node)


@register
class Add(_Binary):
    name = "Add"

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        return [(ins[0][0] + ins[1][0], ins[0][1] + ins[1][1])]

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        return xs[0] + xs[1]


@register
class Sub(_Binary):
    name = "Sub"

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        return [(ins[0][0] - ins[1][1], ins[0][1] - ins[1][0])]

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        return xs[0] - xs[1]


@register
class Shl(IntOp):
    name = "Shl"
    attrs = {"n": "int"}

    def validate(self, node: Node) -> None:
        if not 0 <= int(node.attrs["n"]) < 62:
            raise self.error(node, f"shift {node.attrs['n']} outside 0..61")

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        return [times(ins[0], 1 << int(node.attrs["n"]))]

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        return xs[0] << int(node.attrs["n"])

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        b.op("Mul", [node.inputs[0], b.i64(1 << int(node.attrs["n"]))], node.outputs[0], out=node.outputs[0])

    def c(self, e: CEmitter, node: Node) -> None:
        _c_elementwise(e, node)


@register
class MatMul(IntOp):
    name = "MatMul"
    arity = (2, 2)

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        k = int(g.shape(node.inputs[0])[-1])
        lo, hi = mul(ins[0], ins[1])
        return [(min(0, lo * k), max(0, hi * k))]

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        return imatmul(xs[0], xs[1], engine)

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        b.op("MatMul", list(node.inputs), node.outputs[0], out=node.outputs[0])

    def c(self, e: CEmitter, node: Node) -> None:
        _c_matmul(e, node)


@register
class Requant(IntOp):
    name = "Requant"
    attrs = {"mult": "array", "bias": "array", "logit_bits": "int"}

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        acc = max(abs(ins[0][0]), abs(ins[0][1]))
        top = acc * int(np.abs(node.attrs["mult"]).max(initial=0)) + int(np.abs(node.attrs["bias"]).max(initial=0))
        return [(-top, top)]

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        return xs[0] * np.asarray(node.attrs["mult"], np.int64) + np.asarray(node.attrs["bias"], np.int64)

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        out = node.outputs[0]
        a = node.attrs
        y = b.op("Mul", [node.inputs[0], b.const(np.asarray(a["mult"], np.int64), out + "_mult")], out)
        b.op("Add", [y, b.const(np.asarray(a["bias"], np.int64), out + "_bias")], out, out=out)

    def c(self, e: CEmitter, node: Node) -> None:
        _c_requant(e, node)


def _c_elementwise(e: CEmitter, node: Node) -> None:
    y = node.outputs[0]
    e.tensor(y)
    size = prod(e.g.shape(y))
    ins = [e.buf[t] for t in node.inputs]
    Y = e.buf[y]
    w = wide(e.typ[y])
    if node.op == "Add":
        expr = f"({w}){ins[0]}[i] + ({w}){ins[1]}[i]"
    elif node.op == "Sub":
        expr = f"({w}){ins[0]}[i] - ({w}){ins[1]}[i]"
    else:
        expr = f"{SHL[w]}({ins[0]}[i], {int(node.attrs['n'])})"
    e.simple(node, [f"    for (i = 0; i < {size}; i++) {Y}[i] = ({e.typ[y]})({expr});"], "int32_t i;")


def _c_matmul(e: CEmitter, node: Node) -> None:
    a, b = node.inputs
    y = node.outputs[0]
    e.tensor(y)
    sa, sb, sy = (tuple(e.g.shape(t)) for t in (a, b, y))
    if len(sa) < 2 or len(sb) < 2 or sa[:-2] != sb[:-2]:
        raise ModelError(f"C kernels: MatMul {node.name!r} with broadcast batch dims {list(sa)} @ {list(sb)}")
    M, K, N = sa[-2], sa[-1], sb[-1]
    batch = prod(sa[:-2])
    w = wide(e.typ[y])
    A, B, Y = e.buf[a], e.buf[b], e.buf[y]
    ta, tb = e.typ[a], e.typ[b]
    # row by row: each nonzero A[m, k] adds (its share of) row k of B to row m of Y,
    # a contiguous loop over n; zeros of A (most of a spike tensor) cost one test
    if tb == SPIKE and ta == SPIKE:
        add = f"r[n] += {B}[bk + n];"
    elif tb == SPIKE:
        add = f"r[n] += av & -({w}){B}[bk + n];"  # B is 0/1: a mask, no multiply
    elif ta == SPIKE:
        add = f"r[n] += {B}[bk + n];"
    else:
        add = f"r[n] += av * {B}[bk + n];"
    body = [
        f"    static {w} r[{N}];",
        f"    for (bt = 0, ai = 0, bb = 0, yi = 0; bt < {batch}; bt++, bb += {K * N})",
        f"        for (m = 0; m < {M}; m++) {{",
        f"            for (n = 0; n < {N}; n++) r[n] = 0;",
        f"            for (k = 0, bk = bb; k < {K}; k++, ai++, bk += {N}) {{",
        f"                av = ({w}){A}[ai];",
        "                if (av == 0) continue;",
        f"                for (n = 0; n < {N}; n++) {add}",
        "            }",
        f"            for (n = 0; n < {N}; n++, yi++) {Y}[yi] = ({e.typ[y]})r[n];",
        "        }",
    ]
    e.simple(node, body, f"int32_t bt, m, n, k, ai, bb, bk, yi; {w} av;")


def _c_requant(e: CEmitter, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    e.tensor(y, typ=I64)
    shape = tuple(e.g.shape(y))
    mult, bias = np.asarray(node.attrs["mult"]), np.asarray(node.attrs["bias"])
    fn = e.next_fn()
    e.data += c_array(f"{fn}_m", "int64_t", c_ints(mult))
    e.data += c_array(f"{fn}_b", "int64_t", c_ints(bias))
    pstr = [s if d > 1 else 0 for s, d in zip(strides(mult.shape), mult.shape, strict=True)]
    opens, closes, ind = loops(shape)
    body = opens + [f"{ind}pi = {index(pstr)};",
                    f"{ind}{e.buf[y]}[yi] = hqc_mul_shift_add((int64_t){e.buf[x]}[yi], {fn}_m[pi]) + {fn}_b[pi];",
                    f"{ind}yi++;"] + closes
    decl = "int32_t " + ", ".join(f"d{i}" for i in range(len(shape))) + ", pi, yi = 0;"
    e.simple(node, body, decl)
