"""Lowering rules for affine and elementwise arithmetic.

    BatchNormalization / Mul / Div / Add / Sub by constants / Neg
                                            → a, b updated; no integer op
    Add(x, y) / Sub(x, y) of integer tensors (residuals)
                                            → Add / Sub (+ Shl when a_y / a_x = 2^k)
    Add(x, y) / Sub(x, y), other scales (membrane shortcuts: BN outputs of two layers)
                                            → LinComb: Z = ⌊(M_x⊙X ± M_y⊙Y + 2^(s−1)) / 2^s⌋
                                              on a common per-channel unit a_z (exact, s = 0,
                                              when the scale ratios are integers)
    Mul(x, y) of integer tensors without offset (spike-driven attention q ⊙ kv, masks)
                                            → Mul (broadcasting), a = a_x ⊙ a_y

`common_scale` puts several views on one scale (Concat, reductions over a channel axis).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from hqc.intops.base import INT64_SAFE
from hqc.ir import Node
from hqc.lowering.affine import Sym, arr, compact, is_scalar, round_half_up, scalar
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


# --------------------------------------------------------------------------- rescaling
MULT_GUARD = 2  # the multipliers carry ⌈log2(Σ_i max|X_i|)⌉ + MULT_GUARD fraction bits
SUM_PRE_BITS = 57  # sum_bits + pre_bits: every partial sum stays below 2^62 (see _pre_round)
MOVES = frozenset({"Reshape", "Transpose", "MaxPool", "Slice", "Gather", "Concat", "Pad", "Expand"})


def extra_bits(res: int) -> int:
    """E: the fraction bits a tensor gets below its own unit when it enters a rescaled sum
    (the resolution bits: 16 by default; an accumulator's unit, a weight step, can be a
    tenth of the next threshold, so fewer bits flip spikes downstream — measured on
    SpikingJelly's MaxFormer in docs/lowering.md). A tensor that already is a rescaled sum
    (a LinComb, possibly moved) keeps its unit, so chains of shortcuts do not grow."""
    return res


def sum_bits(res: int) -> int:
    """A rescaled tensor spans at most 2^sum_bits units a_z over its proven range: 24 up
    to the default resolution, res + 8 beyond, at most 28 (so that a sum is never wider
    than pre_bits when it enters the next one, and Z always fits int32)."""
    return min(28, max(24, res + 8))


def pre_bits(res: int) -> int:
    """Operands wider than 2^pre_bits are first rounded to that width (_pre_round)."""
    return SUM_PRE_BITS - sum_bits(res)


def _ceil_log2(x: Fraction) -> int:
    """The smallest k with 2^k ≥ x (x > 0)."""
    k = x.numerator.bit_length() - x.denominator.bit_length()
    while Fraction(2) ** k < x:
        k += 1
    while Fraction(2) ** (k - 1) >= x:
        k -= 1
    return k


@dataclass
class _Unit:
    """The common unit a_z per group (one element of the broadcast scale array, the
    uniform axes collapsed; object arrays of exact Fractions): `exact` when every scale
    is an integer multiple of it in every group (else None), and the `rounded` one."""

    exact: np.ndarray | None
    rounded: np.ndarray


def _fr(a: np.ndarray) -> np.ndarray:
    """float64 array → object array of exact Fractions."""
    return np.vectorize(Fraction, otypes=[object])(np.asarray(a, np.float64))


def _choose_unit(scales: list[np.ndarray], maxes: list[int], fine: list[bool], res: int,
                 uniform: tuple[int, ...], summed: bool) -> _Unit:
    """Per group, with A_p the smallest nonzero |a| of the operands (over the uniform axes
    too) and Zmax the largest real magnitude (Σ_i |a_i|·max|X_i| when `summed`, else the
    largest |a_i|·max|X_i|):

    exact:   A_p · 2^-e, the fewest e ≤ res making every a / a_z an integer of magnitude
             ≤ 2^res;
    rounded: A_p · 2^k, the largest such unit not above any operand's |a_i|·2^-E (E =
             extra_bits(res) where fine[i], else 0), made coarser when needed so that
             Zmax / a_z ≤ 2^sum_bits(res)."""
    pshape = tuple(np.broadcast_shapes(*(a.shape for a in scales)))
    fa = [np.broadcast_to(_fr(a), pshape) for a in scales]
    gshape = tuple(1 if i in uniform else d for i, d in enumerate(pshape))
    exact = np.empty(gshape, object)
    rounded = np.empty(gshape, object)
    extra = Fraction(1, 2 ** extra_bits(res))
    all_exact = True
    for g in np.ndindex(gshape):
        sl = tuple(slice(None) if i in uniform else g[i] for i in range(len(pshape)))
        vals = [[abs(v) for v in np.asarray(f[sl]).reshape(-1)] for f in fa]  # operand → |a| over the group
        nz = [v for row in vals for v in row if v != 0]
        if not nz:
            exact[g] = rounded[g] = Fraction(1)
            continue
        ap = min(nz)
        n = min(v * (extra if f else 1) for row, f in zip(vals, fine, strict=True) for v in row if v != 0)
        k = -_ceil_log2(ap / n)
        terms = [[v * m for v in row] for row, m in zip(vals, maxes, strict=True)]
        zmax = max(sum(col) for col in zip(*terms, strict=True)) if summed else max(max(t) for t in terms)
        if zmax > 0:
            k = max(k, _ceil_log2(zmax / ap) - sum_bits(res))
        rounded[g] = ap * Fraction(2) ** k
        ratios = [v / ap for v in nz]
        e = max(_ceil_log2(Fraction(r.denominator)) for r in ratios)
        if e <= res and all((r * 2**e).denominator == 1 for r in ratios) and max(ratios) * 2**e <= 2**res:
            exact[g] = ap / 2**e
        else:
            all_exact = False
    return _Unit(exact if all_exact else None, rounded)


def _compact_tail(m: np.ndarray) -> np.ndarray:
    """Shrink the axes after the first along which every entry is constant."""
    for ax in range(1, m.ndim):
        if m.shape[ax] > 1 and np.all(m == m.take([0], axis=ax)):
            m = m.take([0], axis=ax)
    return m


def _mults(scales: list[np.ndarray], maxes: list[int], unit: np.ndarray, shift: int) -> np.ndarray:
    """M_i = round_half_up(a_i / a_z · 2^shift) (0 for an operand that is always 0),
    stacked (n, *pshape) int64."""
    pshape = tuple(np.broadcast_shapes(unit.shape, *(a.shape for a in scales)))
    u = np.broadcast_to(unit, pshape)
    out = []
    for a, mx in zip(scales, maxes, strict=True):
        fa = np.broadcast_to(_fr(a), pshape)
        m = np.vectorize(lambda x, z: round_half_up(x / z * 2**shift), otypes=[object])(fa, u)
        out.append(m * int(mx != 0))
    return _compact_tail(np.stack(out).astype(np.int64))


def _float_unit(u: np.ndarray) -> np.ndarray:
    """The units as float64 (exact: each is a float64 scale times a power of two)."""
    out = np.vectorize(float, otypes=[np.float64])(u)
    assert all(Fraction(float(v)) == f for v, f in zip(out.reshape(-1), u.reshape(-1), strict=True))
    return out


def _span(s: Sym) -> int:
    return max(abs(s.lo), abs(s.hi))


def _is_sum(lw: Lowerer, t: str) -> bool:
    """t is a rescaled sum (a LinComb output), possibly moved (reshaped, pooled, …)."""
    while (p := lw.out.producer(t)) is not None:
        if p.op == "LinComb":
            return True
        if p.op not in MOVES:
            return False
        t = p.inputs[0]
    return False


def _lincomb(lw: Lowerer, inputs: list[str], base: str, m: np.ndarray, shift: int, shape: tuple[int, ...]) -> str:
    rank = len(shape)
    c = np.full((1,) * rank, (1 << shift) >> 1, np.int64)  # 2^(s−1): round half up
    m = m.reshape((m.shape[0],) + (1,) * (rank - (m.ndim - 1)) + m.shape[1:])
    return lw.emit("LinComb", inputs, base, {"mult": m, "bias": c, "shift": int(shift)}, shape)


def _pre_round(lw: Lowerer, s: Sym) -> Sym:
    """An operand wider than P = pre_bits bits (an fp32 layer's accumulator), first rounded
    half up to that width: (X + 2^(r−1)) >> r, a → a·2^r, so that its multiplier (s ≤ P + 4
    fraction bits) times it stays below 2^(S + P + 4) ≤ 2^61 (S = sum_bits). As
    a·max|X| ≤ Zmax ≤ 2^S·a_z and max|X| ≥ 2^(P + r − 1), the error a·2^(r−1) is at most
    2^(S − P)·a_z = 2^(2S − 57)·a_z: a_z/512 up to the default resolution."""
    r = _span(s).bit_length() - pre_bits(lw.resolution_bits)
    if r <= 0:
        return s
    t = _lincomb(lw, [s.t], s.t + "_pre", np.ones((1,) + (1,) * len(s.shape), np.int64), r, s.shape)
    lo, hi = lw.bound(t)
    return Sym(t, s.a * 2.0**r, s.b, s.shape, lo, hi, None)


def _shift_for(spans: list[int]) -> int:
    """s = ⌈log2(Σ_i max|X_i|)⌉ + MULT_GUARD: the multipliers' rounding costs at most
    Σ_i max|X_i| · 2^-(s+1) ≤ 1/8 of a unit."""
    return max(0, _ceil_log2(Fraction(max(1, sum(spans)))) + MULT_GUARD)


def _exact_mults(scales: list[np.ndarray], maxes: list[int], unit: np.ndarray) -> np.ndarray | None:
    """The s = 0 multipliers a_i / a_z (integers by construction) when their sums fit."""
    m = _mults(scales, maxes, unit, 0)
    top = sum(int(np.abs(mi).max()) * mx for mi, mx in zip(m, maxes, strict=True))
    return m if top < INT64_SAFE else None


def lin_comb(lw: Lowerer, node: Node, syms: list[Sym], signs: list[int]) -> Sym:
    """Σ_i sign_i · view_i as ONE integer tensor Z on a common per-channel unit a_z > 0
    (_choose_unit), recorded as the node's output:

        exact (every a_i / a_z an integer ≤ 2^res, a_z = A_p·2^-e):
            Z = Σ_i M_i ⊙ X_i,  M_i = sign_i·a_i / a_z                        (no rounding)
        otherwise (res = lw.resolution_bits):
            Z = ⌊(Σ_i M_i ⊙ X_i + 2^(s−1)) / 2^s⌋,  M_i = round_half_up(sign_i·a_i/a_z · 2^s),
            s = ⌈log2(Σ_i max|X_i|)⌉ + MULT_GUARD;
            |a_z·Z − Σ_i sign_i·a_i·X_i| ≤ a_z·(1/2 + Σ_i max|X_i|·2^-(s+1)) ≤ (5/8)·a_z,
            plus 2^(2·sum_bits − 57)·a_z (a_z/512 by default) per operand pre-rounded by
            _pre_round.
    The offsets stay in the view: b_z = Σ_i sign_i·b_i."""
    res = lw.resolution_bits
    shape = syms[0].shape
    b = sum((sg * s.b for s, sg in zip(syms, signs, strict=True)), start=np.zeros((1,) * len(shape)))
    scales = [sg * s.a for s, sg in zip(syms, signs, strict=True)]
    spans = [_span(s) for s in syms]
    unit = _choose_unit(scales, spans, [not _is_sum(lw, s.t) for s in syms], res, (), summed=True)
    m = None if unit.exact is None else _exact_mults(scales, spans, unit.exact)
    if m is not None:
        t = _lincomb(lw, [s.t for s in syms], node.outputs[0], m, 0, shape)
        return lw.put(node, t, compact(_float_unit(unit.exact)), compact(b))
    syms = [_pre_round(lw, s) for s in syms]
    spans = [_span(s) for s in syms]
    shift = _shift_for(spans)
    m = _mults([sg * s.a for s, sg in zip(syms, signs, strict=True)], spans, unit.rounded, shift)
    t = _lincomb(lw, [s.t for s in syms], node.outputs[0], m, shift, shape)
    return lw.put(node, t, compact(_float_unit(unit.rounded)), compact(b))


def common_scale(lw: Lowerer, node: Node, syms: list[Sym], axis: int | None = None,
                 uniform_axes: tuple[int, ...] = ()) -> list[Sym]:
    """The views `syms` (same rank) rewritten onto one shared scale a_z, so that their
    integer tensors can be concatenated (or summed): each view whose a differs from a_z
    gets one LinComb(X_i) (the rules of `lin_comb` for a single operand, each with its own
    shift), the others are returned as they are. Offsets b are left to the caller (the
    rescaling does not touch them: a concatenation concatenates them, a sum adds them).

    axis:          a concatenation axis: when some a varies along it, concatenating the a
                   arrays along it is already exact and the views are returned unchanged;
                   otherwise they get one common a (constant along it, as the inputs')
    uniform_axes:  axes along which the common a must be constant as well (a reduction over
                   them, e.g. the channel mean of a per-channel-scaled tensor)

    Exact (integer multiples, s = 0) when possible; else each element is rounded half up,
    within (5/8)·a_z (+ 2^(2·sum_bits − 57)·a_z when pre-rounded) of a_i·X_i."""
    rank = len(syms[0].shape)
    if any(len(s.shape) != rank for s in syms):
        raise lw.unsupported(node, f"operands of ranks {[len(s.shape) for s in syms]} on a common scale")
    if axis is not None and any(s.a.shape[axis] != 1 for s in syms):
        return list(syms)
    full = [np.asarray(s.a, np.float64) for s in syms]
    pshape = tuple(np.broadcast_shapes(*(a.shape for a in full)))
    first = np.broadcast_to(full[0], pshape)
    if all(np.array_equal(np.broadcast_to(a, pshape), first) for a in full) and \
            all(np.all(first == first.take([0], axis=ax)) for ax in uniform_axes):
        return list(syms)
    res = lw.resolution_bits
    spans = [_span(s) for s in syms]
    fine = [not _is_sum(lw, s.t) for s in syms]
    unit = _choose_unit(full, spans, fine, res, tuple(uniform_axes), summed=False)
    ms = None if unit.exact is None else [_exact_mults([a], [mx], unit.exact) for a, mx in zip(full, spans, strict=True)]
    out = []
    if ms is not None and all(m is not None for m in ms):
        az = compact(_float_unit(unit.exact))
        for s, m in zip(syms, ms, strict=True):
            t = s.t if np.all(m == 1) else _lincomb(lw, [s.t], node.outputs[0] + "_rescale", m, 0, s.shape)
            out.append(Sym(t, az, s.b, s.shape, *lw.bound(t), s.layer if t == s.t else None))
        return out
    az = compact(_float_unit(unit.rounded))
    for s in syms:
        if np.array_equal(*np.broadcast_arrays(s.a, az)):
            out.append(Sym(s.t, az, s.b, s.shape, s.lo, s.hi, s.layer))
            continue
        p = _pre_round(lw, s)
        shift = _shift_for([_span(p)])
        m = _mults([p.a], [_span(p)], unit.rounded, shift)
        t = _lincomb(lw, [p.t], node.outputs[0] + "_rescale", m, shift, s.shape)
        out.append(Sym(t, az, s.b, s.shape, *lw.bound(t), None))
    return out


def _view(lw: Lowerer, node: Node, s: Sym, a: np.ndarray, b: np.ndarray) -> None:
    lw.sym[node.outputs[0]] = Sym(s.t, compact(a), compact(b), s.shape, s.lo, s.hi, s.layer)


@rule("Mul")
def mul(lw: Lowerer, node: Node) -> None:
    bc = _binary_const(lw, node)
    if bc is None:
        _product(lw, node)
        return
    s, c, _ = bc
    _view(lw, node, s, s.a * c, s.b * c)


def _product(lw: Lowerer, node: Node) -> None:
    """x ⊙ y of two integer tensors (numpy broadcasting), both views without offset:
    (a_x·X) ⊙ (a_y·Y) = (a_x ⊙ a_y)·(X ⊙ Y) → Mul (exact); spikes stay spikes."""
    x, y = lw.sym_of(node, 0), lw.sym_of(node, 1)
    if np.any(x.b != 0) or np.any(y.b != 0):
        raise lw.unsupported(node, "elementwise product of tensors with an offset (a·X + b, b ≠ 0); "
                                   "only a·X ⊙ a'·Y (spikes, sums of spikes, products) is supported")
    out_shape = lw.shape(node.outputs[0])
    try:
        shape = tuple(np.broadcast_shapes(x.shape, y.shape))
    except ValueError:
        shape = None
    if shape != tuple(out_shape):
        raise lw.unsupported(node, f"operands of shapes {list(x.shape)} and {list(y.shape)} do not "
                                   f"broadcast to the output {list(out_shape)}")
    rank = len(out_shape)
    t = lw.emit("Mul", [x.t, y.t], node.outputs[0], {}, out_shape)
    lw.put(node, t, compact(arr(x.a, rank) * arr(y.a, rank)), arr(0.0, rank))


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
    """x ± c: a view. x ± y of integer tensors, in this order:
        scalar scales a_y / a_x = 2^k (k ≥ 0 or < 0)   → Shl + Add/Sub (exact)
        equal per-channel scales                      → Add/Sub (exact)
        two views of the same integer tensor          → a view, a_x ± a_y (exact)
        any other scales                              → LinComb (lin_comb: exact when the
                                                        ratios are integers, else dyadic)"""
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
            _rescaled_sum(lw, node, x, y, sign)
            return
        if k > 0:
            yt = lw.emit("Shl", [y.t], node.outputs[0] + "_shl", {"n": k}, y.shape)
        elif k < 0:
            xt = lw.emit("Shl", [x.t], node.outputs[0] + "_shl", {"n": -k}, x.shape)
            a = y.a
    elif not np.array_equal(*np.broadcast_arrays(x.a, y.a)):
        _rescaled_sum(lw, node, x, y, sign)
        return
    b = x.b + y.b if sign > 0 else x.b - y.b
    t = lw.emit("Add" if sign > 0 else "Sub", [xt, yt], node.outputs[0], {}, x.shape)
    lw.put(node, t, a, compact(b))


def _rescaled_sum(lw: Lowerer, node: Node, x: Sym, y: Sym, sign: int) -> None:
    if x.t == y.t:  # a·X ± a'·X = (a ± a')·X: no integer op at all
        a = x.a + sign * y.a
        b = x.b + sign * y.b
        lw.sym[node.outputs[0]] = Sym(x.t, compact(a), compact(b), x.shape, x.lo, x.hi, None)
        return
    lin_comb(lw, node, [x, y], [1, sign])


@rule("Add")
def add(lw: Lowerer, node: Node) -> None:
    _add_sub(lw, node, 1)


@rule("Sub")
def sub(lw: Lowerer, node: Node) -> None:
    _add_sub(lw, node, -1)
