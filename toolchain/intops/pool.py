"""Pooling and reductions of the integer dialect: MaxPool, ReduceSum.

    MaxPool(x)     max over the window; padding never wins (−∞)
    ReduceSum(x)   sum over `axes` (keepdims as ONNX)

ONNX: Pad(INT64_MIN) → Gather(windows) → ReduceMax (ONNX MaxPool on integers is 8-bit
only); ReduceSum. C: separable row/column max passes with per-tap clipped ranges;
a summing loop.
"""

from __future__ import annotations

import numpy as np

from hqc.errors import ModelError
from hqc.intops.base import Interval, IntOp, prod, register
from hqc.intops.cgen import I32, I64, SPIKE, CEmitter, c_array, index, loops, strides, tap_ranges
from hqc.intops.onnxgen import I64_MIN, OnnxBuilder, windows_gather
from hqc.intops.weights import pad_spatial, windows
from hqc.ir import Graph, Node


def maxpool_int(x: np.ndarray, kernel: list[int], strides: list[int], pads: list[int]) -> np.ndarray:
    nd = len(kernel)
    xp = pad_spatial(np.asarray(x, np.int64), pads, nd, I64_MIN)
    win = windows(xp, kernel, strides, [1] * nd)
    return win.max(axis=tuple(range(win.ndim - nd, win.ndim)))


@register
class MaxPool(IntOp):
    name = "MaxPool"
    attrs = {"kernel_shape": "ints", "strides": "ints", "pads": "ints"}

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        return [ins[0]]

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        x = xs[0]
        g, b = x.shape[:2]
        y = maxpool_int(x.reshape((g * b,) + x.shape[2:]), list(node.attrs["kernel_shape"]),
                        list(node.attrs["strides"]), list(node.attrs["pads"]))
        return y.reshape((g, b) + y.shape[1:])

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        x = node.inputs[0]
        shape = tuple(g.shape(x))
        k = list(node.attrs["kernel_shape"])
        base = node.outputs[0]
        win, osp = windows_gather(b, x, shape, k, list(node.attrs["strides"]), list(node.attrs["pads"]),
                                  [1] * len(k), I64_MIN, base, False)
        m = b.op("ReduceMax", [win], base, axes=[3], keepdims=0)
        b.op("Reshape", [m, b.i64([shape[0], shape[1], *osp])], base, out=node.outputs[0])

    def c(self, e: CEmitter, node: Node) -> None:
        _c_maxpool(e, node)


@register
class ReduceSum(IntOp):
    name = "ReduceSum"
    attrs = {"axes": "ints", "keepdims": "int"}

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        shape = g.shape(node.inputs[0])
        n = prod(shape[a] for a in node.attrs["axes"])
        return [(min(0, ins[0][0] * n), max(0, ins[0][1] * n))]

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        x = xs[0]
        rank = x.ndim - 1
        axes = tuple((a % rank) + 1 for a in node.attrs["axes"])
        return x.sum(axis=axes, keepdims=bool(node.attrs.get("keepdims", 1)))

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        b.op("ReduceSum", [node.inputs[0], b.i64(list(node.attrs["axes"]))], node.outputs[0],
             out=node.outputs[0], keepdims=int(node.attrs.get("keepdims", 1)))

    def c(self, e: CEmitter, node: Node) -> None:
        _c_reducesum(e, node)


def _c_maxpool(e: CEmitter, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    e.tensor(y)
    xs, ys = tuple(e.g.shape(x)), tuple(e.g.shape(y))
    k = list(node.attrs["kernel_shape"])
    st = list(node.attrs["strides"])
    pads = list(node.attrs["pads"])
    if len(k) == 1:
        xs, ys, k, st, pads = (xs[0], xs[1], 1, xs[2]), (ys[0], ys[1], 1, ys[2]), [1] + k, [1] + st, [0, pads[0], 0, pads[1]]
    if len(k) != 2:
        raise ModelError(f"C kernels: {len(k)}-D max-pool (node {node.name!r})")
    N, C, H, W = xs
    HO, WO = ys[2], ys[3]
    X, Y = e.buf[x], e.buf[y]
    lo = {SPIKE: "0", I32: "INT32_MIN", I64: "INT64_MIN"}[e.typ[x]]
    # separable: a row pass (max over the window's columns) into a scratch plane, then a
    # column pass (max over the window's rows); each tap's output range is clipped to
    # the input beforehand, so the inner loops are contiguous and test-free
    xr_ = tap_ranges(k[1], 1, pads[1], st[1], W, WO)
    fn_tab = f"mp{len(e.funcs)}"
    e.data += c_array(f"{fn_tab}_oxlo", "int32_t", [str(r[0]) for r in xr_])
    e.data += c_array(f"{fn_tab}_oxhi", "int32_t", [str(r[1]) for r in xr_])
    e.data += c_array(f"{fn_tab}_ixlo", "int32_t", [str(r[2]) for r in xr_])
    # output row oy takes the input rows [oy·S − P, oy·S − P + K) ∩ [0, H)
    rows = [(max(0, oy * st[0] - pads[0]), min(H, oy * st[0] - pads[0] + k[0])) for oy in range(HO)]
    e.data += c_array(f"{fn_tab}_iy0", "int32_t", [str(a * WO) for a, _ in rows])
    e.data += c_array(f"{fn_tab}_iy1", "int32_t", [str(b * WO) for _, b in rows])
    typ = e.typ[x]
    body = [
        f"    static {typ} h[{H * WO}];  // row pass of one plane",
        f"    for (p = 0, xp = 0, yi = 0; p < {N * C}; p++, xp += {H * W}) {{",
        f"        for (iy = 0, xr = xp, hr = 0; iy < {H}; iy++, xr += {W}, hr += {WO}) {{",
        f"            for (ox = 0; ox < {WO}; ox++) h[hr + ox] = {lo};",
        f"            for (kx = 0; kx < {k[1]}; kx++)",
        f"                for (ox = {fn_tab}_oxlo[kx], ix = xr + {fn_tab}_ixlo[kx]; ox < {fn_tab}_oxhi[kx]; ox++, ix += {st[1]})",
        f"                    h[hr + ox] = {X}[ix] > h[hr + ox] ? {X}[ix] : h[hr + ox];",
        "        }",
        f"        for (oy = 0; oy < {HO}; oy++, yi += {WO}) {{",
        f"            for (ox = 0; ox < {WO}; ox++) {Y}[yi + ox] = {lo};",
        f"            for (hr = {fn_tab}_iy0[oy]; hr < {fn_tab}_iy1[oy]; hr += {WO})",
        f"                for (ox = 0; ox < {WO}; ox++) {Y}[yi + ox] = h[hr + ox] > {Y}[yi + ox] ? h[hr + ox] : {Y}[yi + ox];",
        "        }",
        "    }",
    ]
    e.simple(node, body, "int32_t p, oy, ox, iy, ix, kx, xp, xr, hr, yi;")


def _c_reducesum(e: CEmitter, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    e.tensor(y)
    xs = tuple(e.g.shape(x))
    axes = set(int(v) for v in node.attrs["axes"])
    kept = tuple(1 if i in axes else d for i, d in enumerate(xs))
    ost = strides(kept)
    opens, closes, ind = loops(xs)
    body = [f"    for (i = 0; i < {prod(e.g.shape(y))}; i++) {e.buf[y]}[i] = 0;"]
    body += opens + [f"{ind}{e.buf[y]}[{index(ost, zero=axes)}] += {e.buf[x]}[xi++];"] + closes
    decl = "int32_t " + ", ".join(f"d{i}" for i in range(len(xs))) + ", i, xi = 0;"
    e.simple(node, body, decl)
