"""Arithmetic ops of the integer dialect: Add, Sub, Shl, MatMul, Requant, LinComb, Mul.

    Add/Sub(x, y)   elementwise, same shapes;   Shl(x; n) = x · 2^n
    MatMul(x, y)    batched integer matrix product (numpy broadcasting)
    Requant(x)      L = x · mult + bias   (int64 logits; mult, bias per channel)
    LinComb(x_1..x_n; mult, bias, shift)
                    Z = ⌊(Σ_i M_i ⊙ X_i + C) / 2^s⌋   (same shapes; M_i = mult[i], C = bias:
                    integer arrays broadcast to the tensor; s = shift ≥ 0). With
                    C = 2^(s−1) + c this is Σ M_i X_i / 2^s + c rounded half up (toward +∞):
                    the dyadic rescaling of integer-only inference
    Mul(x, y)       elementwise product, numpy broadcasting (right-aligned)

ONNX: Add / Sub / Mul by 2^n / MatMul (int64) / Mul + Add; LinComb as Mul, Add and the
floor division (a − Mod(a, 2^s)) / 2^s (exact); Mul as Mul. C: elementwise loops; MatMul
row by row, skipping zeros of the left side (spikes select rows, never multiply);
Requant as a shift-and-add constant multiply; LinComb as a multiply-add in int32 or int64
(from the proven bound of its partial sums) and an arithmetic right shift; Mul with a
spike operand as a mask (`x & -s`, or `s & t` for two spike tensors), never a multiply.
"""

from __future__ import annotations

import numpy as np

from hqc.errors import ModelError
from hqc.intops.base import INT64_SAFE, Interval, IntOp, mul, prod, register, times
from hqc.intops.cgen import (
    I32,
    I64,
    SHL,
    SPIKE,
    CEmitter,
    broadcast_strides,
    c_array,
    c_ints,
    index,
    loops,
    strides,
    wide,
)
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


def _aligned(x: np.ndarray, rank: int) -> np.ndarray:
    """A (G, *shape) array with size-1 axes inserted after G up to `rank` tensor axes."""
    return x.reshape((x.shape[0],) + (1,) * (rank - (x.ndim - 1)) + x.shape[1:])


def lincomb_terms(node: Node, ins: list[Interval]) -> tuple[Interval, int]:
    """(range of Σ_i M_i·X_i + C before the shift, largest |partial sum| the kernel forms)
    over every element, for X_i in ins[i]; exact (Python integers)."""
    m = np.asarray(node.attrs["mult"]).astype(object)
    c = np.asarray(node.attrs["bias"]).astype(object)
    shape = np.broadcast_shapes(m.shape[1:], c.shape)
    lo = np.broadcast_to(c, shape).copy()
    hi = lo.copy()
    top = np.abs(lo)
    for mi, (xlo, xhi) in zip(m, ins, strict=True):
        a, b = mi * int(xlo), mi * int(xhi)
        lo = lo + np.where(a < b, a, b)
        hi = hi + np.where(a < b, b, a)
        top = top + np.abs(mi) * max(abs(int(xlo)), abs(int(xhi)))
    return (int(lo.min()), int(hi.max())), int(top.max())


@register
class LinComb(IntOp):
    """Z = ⌊(Σ_i M_i ⊙ X_i + C) / 2^s⌋ (see the module docstring)."""

    name = "LinComb"
    attrs = {"mult": "array", "bias": "array", "shift": "int"}
    arity = (1, None)

    def validate(self, node: Node) -> None:
        m, c = node.attrs["mult"], node.attrs["bias"]
        if not 0 <= int(node.attrs["shift"]) < 62:
            raise self.error(node, f"shift {node.attrs['shift']} outside 0..61")
        if m.dtype.kind not in "iu" or c.dtype.kind not in "iu":
            raise self.error(node, "mult and bias must be integer arrays")
        if m.ndim < 1 or m.shape[0] != len(node.inputs):
            raise self.error(node, f"mult has shape {list(m.shape)}: one multiplier array per input "
                                   f"({len(node.inputs)}) expected")
        if c.ndim != m.ndim - 1:
            raise self.error(node, f"bias of rank {c.ndim}, multipliers of rank {m.ndim - 1}")

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        (lo, hi), top = lincomb_terms(node, ins)
        if top >= INT64_SAFE:
            raise self.error(node, f"partial sums up to {top} exceed int64")
        s = int(node.attrs["shift"])
        return [(lo >> s, hi >> s)]

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        m = np.asarray(node.attrs["mult"], np.int64)
        c = np.asarray(node.attrs["bias"], np.int64)
        acc = np.zeros((), np.int64) + c[None]
        for mi, x in zip(m, xs, strict=True):
            acc = acc + mi[None] * x
        return acc >> int(node.attrs["shift"])

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        out = node.outputs[0]
        m = np.asarray(node.attrs["mult"], np.int64)
        c = np.asarray(node.attrs["bias"], np.int64)
        s = int(node.attrs["shift"])
        acc = None
        for i, (mi, x) in enumerate(zip(m, node.inputs, strict=True)):
            term = x if np.all(mi == 1) else b.op("Mul", [x, b.const(mi, f"{out}_m{i}")], out)
            acc = term if acc is None else b.op("Add", [acc, term], out)
        if np.any(c != 0):
            acc = b.op("Add", [acc, b.const(c, out + "_c")], out)
        if s == 0:
            b.op("Identity", [acc], out, out=out)
            return
        p = b.i64(1 << s)
        # ONNX integer Div truncates toward zero; subtracting the (non-negative) Mod first
        # makes the division exact, so the result is the floor
        r = b.op("Sub", [acc, b.op("Mod", [acc, p], out, fmod=0)], out)
        b.op("Div", [r, p], out, out=out)

    def c(self, e: CEmitter, node: Node) -> None:
        _c_lincomb(e, node)


@register
class Mul(IntOp):
    """Elementwise product with numpy broadcasting (right-aligned)."""

    name = "Mul"
    arity = (2, 2)

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        return [mul(ins[0], ins[1])]

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        rank = max(x.ndim for x in xs) - 1
        return _aligned(xs[0], rank) * _aligned(xs[1], rank)

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        b.op("Mul", list(node.inputs), node.outputs[0], out=node.outputs[0])

    def c(self, e: CEmitter, node: Node) -> None:
        _c_mul(e, node)


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
        f"    HQC_PTR({w}) r = {e.scratch(e.next_fn() + '_r', w, N, 'one output row')};",
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


def _c_lincomb(e: CEmitter, node: Node) -> None:
    y = node.outputs[0]
    e.tensor(y)
    shape = tuple(e.g.shape(y))
    m = np.asarray(node.attrs["mult"], np.int64)
    c = np.asarray(node.attrs["bias"], np.int64)
    s = int(node.attrs["shift"])
    _, top = lincomb_terms(node, [e.bounds[t] for t in node.inputs])
    w = I64 if top >= 2**31 else I32
    fn = e.next_fn()
    pshape = np.broadcast_shapes(m.shape[1:], c.shape)
    pstr = broadcast_strides(pshape, shape)

    tables: list[str] = []

    def coef(name: str, a: np.ndarray) -> str:
        a = np.broadcast_to(a, pshape)
        if np.all(a == a.reshape(-1)[0]):
            return f"({w}){c_ints(a.reshape(-1)[:1])[0]}"
        e.data += c_array(f"{fn}_{name}", I64 if np.abs(a).max() >= 2**31 else I32, c_ints(a))
        tables.append(name)
        return f"({w}){fn}_{name}[pi]"

    terms = [] if np.all(c == 0) else [coef("c", c)]
    for i, (mi, x) in enumerate(zip(m, node.inputs, strict=True)):
        if np.all(mi == 0):
            continue
        k = coef(f"m{i}", mi)
        xv = f"{e.buf[x]}[yi]"
        # a spike selects its multiplier: a mask, no multiply
        terms.append(f"({k} & -({w}){xv})" if e.typ[x] == SPIKE else f"{k} * ({w}){xv}")
    expr = " + ".join(terms) or f"({w})0"
    if s:
        expr = f"({expr}) >> {s}"  # arithmetic shift (checked in the prelude): the floor
    opens, closes, ind, (pi,), decl = _bcast_loops(shape, [pstr])
    body = opens + [f"{ind}{e.buf[y]}[yi] = ({e.typ[y]})({expr.replace('[pi]', f'[{pi}]')});",
                    f"{ind}yi++;"] + closes
    e.simple(node, body, decl)


def _c_mul(e: CEmitter, node: Node) -> None:
    a, b = node.inputs
    y = node.outputs[0]
    e.tensor(y)
    shape = tuple(e.g.shape(y))
    sa, sb = broadcast_strides(e.shape(a), shape), broadcast_strides(e.shape(b), shape)
    w = wide(e.typ[y])
    opens, closes, ind, (ia, ib), decl = _bcast_loops(shape, [sa, sb])
    A, B = f"{e.buf[a]}[{ia}]", f"{e.buf[b]}[{ib}]"
    ta, tb = e.typ[a], e.typ[b]
    if ta == SPIKE and tb == SPIKE:
        expr = f"{A} & {B}"
    elif tb == SPIKE:
        expr = f"({w}){A} & -({w}){B}"  # B is 0/1: a mask, no multiply
    elif ta == SPIKE:
        expr = f"({w}){B} & -({w}){A}"
    else:
        expr = f"({w}){A} * ({w}){B}"
    body = opens + [f"{ind}{e.buf[y]}[yi++] = ({e.typ[y]})({expr});"] + closes
    e.simple(node, body, decl)


def _bcast_loops(shape: tuple[int, ...], strds: list[list[int]]) -> tuple[list[str], list[str], str, list[str], str]:
    """Nested loops over `shape` with one incremental offset per operand (strides `strds[j]`,
    0 along broadcast axes): (opens, closes, indent, the operands' offset expressions, decl).
    No index multiplies: each level starts from its parent's offset and adds its stride."""
    opens, closes, names, decl = [], [], [], [f"d{i}" for i in range(len(shape))]
    cur = ["0"] * len(strds)
    ind = "    "
    for i, d in enumerate(shape):
        init, step = [f"d{i} = 0"], [f"d{i}++"]
        for j, st in enumerate(strds):
            if st[i] == 0:
                continue
            v = f"o{j}_{i}"
            decl.append(v)
            init.append(f"{v} = {cur[j]}")
            step.append(f"{v} += {st[i]}")
            cur[j] = v
        opens.append(f"{ind}for ({', '.join(init)}; d{i} < {d}; {', '.join(step)}) {{")
        closes.insert(0, f"{ind}}}")
        ind += "    "
    names = cur
    return opens, closes, ind, names, "int32_t " + ", ".join(decl) + ", yi = 0;"
