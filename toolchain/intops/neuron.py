"""The integer LIF neuron of the dialect.

    S [, H] = LIF(acc)   per step t (time on `time_axis`), per element, with the broadcast
                         per-channel parameters sign σ, bias B, theta Θ, reset_by RB, v_init V0:

        N = m·P + X·2^xs + r,   X·2^xs = σ·acc_t·2^(F+xs) + B·2^xs
                                              m = decay_mult (default 2^k − 1)
                                              r = 2^(k−1) if round else 0
        H = ⌊N / 2^k⌋  [− s_(t−1)·RB]         (the bracket for reset = "lagged" only)
        s = H ≥ Θ
        P = s ? 0 : H            reset = "hard" (default)
            H − s·RB             reset = "subtract"
            H                    reset = "lagged" (the subtraction comes at the next step)

    P = V0 before the first step (default 0), s_(−1) = 0. H, the charged membrane of every
    step before its fire and reset, is the optional second output (same shape as S).

Attributes: `time_axis`, `tau_shift` k, `x_shift` xs, `frac_bits` F, per-channel int64
arrays `bias`, `theta`, `sign` (broadcast against one time step; F may be negative when
F + xs ≥ 0: the input then enters the rounding of the decay), `mem_bits` (the proven
width of every membrane partial sum, which picks int32/int64 in C), `layer`, `neuron`
(names for the records); optional `decay_mult` m, `round` (0: every division by 2^k is
exact, checked at every step; 1: round half up), `reset` ("hard" | "subtract" |
"lagged"), `reset_by` (array; required for the two subtractive resets), `v_init` (array).
The attributes of the first integer LIF (τ = 2^k, hard reset to 0, V0 = 0) are the
defaults, so those nodes carry no optional attribute and keep their ONNX and C forms.
The lowering (hqc.lowering.neurons) chooses the parameters; `bounds` proves the membrane
range by interval arithmetic over the T steps (`lif_ranges`).

ONNX: unrolled over T: Gather(t) → Mul(σ·2^F) → Add(B) → Mul(2^xs) → N = V·2^k − V + X·2^xs
(the first form; otherwise Mul(σ·2^(F+xs)) → Add(B·2^xs) → N = m·V + X·2^xs [+ r]) →
H = N / 2^k (exact Div; with rounding the floor division (N − Mod(N, 2^k)) / 2^k)
[− s_(t−1)·RB] → GreaterOrEqual(Θ) → reset (Where / Sub); spikes Cast(int64) →
Unsqueeze → Concat, and H the same way into the second output.
C: the integer membrane in int32 or int64 as `mem_bits` requires; the decay is a shift
and a subtraction when m = 2^k − 1 (τ = 2^k), else one constant multiply; an arithmetic
right shift for the division; the lagged reset keeps the previous spikes (uint8_t).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hqc.errors import ModelError
from hqc.intops.base import INT64_SAFE, Interval, IntOp, prod, register
from hqc.intops.cgen import (
    I32,
    I64,
    KERNEL_PARAMS,
    SHL,
    CEmitter,
    c_array,
    c_ints,
    index,
    loops,
    strides,
)
from hqc.intops.onnxgen import I64 as ONNX_I64
from hqc.intops.onnxgen import OnnxBuilder
from hqc.ir import Graph, Node

RESETS = ("hard", "subtract", "lagged")


def _params(attrs: dict[str, Any]) -> dict[str, Any]:
    """The LIF attributes with the optional ones filled in (arrays as int64)."""
    k = int(attrs["tau_shift"])
    rnd = int(attrs.get("round", 0))
    arrays = {key: np.asarray(attrs.get(key, 0), np.int64) for key in ("sign", "bias", "theta", "reset_by", "v_init")}
    return {
        "k": k,
        "xs": int(attrs["x_shift"]),
        "F": int(attrs["frac_bits"]),
        "m": int(attrs.get("decay_mult", (1 << k) - 1)),
        "round": rnd,
        "r": (1 << (k - 1)) if rnd and k > 0 else 0,
        "reset": str(attrs.get("reset", "hard")),
        **arrays,
    }


def is_first_form(attrs: dict[str, Any]) -> bool:
    """True when the node uses none of the optional attributes (the τ = 2^k, hard reset
    to 0 neuron of the first lowering, whose ONNX and C forms are kept unchanged)."""
    return not any(key in attrs for key in ("decay_mult", "round", "reset", "reset_by", "v_init"))


def lif_int(acc: np.ndarray, attrs: dict[str, Any], time_axis: int,
            membrane: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The integer LIF of the module docstring; acc int64 with time on `time_axis`.
    Returns the spikes, or (spikes, H) with `membrane`."""
    p = _params(attrs)
    k, xs, F, m, r, reset = p["k"], p["xs"], p["F"], p["m"], p["r"], p["reset"]
    sign, bias, theta, rb = p["sign"], p["bias"], p["theta"], p["reset_by"]
    xt = np.moveaxis(np.asarray(acc, np.int64), time_axis, 0)
    v = np.broadcast_to(p["v_init"], xt.shape[1:]).copy()
    fired = np.zeros(xt.shape[1:], bool)
    out = np.empty(xt.shape, np.int64)
    mem = np.empty(xt.shape, np.int64) if membrane else None
    mask = (1 << k) - 1
    for t in range(xt.shape[0]):
        num = m * v + ((sign * xt[t]) << (F + xs)) + (bias << xs) + r
        if not p["round"] and np.any(num & mask):
            raise RuntimeError(f"LIF {attrs.get('neuron', '?')}: inexact membrane decay at step {t} "
                               "(internal invariant of lower-int broken)")
        h = num >> k
        if reset == "lagged":
            h = h - fired * rb
        s = h >= theta
        if reset == "hard":
            v = np.where(s, 0, h)
        elif reset == "subtract":
            v = h - s * rb
        else:
            v, fired = h, s
        out[t] = s
        if mem is not None:
            mem[t] = h
    spikes = np.moveaxis(out, 0, time_axis)
    return (spikes, np.moveaxis(mem, 0, time_axis)) if mem is not None else spikes


@dataclass
class LIFRanges:
    """What interval arithmetic proves about an integer LIF over its T steps.

    h: the range of H (every step, every element); h_max: per parameter row, the largest
    H any step can reach (rows = the distinct parameter tuples, `row_of` maps each element
    of the parameter shape to its row); top: the largest |value| of any partial sum the
    kernels form (X, X·2^xs, P·2^k, m·P, N, H, H − RB) and of the constants."""

    h: Interval
    h_max: np.ndarray
    row_of: np.ndarray
    top: int

    @property
    def mem_bits(self) -> int:
        """Signed width that holds every partial sum: bits of `top` plus the sign."""
        return int(self.top).bit_length() + 1


def lif_ranges(attrs: dict[str, Any], acc: Interval, T: int) -> LIFRanges:
    """Interval arithmetic of the integer LIF over T steps for acc in [lo, hi].

    Per distinct parameter tuple (σ, B, Θ, RB, V0), the state P is an interval (for the
    lagged reset: one interval for the elements that fired at the previous step and one
    for those that did not, since only the former subtract RB). One step maps it through
    N = m·P + X·2^xs + r (m ≥ 0: monotone), H = ⌊N/2^k⌋ (monotone), and the reset of the
    part of [H_lo, H_hi] at or above Θ (fires) and below Θ (does not). Exact integers."""
    p = _params(attrs)
    k, xs, F, m, r, reset = p["k"], p["xs"], p["F"], p["m"], p["r"], p["reset"]
    arrays = np.broadcast_arrays(p["sign"], p["bias"], p["theta"], p["reset_by"], p["v_init"])
    pshape = arrays[0].shape
    table = np.stack([a.reshape(-1) for a in arrays], axis=1)
    rows, row_of = np.unique(table, axis=0, return_inverse=True)
    row_of = row_of.reshape(pshape)
    sg, B, th, rb, v0 = (rows[:, i] for i in range(5))
    lo, hi = int(acc[0]), int(acc[1])
    # int64 arithmetic, each operation guarded by the exact bound of its result: once a
    # value could reach 2^62 the answer is "too wide" (top ≥ INT64_SAFE), nothing else
    top = max(max(abs(lo), abs(hi)) << (F + xs), _imax(th, rb, v0), _imax(B) << xs)
    xspan = max(abs(lo), abs(hi)) << (F + xs)
    top = max(top, xspan + (_imax(B) << xs))
    if top >= INT64_SAFE:
        return LIFRanges((0, 0), v0.astype(object), row_of, top)
    xlo = np.where(sg >= 0, sg * lo, sg * hi) * (1 << (F + xs)) + (B << xs)  # X·2^xs
    xhi = np.where(sg >= 0, sg * hi, sg * lo) * (1 << (F + xs)) + (B << xs)
    # branches: (P_lo, P_hi, valid, subtract RB after the shift?)
    states = [(v0, v0, np.ones(len(rows), bool), False)]
    h_lo = h_hi = h_max = None
    for _ in range(T):
        blos, bhis, valids = [], [], []
        for plo, phi, ok, sub in states:
            pmax = max(_imax(plo[ok]), _imax(phi[ok]))
            top = max(top, pmax << k, m * pmax, m * pmax + _imax(xlo, xhi) + r)
            if top >= INT64_SAFE:
                return LIFRanges((0, 0), v0.astype(object), row_of, top)
            nlo, nhi = m * plo + xlo + r, m * phi + xhi + r
            blo, bhi = nlo >> k, nhi >> k
            if sub:
                blo, bhi = blo - rb, bhi - rb
            blos.append(blo)
            bhis.append(bhi)
            valids.append(ok)
        hlo = _masked(np.minimum, blos, valids)
        hhi = _masked(np.maximum, bhis, valids)
        top = max(top, _imax(hlo), _imax(hhi))
        h_lo = hlo if h_lo is None else np.minimum(h_lo, hlo)
        h_hi = hhi if h_hi is None else np.maximum(h_hi, hhi)
        h_max = hhi if h_max is None else np.maximum(h_max, hhi)
        q_ok, f_ok = hlo < th, hhi >= th  # some element stays quiet / fires
        quiet = (hlo, np.minimum(hhi, th - 1))
        fire = (np.maximum(hlo, th), hhi)
        if reset == "lagged":  # (rows where a branch is empty hold 0, so nothing overflows)
            states = [(np.where(q_ok, quiet[0], 0), np.where(q_ok, quiet[1], 0), q_ok, False),
                      (np.where(f_ok, fire[0], 0), np.where(f_ok, fire[1], 0), f_ok, True)]
            continue
        after = (0 * rb, 0 * rb) if reset == "hard" else (fire[0] - rb, fire[1] - rb)
        top = max(top, _imax(after[0][f_ok]), _imax(after[1][f_ok]))
        states = [(_masked(np.minimum, [quiet[0], after[0]], [q_ok, f_ok]),
                   _masked(np.maximum, [quiet[1], after[1]], [q_ok, f_ok]), q_ok | f_ok, False)]
    if h_lo is None:  # T = 0
        return LIFRanges((0, 0), v0.astype(object), row_of, top)
    return LIFRanges((int(h_lo.min()), int(h_hi.max())), h_max.astype(object), row_of, int(top))


def _imax(*arrays: np.ndarray) -> int:
    """max |value| over int64 arrays (all below 2^62 in magnitude) as a Python integer."""
    return max((int(np.abs(a).max()) for a in arrays if np.size(a)), default=0)


def _masked(op: Any, values: list[np.ndarray], valid: list[np.ndarray]) -> np.ndarray:
    """Elementwise op (np.minimum / np.maximum) over the values where valid (at least one is)."""
    out, seen = values[0], valid[0]
    for v, ok in zip(values[1:], valid[1:], strict=True):
        out = np.where(seen & ok, op(out, v), np.where(ok, v, out))
        seen = seen | ok
    return out


@register
class LIF(IntOp):
    name = "LIF"
    attrs = {"time_axis": "int", "tau_shift": "int", "x_shift": "int", "frac_bits": "int", "bias": "array",
             "theta": "array", "sign": "array", "mem_bits": "int", "layer": "str", "neuron": "str",
             "decay_mult": "int?", "round": "int?", "reset": "str?", "reset_by": "array?", "v_init": "array?"}
    outputs = (1, 2)

    def validate(self, node: Node) -> None:
        a = node.attrs
        k = int(a["tau_shift"])
        if not 0 <= k <= 62 or not 0 <= int(a["x_shift"]) <= 62 or int(a["frac_bits"]) + int(a["x_shift"]) < 0:
            raise self.error(node, "tau_shift, x_shift in 0..62 and frac_bits + x_shift ≥ 0 required")
        if not 0 <= int(a.get("decay_mult", 0)) <= 1 << k:
            raise self.error(node, f"decay_mult {a['decay_mult']} outside 0..2^{k}")
        if int(a.get("round", 0)) not in (0, 1):
            raise self.error(node, f"round must be 0 or 1, not {a['round']}")
        reset = a.get("reset", "hard")
        if reset not in RESETS:
            raise self.error(node, f"reset {reset!r} is not one of {', '.join(RESETS)}")
        if (reset != "hard") != ("reset_by" in a):
            raise self.error(node, f"reset {reset!r} {'needs' if reset != 'hard' else 'takes no'} reset_by")
        try:
            np.broadcast_shapes(*(np.asarray(a[key]).shape for key in ("sign", "bias", "theta", "reset_by", "v_init")
                                  if key in a))
        except ValueError:
            raise self.error(node, "parameter arrays do not broadcast to one shape") from None

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        a = node.attrs
        T = int(g.shape(node.inputs[0])[int(a["time_axis"])])
        rg = lif_ranges(a, ins[0], T)
        if rg.top >= INT64_SAFE:
            raise self.error(node, f"membrane partial sums up to {rg.top} exceed int64")
        if rg.mem_bits > int(a["mem_bits"]):
            raise self.error(node, f"mem_bits {a['mem_bits']} below the proven membrane width {rg.mem_bits}")
        return [(0, 1), rg.h][: len(node.outputs)]

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray | tuple[np.ndarray, ...]:
        x = xs[0]
        ta = (int(node.attrs["time_axis"]) % (x.ndim - 1)) + 1
        if len(node.outputs) > 1:
            return lif_int(x, node.attrs, ta, membrane=True)  # type: ignore[return-value]
        return lif_int(x, node.attrs, ta)

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        _onnx_lif(b, g, node)

    def c(self, e: CEmitter, node: Node) -> None:
        _c_lif(e, node)


def _onnx_lif(b: OnnxBuilder, g: Graph, node: Node) -> None:
    x = node.inputs[0]
    shape = tuple(g.shape(x))
    a = node.attrs
    p = _params(a)
    first = is_first_form(a)
    ta = int(a["time_axis"])
    T = shape[ta]
    k, xs, F, m, r, reset = p["k"], p["xs"], p["F"], p["m"], p["r"], p["reset"]
    base = node.name
    if first:
        cmul = b.const(np.asarray(a["sign"], np.int64) << F, base + "_sign_2F")
        cbias = b.const(np.asarray(a["bias"], np.int64), base + "_bias")
    else:  # X·2^xs in one multiply-add
        cmul = b.const(np.asarray(a["sign"], np.int64) << (F + xs), base + "_sign_2F")
        cbias = b.const(np.asarray(a["bias"], np.int64) << xs, base + "_bias")
    ctheta = b.const(np.asarray(a["theta"], np.int64), base + "_theta")
    c2k, c2xs, zero = b.i64(1 << k), b.i64(1 << xs), b.i64(0)
    step_shape = [d for i, d in enumerate(shape) if i != ta]
    crb = b.const(np.asarray(a["reset_by"], np.int64), base + "_reset_by") if reset != "hard" else None
    cm = b.i64(m) if not first and m not in (0, 1) else None
    cr = b.i64(r) if r else None
    v = b.const(np.broadcast_to(p["v_init"], step_shape).astype(np.int64), base + "_v0")
    fired = None
    spikes, mems = [], []
    for t in range(T):
        xt = b.op("Gather", [x, b.i64(t)], base, axis=ta)
        xt = b.op("Mul", [xt, cmul], base)
        xt = b.op("Add", [xt, cbias], base)
        if xs and first:
            xt = b.op("Mul", [xt, c2xs], base)
        if first:
            num = b.op("Sub", [b.op("Mul", [v, c2k], base), v], base)
            num = b.op("Add", [num, xt], base)
        elif m == 0:
            num = xt
        else:
            num = b.op("Add", [v if m == 1 else b.op("Mul", [v, cm], base), xt], base)  # type: ignore[list-item]
        if cr is not None:
            num = b.op("Add", [num, cr], base)
        if first or (k and not p["round"]):
            h = b.op("Div", [num, c2k], base)  # exact: the remainder is 0 by construction
        elif k:
            # ONNX integer Div truncates toward zero; subtracting the (non-negative) Mod
            # first makes the division exact, so the result is the floor
            h = b.op("Div", [b.op("Sub", [num, b.op("Mod", [num, c2k], base, fmod=0)], base), c2k], base)
        else:
            h = num
        if fired is not None:
            h = b.op("Sub", [h, b.op("Mul", [fired, crb], base)], base)  # type: ignore[list-item]
        s = b.op("GreaterOrEqual", [h, ctheta], base)
        if reset == "hard":
            v = b.op("Where", [s, zero, h], base)
        elif reset == "subtract":
            v = b.op("Where", [s, b.op("Sub", [h, crb], base), h], base)  # type: ignore[list-item]
        else:
            v = h
        si = b.op("Cast", [s], base, to=ONNX_I64)
        if reset == "lagged":
            fired = si
        spikes.append(b.op("Unsqueeze", [si, b.i64([ta])], base))
        if len(node.outputs) > 1:
            mems.append(b.op("Unsqueeze", [h, b.i64([ta])], base))
    b.op("Concat", spikes, base, out=node.outputs[0], axis=ta)
    if mems:
        b.op("Concat", mems, base, out=node.outputs[1], axis=ta)


def _c_lif(e: CEmitter, node: Node) -> None:
    if node.name in {lif.name for lif in e.fused.values()}:
        return  # applied inside the convolution that feeds it (weights.conv_lif_pairs)
    g = e.g
    a = node.attrs
    p = _params(a)
    first = is_first_form(a)
    x, y = node.inputs[0], node.outputs[0]
    e.tensor(y)
    hout = node.outputs[1] if len(node.outputs) > 1 else None
    if hout is not None:
        e.tensor(hout)
    fn = e.fn(node)
    shape = tuple(g.shape(x))
    ta = int(a["time_axis"])
    step = tuple(d for i, d in enumerate(shape) if i != ta)
    mem = I32 if int(a["mem_bits"]) <= 31 else I64
    k, xs, F, m, reset = p["k"], p["xs"], p["F"], p["m"], p["reset"]
    pshape = np.asarray(a["bias"]).shape
    if len(pshape) != len(step):
        raise ModelError(f"C kernels: LIF {node.name!r} parameters of rank {len(pshape)}")
    for key in ("sign", "theta", "reset_by", "v_init"):
        if key in a and np.asarray(a[key]).shape != pshape:
            raise ModelError(f"C kernels: LIF {node.name!r} parameter {key} of shape "
                             f"{list(np.asarray(a[key]).shape)}, bias {list(pshape)}")
    pstr = [s if d > 1 else 0 for s, d in zip(strides(pshape), pshape, strict=True)]
    vstr = strides(step)
    full_p = [0] * len(shape)
    full_v = [0] * len(shape)
    j = 0
    for i in range(len(shape)):
        if i == ta:
            continue
        full_p[i], full_v[i] = pstr[j], vstr[j]
        j += 1
    ptype = "int32_t" if mem == I32 else "int64_t"
    if (np.asarray(a["sign"]) != 1).any():  # (read by lif_update only then)
        e.data += c_array(f"{fn}_sg", "int8_t", c_ints(a["sign"]))
    e.data += c_array(f"{fn}_b", ptype, c_ints(np.asarray(a["bias"], np.int64) << (0 if first else xs)))
    e.data += c_array(f"{fn}_th", ptype, c_ints(a["theta"]))
    if reset != "hard":
        e.data += c_array(f"{fn}_rb", ptype, c_ints(a["reset_by"]))
    if "v_init" in a:
        e.data += c_array(f"{fn}_v0", ptype, c_ints(a["v_init"]))
    e.scratch(f"{fn}_v", mem, prod(step), f"membrane of {node.name}")
    if reset == "lagged":
        e.scratch(f"{fn}_sp", "uint8_t", prod(step), f"previous spikes of {node.name}")
    X, Y = e.buf[x], e.buf[y]
    opens, closes, ind = loops(shape)
    kind = f"lif F={F}" if first else (f"lif F={F} k={k} m={m}" + (" round" if p["round"] else "")
                                       + (f" reset={reset}" if reset != "hard" else ""))
    lines = [f"// hqc-kernel begin {a.get('neuron', node.name)} {kind}", f"static void {fn}({KERNEL_PARAMS})", "{",
             "    int32_t " + ", ".join(f"d{i}" for i in range(len(shape)))
             + (", i" if "v_init" not in a or reset == "lagged" else "") + ", xi, vi, pi;",
             f"    {mem} xv, num, h;", "    int s;"]
    if "v_init" in a:
        sopen, sclose, sind = loops(step, "e")
        lines += ["    int32_t " + ", ".join(f"e{i}" for i in range(len(step))) + ";"] if step else []
        lines += sopen + [f"{sind}{fn}_v[{index(vstr, 'e')}] = {fn}_v0[{index(pstr, 'e')}];"] + sclose
    else:
        lines.append(f"    for (i = 0; i < {prod(step)}; i++) {fn}_v[i] = 0;")
    if reset == "lagged":
        lines.append(f"    for (i = 0; i < {prod(step)}; i++) {fn}_sp[i] = 0;")
    lines += opens
    lines += [
        f"{ind}xi = {index(strides(shape))};",
        f"{ind}vi = {index(full_v)};",
        f"{ind}pi = {index(full_p)};",
    ]
    lines += lif_update(fn, a, mem, ind, f"{X}[xi]", "vi", "pi")
    if hout is not None:
        lines.append(f"{ind}{e.buf[hout]}[xi] = ({e.typ[hout]})h;")
    lines.append(f"{ind}{Y}[xi] = (uint8_t)s;")
    lines += closes
    lines += ["}", "// hqc-kernel end"]
    e.funcs.append("\n".join(lines))


def lif_multiplies(a: dict[str, Any]) -> bool:
    """True when the LIF's decay is a multiply-and-shift (τ not a power of two)."""
    p = _params(a)
    return not is_first_form(a) and p["m"] not in (0, 1, (1 << p["k"]) - 1)


def lif_update(fn: str, a: dict[str, Any], mem: str, ind: str, x: str, vi: str, pi: str) -> list[str]:
    """One element's LIF step in C: input value `x`, membrane `{fn}_v[vi]` (and `{fn}_sp[vi]`
    for the lagged reset), parameters `{fn}_sg/_b/_th/_rb[pi]` → h (the membrane before the
    reset) and s (the spike); locals xv, num, h of type `mem` and int s."""
    p = _params(a)
    first = is_first_form(a)
    k, xs, F, m, r, reset = p["k"], p["xs"], p["F"], p["m"], p["r"], p["reset"]
    v = f"{fn}_v[{vi}]"
    if first or (k >= 1 and m == (1 << k) - 1):  # τ = 2^k: shift and subtract, no multiply
        decay = f"{SHL[mem]}({v}, {k}) - {v} + "
    elif m == 0:
        decay = ""
    elif m == 1:
        decay = f"{v} + "
    else:
        decay = f"({mem}){c_ints(np.array(m))[0]} * {v} + "
    sg = np.asarray(a["sign"])
    lines = [f"{ind}xv = ({mem}){x};"]
    # xv·σ for σ ∈ {−1, 0, 1} with masks (no branch, no multiply: vectorisable); nothing
    # when every σ is 1, no zero mask when none is 0
    if (sg == 0).any():
        lines.append(f"{ind}xv = ((xv ^ -({mem})({fn}_sg[{pi}] < 0)) + ({mem})({fn}_sg[{pi}] < 0)) "
                     f"& -({mem})({fn}_sg[{pi}] != 0);")
    elif (sg < 0).any():
        lines.append(f"{ind}xv = (xv ^ -({mem})({fn}_sg[{pi}] < 0)) + ({mem})({fn}_sg[{pi}] < 0);")
    lines += [
        f"{ind}xv = {SHL[mem]}(xv, {F if first else F + xs}) + {fn}_b[{pi}];",
        f"{ind}num = {decay}{f'{SHL[mem]}(xv, {xs})' if first else 'xv'}{' + ' + c_ints(np.array(r))[0] if r else ''};",
        f"{ind}h = num >> {k};" if first or k else f"{ind}h = num;",
    ]
    if reset == "lagged":
        lines.append(f"{ind}h -= {fn}_sp[{vi}] ? {fn}_rb[{pi}] : 0;")
    lines.append(f"{ind}s = h >= {fn}_th[{pi}];")
    if reset == "hard":
        lines.append(f"{ind}{v} = s ? 0 : h;")
    elif reset == "subtract":
        lines.append(f"{ind}{v} = s ? h - {fn}_rb[{pi}] : h;")
    else:
        lines += [f"{ind}{v} = h;", f"{ind}{fn}_sp[{vi}] = (uint8_t)s;"]
    return lines


def lif_channel_params(node: Node, g: Graph, channels: int) -> dict[str, np.ndarray] | None:
    """The LIF's parameters as one value per channel when its input (time first) is
    (T, B·channels·P) in row-major order, each parameter constant over B and P: the
    arrays {sign, bias, theta, reset_by?, v_init?} of length `channels`; None otherwise
    (time not on axis 0, a membrane output, or parameters varying inside a channel)."""
    a = node.attrs
    shape = tuple(int(d) for d in g.shape(node.inputs[0]))
    if int(a["time_axis"]) != 0 or len(node.outputs) != 1:
        return None
    step = shape[1:]
    n = prod(step)
    if channels <= 0 or n % channels:
        return None
    out: dict[str, np.ndarray] = {}
    for key in ("sign", "bias", "theta", "reset_by", "v_init"):
        if key not in a:
            continue
        full = np.broadcast_to(np.asarray(a[key], np.int64), step).reshape(-1)
        # the element order is (B, channels, P); the per-channel value must not vary
        blocks = full.reshape(-1, channels, n // channels if n else 1)
        per = blocks[0, :, 0]
        if not np.array_equal(blocks, np.broadcast_to(per[None, :, None], blocks.shape)):
            return None
        out[key] = per
    return out


def lif_fused_setup(e: CEmitter, node: Node, fn: str, per: dict[str, np.ndarray], count: int) -> tuple[str, list[str]]:
    """Constants and membrane (`count` elements in the arena, channel fastest) of a LIF fused
    into the kernel `fn` (its per-channel parameters `per`): (membrane C type, the lines
    that initialise the membrane, to run before the first time step)."""
    a = node.attrs
    first = is_first_form(a)
    xs = int(a["x_shift"])
    mem = I32 if int(a["mem_bits"]) <= 31 else I64
    ch = len(per["bias"])
    if (per["sign"] != 1).any():
        e.data += c_array(f"{fn}_sg", "int8_t", c_ints(per["sign"]))
    e.data += c_array(f"{fn}_b", mem, c_ints(per["bias"] << (0 if first else xs)))
    e.data += c_array(f"{fn}_th", mem, c_ints(per["theta"]))
    if "reset_by" in per:
        e.data += c_array(f"{fn}_rb", mem, c_ints(per["reset_by"]))
    e.scratch(f"{fn}_v", mem, count, f"membrane of {node.name}, [position][channel]")
    init = []
    if "v_init" in per:
        e.data += c_array(f"{fn}_v0", mem, c_ints(per["v_init"]))
        init.append(f"    {{ int32_t c; for (i = 0, c = 0; i < {count}; i++, c = c + 1 == {ch} ? 0 : c + 1) "
                    f"{fn}_v[i] = {fn}_v0[c]; }}")
    else:
        init.append(f"    for (i = 0; i < {count}; i++) {fn}_v[i] = 0;")
    if str(a.get("reset", "hard")) == "lagged":
        e.scratch(f"{fn}_sp", "uint8_t", count, f"previous spikes of {node.name}")
        init.append(f"    for (i = 0; i < {count}; i++) {fn}_sp[i] = 0;")
    return mem, init
