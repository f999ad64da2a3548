"""Data movement in the integer dialect: Reshape, Transpose, Slice, Gather, Concat, Pad,
Expand. Every output value is an input value (or, for Pad, the pad value), so the
bounds are the input's (the hull for Concat; with the pad value for Pad).

    Reshape(x; shape)                 same elements, same row-major order (C: an alias, no copy)
    Transpose(x; perm)                numpy transpose
    Slice(x; axes, starts, ends, steps)
                                      x[start:end:step] along each listed axis, indices
                                      normalized: 0 ≤ start < dim, step ≠ 0, end ∈ [0, dim]
                                      (step > 0) or [-1, dim − 1] (step < 0; −1 = through 0)
    Gather(x; axis, indices)          numpy take: indices an int64 array of any shape with
                                      0 ≤ i < dim (a 0-d array removes the axis)
    Concat(x1, …, xn; axis)           numpy concatenate
    Pad(x; pads, value)               constant padding: pads = begins then ends, one per
                                      axis, ≥ 0; padded elements hold the integer `value`
    Expand(x; shape)                  numpy broadcast_to; x has the rank of `shape` and each
                                      of its dims is 1 or the output's

ONNX: the standard ops of the same names on int64 (Slice with ends below −dim for
"through 0", Gather with a constant index tensor, Pad in constant mode). C: copy loops
with constant offsets and strides (Gather: one constant index table); the output's C
type comes from its bound, so a spike tensor stays `uint8_t` through every move.
"""

from __future__ import annotations

import numpy as np

from hqc.intops.base import Interval, IntOp, hull, prod, register
from hqc.intops.cgen import CEmitter, c_array, c_ints, index, loops, strides
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


@register
class Slice(_Same):
    name = "Slice"
    attrs = {"axes": "ints", "starts": "ints", "ends": "ints", "steps": "ints"}

    def validate(self, node: Node) -> None:
        a = node.attrs
        axes, starts, ends, steps = (list(a[k]) for k in ("axes", "starts", "ends", "steps"))
        if not len(axes) == len(starts) == len(ends) == len(steps) or not axes:
            raise self.error(node, "axes, starts, ends and steps need one entry per sliced axis")
        if len(set(axes)) != len(axes) or min(axes) < 0:
            raise self.error(node, f"axes {axes} must be distinct and non-negative")
        for s, en, k in zip(starts, ends, steps, strict=True):
            if k == 0 or s < 0 or en < -1 or (k > 0 and en < 0):
                raise self.error(node, f"slice {s}:{en}:{k} is not normalized")

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        idx: list[slice] = [slice(None)] * xs[0].ndim
        for ax, s, en, k in _slices(node):
            idx[ax + 1] = slice(s, None if en < 0 else en, k)
        return xs[0][tuple(idx)]

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        shape = tuple(g.shape(node.inputs[0]))
        sl = _slices(node)
        # ONNX adds dim to a negative end: "through index 0" is any end below −dim
        ends = [en if en >= 0 else -shape[ax] - 1 for ax, _, en, _ in sl]
        b.op("Slice", [node.inputs[0], b.i64([s for _, s, _, _ in sl]), b.i64(ends),
                       b.i64([ax for ax, _, _, _ in sl]), b.i64([k for _, _, _, k in sl])],
             node.outputs[0], out=node.outputs[0])

    def c(self, e: CEmitter, node: Node) -> None:
        xst = strides(e.shape(node.inputs[0]))
        base, step = 0, list(xst)
        for ax, s, _, k in _slices(node):
            base += s * xst[ax]
            step[ax] = k * xst[ax]
        _c_strided(e, node, base, step)


def _slices(node: Node) -> list[tuple[int, int, int, int]]:
    a = node.attrs
    return [(int(ax), int(s), int(en), int(k)) for ax, s, en, k in
            zip(a["axes"], a["starts"], a["ends"], a["steps"], strict=True)]


@register
class Gather(_Same):
    name = "Gather"
    attrs = {"axis": "int", "indices": "array"}

    def validate(self, node: Node) -> None:
        idx = node.attrs["indices"]
        if idx.dtype.kind not in "iu" or (idx.size and idx.min() < 0) or idx.size == 0:
            raise self.error(node, "indices must be a non-empty array of non-negative integers")
        if int(node.attrs["axis"]) < 0:
            raise self.error(node, f"axis {node.attrs['axis']} is negative")

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        return np.take(xs[0], np.asarray(node.attrs["indices"], np.int64), axis=int(node.attrs["axis"]) + 1)

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        idx = b.const(np.asarray(node.attrs["indices"], np.int64), node.outputs[0] + "_idx")
        b.op("Gather", [node.inputs[0], idx], node.outputs[0], out=node.outputs[0], axis=int(node.attrs["axis"]))

    def c(self, e: CEmitter, node: Node) -> None:
        _c_gather(e, node)


@register
class Concat(IntOp):
    name = "Concat"
    attrs = {"axis": "int"}
    arity = (1, None)

    def validate(self, node: Node) -> None:
        if int(node.attrs["axis"]) < 0:
            raise self.error(node, f"axis {node.attrs['axis']} is negative")

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        return [hull(*ins)]

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        return np.concatenate(xs, axis=int(node.attrs["axis"]) + 1)

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        b.op("Concat", list(node.inputs), node.outputs[0], out=node.outputs[0], axis=int(node.attrs["axis"]))

    def c(self, e: CEmitter, node: Node) -> None:
        _c_concat(e, node)


@register
class Pad(IntOp):
    name = "Pad"
    attrs = {"pads": "ints", "value": "int"}

    def validate(self, node: Node) -> None:
        pads = list(node.attrs["pads"])
        if len(pads) % 2 or min(pads, default=0) < 0 or not any(pads):
            raise self.error(node, f"pads {pads} must be begins then ends, non-negative, not all 0")

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        v = int(node.attrs["value"])
        return [hull(ins[0], (v, v))]

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        pads = list(node.attrs["pads"])
        r = len(pads) // 2
        width = [(0, 0)] + list(zip(pads[:r], pads[r:], strict=True))
        return np.pad(xs[0], width, constant_values=int(node.attrs["value"]))

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        b.op("Pad", [node.inputs[0], b.i64(list(node.attrs["pads"])), b.i64(int(node.attrs["value"]))],
             node.outputs[0], out=node.outputs[0], mode="constant")

    def c(self, e: CEmitter, node: Node) -> None:
        _c_pad(e, node)


@register
class Expand(_Same):
    name = "Expand"
    attrs = {"shape": "ints"}

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        return np.broadcast_to(xs[0], (xs[0].shape[0],) + tuple(node.attrs["shape"])).copy()

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        b.op("Expand", [node.inputs[0], b.i64(list(node.attrs["shape"]))], node.outputs[0], out=node.outputs[0])

    def c(self, e: CEmitter, node: Node) -> None:
        xs = e.shape(node.inputs[0])
        _c_strided(e, node, 0, [s if d > 1 else 0 for s, d in zip(strides(xs), xs, strict=True)])


# --------------------------------------------------------------------------- C kernels
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


def _c_strided(e: CEmitter, node: Node, base: int, src_strides: list[int]) -> None:
    """y[d] = x[base + Σ d_i · src_strides_i] over the output's row-major order."""
    x, y = node.inputs[0], node.outputs[0]
    e.tensor(y)
    ys = e.shape(y)
    opens, closes, ind = loops(ys)
    src = index(src_strides)
    src = str(base) if src == "0" else (src if base == 0 else f"{base} + {src}")
    body = opens + [f"{ind}{e.buf[y]}[yi++] = ({e.typ[y]}){e.buf[x]}[{src}];"] + closes
    e.simple(node, body, _decl(len(ys), "yi = 0"))


def _c_gather(e: CEmitter, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    e.tensor(y)
    xs = e.shape(x)
    ax = int(node.attrs["axis"])
    idx = np.asarray(node.attrs["indices"], np.int64).reshape(-1)
    outer, dim, inner = prod(xs[:ax]), xs[ax], prod(xs[ax + 1:])
    tab = f"{e.next_fn()}_idx"
    e.data += c_array(tab, "int32_t", [str(int(i) * inner) for i in idx])  # row offsets
    body = [
        f"    for (o = 0, yi = 0; o < {outer}; o++)",
        f"        for (j = 0; j < {idx.size}; j++)",
        f"            for (i = 0, xi = o * {dim * inner} + {tab}[j]; i < {inner}; i++)",
        f"                {e.buf[y]}[yi++] = ({e.typ[y]}){e.buf[x]}[xi + i];",
    ]
    e.simple(node, body, "int32_t o, j, i, xi, yi;")


def _c_concat(e: CEmitter, node: Node) -> None:
    y = node.outputs[0]
    e.tensor(y)
    ys = e.shape(y)
    ax = int(node.attrs["axis"])
    outer, inner = prod(ys[:ax]), prod(ys[ax + 1:])
    body, off = [], 0
    for x in node.inputs:
        blk = e.shape(x)[ax] * inner
        dst = f"o * {ys[ax] * inner} + {off} + i" if off else f"o * {ys[ax] * inner} + i"
        body += [f"    for (o = 0; o < {outer}; o++)",
                 f"        for (i = 0; i < {blk}; i++)",
                 f"            {e.buf[y]}[{dst}] = ({e.typ[y]}){e.buf[x]}[o * {blk} + i];"]
        off += blk
    e.simple(node, body, "int32_t o, i;")


def _c_pad(e: CEmitter, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    e.tensor(y)
    xs, ys = e.shape(x), e.shape(y)
    pads = list(node.attrs["pads"])
    yst = strides(ys)
    base = sum(p * s for p, s in zip(pads[: len(xs)], yst, strict=True))
    opens, closes, ind = loops(xs)
    dst = index(yst)
    dst = str(base) if dst == "0" else (dst if base == 0 else f"{base} + {dst}")
    value = c_ints(np.array([int(node.attrs["value"])]))[0]
    body = [f"    for (i = 0; i < {prod(ys)}; i++) {e.buf[y]}[i] = ({e.typ[y]}){value};"]
    body += opens + [f"{ind}{e.buf[y]}[{dst}] = ({e.typ[y]}){e.buf[x]}[xi++];"] + closes
    e.simple(node, body, _decl(len(xs), "i", "xi = 0"))


def _decl(rank: int, *extra: str) -> str:
    """The declaration of the loop counters d0… and `extra`."""
    return "int32_t " + ", ".join([f"d{i}" for i in range(rank)] + list(extra)) + ";"
