"""Pooling and reductions of the integer dialect: MaxPool, SumPool, ReduceSum.

    MaxPool(x)     max over the window; padding never wins (−∞). With `sign` (one ±1
                   per channel): channels with sign −1 take the min instead
                   (y = −max(−x); padding never wins either) — the max-pool of
                   a·X + b with a < 0 is a·min(X) + b
    SumPool(x)     y[p] = mult[p] · Σ_{window(p)} x_pad   (zero padding; `mult`, an
                   integer per output position, optional = 1): the average pool's
                   window sum, its divisor folded into the scale
    ReduceSum(x)   sum over `axes` (keepdims as ONNX)

ONNX: Pad(INT64_MIN) → Gather(windows) → ReduceMax (ONNX MaxPool on integers is 8-bit
only; `sign`: Mul by the per-channel ±1 before and after); SumPool: Pad(0) → Gather →
ReduceSum (→ Mul mult); ReduceSum. C: separable row/column max (min) or sum passes with
per-tap clipped ranges; a summing loop.
"""

from __future__ import annotations

import numpy as np

from hqc.errors import ModelError
from hqc.intops.base import Interval, IntOp, prod, register, with_zero
from hqc.intops.cgen import (
    I32,
    I64,
    SPIKE,
    CEmitter,
    c_array,
    c_ints,
    index,
    loops,
    strides,
    tap_ranges,
)
from hqc.intops.onnxgen import I64_MIN, OnnxBuilder, windows_gather
from hqc.intops.weights import pad_spatial, windows
from hqc.ir import Graph, Node


def maxpool_int(x: np.ndarray, kernel: list[int], strides: list[int], pads: list[int]) -> np.ndarray:
    nd = len(kernel)
    xp = pad_spatial(np.asarray(x, np.int64), pads, nd, I64_MIN)
    win = windows(xp, kernel, strides, [1] * nd)
    return win.max(axis=tuple(range(win.ndim - nd, win.ndim)))


def sumpool_int(x: np.ndarray, kernel: list[int], strides: list[int], pads: list[int]) -> np.ndarray:
    """Window sums of x (B, C, *sp) with zero padding → (B, C, *out)."""
    nd = len(kernel)
    xp = pad_spatial(np.asarray(x, np.int64), pads, nd, 0)
    win = windows(xp, kernel, strides, [1] * nd)
    return win.sum(axis=tuple(range(win.ndim - nd, win.ndim)))


def valid_counts(sp: tuple[int, ...], kernel: list[int], strides: list[int], pads: list[int]) -> np.ndarray:
    """Per output position, how many of its window's elements lie inside the input
    (the rest is padding): (*out) int64."""
    ones = np.ones((1, 1) + tuple(int(d) for d in sp), np.int64)
    return sumpool_int(ones, kernel, strides, pads)[0, 0]


def _channel_sign(node: Node, rank: int) -> np.ndarray | None:
    """The MaxPool's per-channel ±1 as an array broadcastable to (…, C, *sp), or None."""
    if "sign" not in node.attrs:
        return None
    sg = np.asarray(node.attrs["sign"], np.int64).reshape(-1)
    return sg.reshape((-1,) + (1,) * (rank - 2))


@register
class MaxPool(IntOp):
    name = "MaxPool"
    attrs = {"kernel_shape": "ints", "strides": "ints", "pads": "ints", "sign": "array?"}

    def validate(self, node: Node) -> None:
        if "sign" in node.attrs:
            sg = np.asarray(node.attrs["sign"])
            if sg.ndim != 1 or not np.isin(sg, (-1, 1)).all():
                raise self.error(node, "sign must hold one -1 or 1 per channel")

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        if "sign" in node.attrs and np.asarray(node.attrs["sign"]).size != g.shape(node.inputs[0])[1]:
            raise self.error(node, f"{np.asarray(node.attrs['sign']).size} signs for "
                                   f"{g.shape(node.inputs[0])[1]} channels")
        return [ins[0]]

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        x = xs[0]
        g, b = x.shape[:2]
        sg = _channel_sign(node, x.ndim - 1)
        if sg is not None:
            x = x * sg  # min(x) = −max(−x) in the channels with sign −1
        y = maxpool_int(x.reshape((g * b,) + x.shape[2:]), list(node.attrs["kernel_shape"]),
                        list(node.attrs["strides"]), list(node.attrs["pads"]))
        y = y.reshape((g, b) + y.shape[1:])
        return y if sg is None else y * sg

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        x = node.inputs[0]
        shape = tuple(g.shape(x))
        k = list(node.attrs["kernel_shape"])
        base = node.outputs[0]
        sg = _channel_sign(node, len(shape))
        if sg is not None:
            x = b.op("Mul", [x, b.i64(sg, base + "_sign")], base)
        win, osp = windows_gather(b, x, shape, k, list(node.attrs["strides"]), list(node.attrs["pads"]),
                                  [1] * len(k), I64_MIN, base, False)
        m = b.op("ReduceMax", [win], base, axes=[3], keepdims=0)
        if sg is None:
            b.op("Reshape", [m, b.i64([shape[0], shape[1], *osp])], base, out=node.outputs[0])
            return
        m = b.op("Reshape", [m, b.i64([shape[0], shape[1], *osp])], base)
        b.op("Mul", [m, b.i64(sg, base + "_sign")], base, out=node.outputs[0])

    def c(self, e: CEmitter, node: Node) -> None:
        _c_maxpool(e, node)


@register
class SumPool(IntOp):
    name = "SumPool"
    attrs = {"kernel_shape": "ints", "strides": "ints", "pads": "ints", "mult": "array?"}

    def validate(self, node: Node) -> None:
        k = list(node.attrs["kernel_shape"])
        if len(node.attrs["strides"]) != len(k) or len(node.attrs["pads"]) != 2 * len(k):
            raise self.error(node, "strides and pads do not match the kernel rank")
        if "mult" in node.attrs and np.any(np.asarray(node.attrs["mult"]) < 1):
            raise self.error(node, "mult must hold positive integers")

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        k = list(node.attrs["kernel_shape"])
        n = prod(k)
        if "mult" in node.attrs:
            sp = tuple(g.shape(node.inputs[0])[2:])
            mult = np.asarray(node.attrs["mult"], np.int64)
            cnt = valid_counts(sp, k, list(node.attrs["strides"]), list(node.attrs["pads"]))
            if mult.shape != cnt.shape:
                raise self.error(node, f"mult of shape {list(mult.shape)} for outputs {list(cnt.shape)}")
            n = max(n, int((mult * cnt).max()))  # the window sum (≤ k elements), then × mult
        lo, hi = with_zero(ins[0])
        return [(lo * n, hi * n)]

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        x = xs[0]
        g, b = x.shape[:2]
        y = sumpool_int(x.reshape((g * b,) + x.shape[2:]), list(node.attrs["kernel_shape"]),
                        list(node.attrs["strides"]), list(node.attrs["pads"]))
        y = y.reshape((g, b) + y.shape[1:])
        if "mult" in node.attrs:
            y = y * np.asarray(node.attrs["mult"], np.int64)
        return y

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        x = node.inputs[0]
        shape = tuple(g.shape(x))
        k = list(node.attrs["kernel_shape"])
        base = node.outputs[0]
        win, osp = windows_gather(b, x, shape, k, list(node.attrs["strides"]), list(node.attrs["pads"]),
                                  [1] * len(k), 0, base, False)
        m = b.op("ReduceSum", [win, b.i64([3])], base, keepdims=0)
        if "mult" not in node.attrs:
            b.op("Reshape", [m, b.i64([shape[0], shape[1], *osp])], base, out=node.outputs[0])
            return
        m = b.op("Reshape", [m, b.i64([shape[0], shape[1], *osp])], base)
        b.op("Mul", [m, b.i64(np.asarray(node.attrs["mult"], np.int64), base + "_mult")], base,
             out=node.outputs[0])

    def c(self, e: CEmitter, node: Node) -> None:
        _c_sumpool(e, node)


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


def _pool_geometry(e: CEmitter, node: Node) -> tuple[tuple[int, ...], tuple[int, ...], list[int], list[int], list[int]]:
    """(x shape, y shape, kernel, strides, pads) of a 1-D/2-D window pool, 1-D as height 1."""
    x, y = node.inputs[0], node.outputs[0]
    xs, ys = tuple(e.g.shape(x)), tuple(e.g.shape(y))
    k = list(node.attrs["kernel_shape"])
    st = list(node.attrs["strides"])
    pads = list(node.attrs["pads"])
    if len(k) == 1:
        xs, ys, k, st, pads = (xs[0], xs[1], 1, xs[2]), (ys[0], ys[1], 1, ys[2]), [1] + k, [1] + st, [0, pads[0], 0, pads[1]]
    if len(k) != 2:
        raise ModelError(f"C kernels: {len(k)}-D {node.op} (node {node.name!r})")
    return xs, ys, k, st, pads


def _pool_tables(e: CEmitter, xs: tuple[int, ...], ys: tuple[int, ...], k: list[int], st: list[int],
                 pads: list[int], row_tables: bool = True) -> str:
    """The clipped tap ranges of the row pass (unless `row_tables` is false) and the row
    ranges of the column pass; the tables' name prefix."""
    H, W, HO, WO = xs[2], xs[3], ys[2], ys[3]
    xr_ = tap_ranges(k[1], 1, pads[1], st[1], W, WO)
    fn_tab = f"mp{len(e.funcs)}"
    if row_tables:
        e.data += c_array(f"{fn_tab}_oxlo", "int32_t", [str(r[0]) for r in xr_])
        e.data += c_array(f"{fn_tab}_oxhi", "int32_t", [str(r[1]) for r in xr_])
        e.data += c_array(f"{fn_tab}_ixlo", "int32_t", [str(r[2]) for r in xr_])
    # output row oy takes the input rows [oy·S − P, oy·S − P + K) ∩ [0, H)
    rows = [(max(0, oy * st[0] - pads[0]), min(H, oy * st[0] - pads[0] + k[0])) for oy in range(HO)]
    e.data += c_array(f"{fn_tab}_iy0", "int32_t", [str(a * WO) for a, _ in rows])
    e.data += c_array(f"{fn_tab}_iy1", "int32_t", [str(b * WO) for _, b in rows])
    return fn_tab


def _plane_passes(ind: str, xs: tuple[int, ...], ys: tuple[int, ...], k: list[int], st: list[int], tab: str,
                  Y: str, init: str, row: str, col: str, oy_extra: tuple[str, str] = ("", ""),
                  post: list[str] | None = None) -> list[str]:
    """One plane's separable pass: a row pass over the window's columns into h, then a
    column pass over its rows into Y (`row`/`col`: the update statements)."""
    H, W, HO, WO = xs[2], xs[3], ys[2], ys[3]
    return [
        f"{ind}for (iy = 0, xr = xp, hr = 0; iy < {H}; iy++, xr += {W}, hr += {WO}) {{",
        f"{ind}    for (ox = 0; ox < {WO}; ox++) h[hr + ox] = {init};",
        f"{ind}    for (kx = 0; kx < {k[1]}; kx++)",
        f"{ind}        for (ox = {tab}_oxlo[kx], ix = xr + {tab}_ixlo[kx]; ox < {tab}_oxhi[kx]; ox++, ix += {st[1]})",
        f"{ind}            {row}",
        f"{ind}}}",
        f"{ind}for (oy = 0{oy_extra[0]}; oy < {HO}; oy++, yi += {WO}{oy_extra[1]}) {{",
        f"{ind}    for (ox = 0; ox < {WO}; ox++) {Y}[yi + ox] = {init};",
        f"{ind}    for (hr = {tab}_iy0[oy]; hr < {tab}_iy1[oy]; hr += {WO})",
        f"{ind}        for (ox = 0; ox < {WO}; ox++) {col}",
        *[f"{ind}    {ln}" for ln in (post or [])],
        f"{ind}}}",
    ]


def _row_pass_unrolled(X: str, typ: str, W: int, WO: int, K: int, S: int, P: int, init: str,
                       cmp: str) -> list[str] | None:
    """The max (cmp ">") or min ("<") row pass with the window's taps unrolled: each
    output whose window lies inside the row from its K inputs at once (spikes: OR / AND),
    the few at the borders from their valid inputs. None when the border is not small."""
    rng = tap_ranges(K, 1, P, S, W, WO)
    a, b = max(r[0] for r in rng), min(r[1] for r in rng)  # outputs every tap reaches
    if K < 2 or K > 8 or a >= b or a + WO - b > 4:
        return None

    def reduce(terms: list[str]) -> str:
        if not terms:
            return init
        if typ == SPIKE:
            return f" {'|' if cmp == '>' else '&'} ".join(terms)
        v = terms[0]
        for t in terms[1:]:
            v = f"({t} {cmp} {v} ? {t} : {v})"
        return v

    out = []
    for ox in [*range(a), *range(b, WO)]:
        terms = [f"{X}[xr + {lo_i + (ox - lo) * S}]" for lo, hi, lo_i in rng if lo <= ox < hi]
        out.append(f"h[hr + {ox}] = {reduce(terms)};")
    ix0 = a * S - P  # input of the first interior output's first tap
    terms = [f"{X}[ix]"] + [f"{X}[ix + {t}]" for t in range(1, K)]
    out.append(f"for (ox = {a}, ix = xr + {ix0}; ox < {b}; ox++, ix += {S}) h[hr + ox] = {reduce(terms)};")
    return out


def _c_maxpool(e: CEmitter, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    e.tensor(y)
    xs, ys, k, st, pads = _pool_geometry(e, node)
    N, C, H, W = xs
    X, Y = e.buf[x], e.buf[y]
    lo = {SPIKE: "0", I32: "INT32_MIN", I64: "INT64_MIN"}[e.typ[x]]
    # separable: a row pass (max over the window's columns) into a scratch plane, then a
    # column pass (max over the window's rows); each tap's output range is clipped to
    # the input beforehand, so the inner loops are contiguous and test-free
    typ = e.typ[x]
    # the row pass with the window unrolled where the border is small (then no tap tables)
    unrolled = _row_pass_unrolled(X, typ, xs[3], ys[3], k[1], st[1], pads[1], lo, ">") is not None
    tab = _pool_tables(e, xs, ys, k, st, pads, row_tables=not unrolled)
    kx = "" if unrolled else " kx,"

    def passes(ind: str, init: str, cmp: str) -> list[str]:
        row = f"h[hr + ox] = {X}[ix] {cmp} h[hr + ox] ? {X}[ix] : h[hr + ox];"
        col = f"{Y}[yi + ox] = h[hr + ox] {cmp} {Y}[yi + ox] ? h[hr + ox] : {Y}[yi + ox];"
        out = _plane_passes(ind, xs, ys, k, st, tab, Y, init, row, col)
        fast = _row_pass_unrolled(X, typ, xs[3], ys[3], k[1], st[1], pads[1], init, cmp)
        if fast is not None:  # the row pass's three lines (init, tap loop, update) replaced
            out[1:5] = [f"{ind}    {ln}" for ln in fast]
        return out

    body = [f"    HQC_PTR({typ}) h = {e.scratch(e.next_fn() + '_h', typ, H * ys[3], 'row pass of one plane')};"]
    decl = f"int32_t p, oy, ox, iy, ix,{kx} xp, xr, hr, yi;"
    if "sign" not in node.attrs:
        body.append(f"    for (p = 0, xp = 0, yi = 0; p < {N * C}; p++, xp += {H * W}) {{")
        body += passes("        ", lo, ">")
    else:  # channels with sign −1: the min (initialised with the type's maximum)
        hi = {SPIKE: "UINT8_MAX", I32: "INT32_MAX", I64: "INT64_MAX"}[typ]
        sg = np.asarray(node.attrs["sign"], np.int64).reshape(-1)
        e.data += c_array(f"{tab}_sgn", "int8_t", [str(int(v)) for v in sg])
        body.append(f"    for (p = 0, c = 0, xp = 0, yi = 0; p < {N * C}; p++, xp += {H * W}, "
                    f"c = c + 1 == {C} ? 0 : c + 1) {{")
        body.append(f"        if ({tab}_sgn[c] > 0) {{")
        body += passes("            ", lo, ">")
        body.append("        } else {")
        body += passes("            ", hi, "<")
        body.append("        }")
        decl = f"int32_t p, c, oy, ox, iy, ix,{kx} xp, xr, hr, yi;"
    body.append("    }")
    e.simple(node, body, decl)


def _c_sumpool(e: CEmitter, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    e.tensor(y)
    xs, ys, k, st, pads = _pool_geometry(e, node)
    N, C, H, W = xs
    X, Y = e.buf[x], e.buf[y]
    tab = _pool_tables(e, xs, ys, k, st, pads)
    row = f"h[hr + ox] += {X}[ix];"
    col = f"{Y}[yi + ox] += h[hr + ox];"
    extra, post = ("", ""), None
    if "mult" in node.attrs:
        e.data += c_array(f"{tab}_mult", e.typ[y], c_ints(np.asarray(node.attrs["mult"], np.int64)))
        extra = (", mi = 0", f", mi += {ys[3]}")
        post = [f"for (ox = 0; ox < {ys[3]}; ox++) {Y}[yi + ox] *= {tab}_mult[mi + ox];"]
    body = [f"    HQC_PTR({e.typ[y]}) h = {e.scratch(e.next_fn() + '_h', e.typ[y], H * ys[3], 'row sums of one plane')};",
            f"    for (p = 0, xp = 0, yi = 0; p < {N * C}; p++, xp += {H * W}) {{"]
    body += _plane_passes("        ", xs, ys, k, st, tab, Y, "0", row, col, extra, post)
    body.append("    }")
    e.simple(node, body, "int32_t p, oy, ox, iy, ix, kx, xp, xr, hr, yi, mi;")


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
