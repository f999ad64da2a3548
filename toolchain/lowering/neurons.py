"""LIF and logit folding: the affine view of a neuron's input → integer neuron parameters.

Every float LIF (hqc.lif) is  h_t = β·v_(t−1) + x'_t  with β = 1 − 1/τ (β = 1 for IF, τ = ∞)
and x' = x/τ (decay_input) or x. A hard reset to v_r is the hard reset to 0 of the
shifted membrane v − v_r (the charge depends on v − v_r only): θ → θ − v_r, v_init →
v_init − v_r, and a membrane read out gets v_r back as its offset. The input is
x = a_c·acc + b_c per channel c; the neuron is divided by a unit u_c > 0 (σ = sign a_c)
and its membrane is an integer in units u_c·2^−F (F fraction bits). The integer LIF
(hqc.intops.neuron) then computes, with P the membrane after the previous reset:

Exact decay — τ = 2^k (k ≥ 0; τ = 1 is β = 0) or IF (k = 0, m = 1):
    u = |a_c|,  F = G + k·T,  B = round(b/u·2^G)·2^(kT)  (V0, RB likewise)
    X = σ·acc·2^F + B,   H = (m·P + X·2^xs) / 2^k,  m = 2^k − 1,  xs = 0 (decay_input) or k
    Every constant is a multiple of 2^(kT) and F ≥ kT, so after t steps the membrane is a
    multiple of 2^(k(T−t)): the T divisions never drop a bit. Only the constants b/u,
    v_init/u and reset_by/u are rounded (round half up at G bits; G the fewest bits that
    hold them all, capped by the resolution rule below) — none when they are dyadic.
Rounded decay — any other τ (SpikingJelly τ = 3, snnTorch β = 0.9 → τ = 10; also τ = 2^k
when the exact form would need more than 62 bits, then with β exact):
    u = |a_c|/τ (decay_input) or |a_c|,  k = resolution bits,  m = round(β·2^k)
    (|β − m/2^k| ≤ 2^−(k+1)),  B = round(b/|a_c|·2^F)  (V0, RB likewise, at F bits)
    H = ⌊(m·P + σ·acc·2^(F+k) + B·2^k + 2^(k−1)) / 2^k⌋ = round half up (β̂·P + X)
    F is the resolution rule; when that is negative (a wide accumulator, e.g. after an fp32
    layer) F is the largest value in [rule, 0] whose membrane fits int64, and with F < 0 the
    input's low bits are rounded together with the decay (one rounding, ½ unit, a step).

Resolution rule: F (exact: G) ≥ max_c ⌈R − log₂(θ'/u_c)⌉ (R = resolution_bits, θ' the
threshold; exact decay: G is capped there), so a unit is at most θ'·2^−R and each
rounding moves the membrane by at most θ'·2^−(R+1). A channel with a_c = 0 ignores its
input; its unit is the largest power of two within θ'·2^−(R+F) (the first lowering: θ·2^−R).
Bias rounding and the silent input: where the bias rounded half up makes the integer
neuron fire on the silent input (accumulator 0 at every step, x = b) on other steps than
the float neuron (exact rationals), the nearest integer that fires as the float neuron does
is taken instead, within 1 unit (exact decay: the other neighbour) or 4 units (rounded
decay); exact biases never move (`_round_bias`; record `bias_silent_channels`).
Fire: s = H ≥ Θ, Θ = ⌈θ'/u·2^F⌉ (">": ⌊θ'/u·2^F⌋ + 1) — exact, H is an integer.
Reset: hard P = s ? 0 : H; subtract P = H − s·RB, RB ≈ reset_by/u·2^F; or "lagged": P = H
and the next step subtracts RB' ≈ β·reset_by/u·2^F after the decay (snnTorch's
mem = β·mem + x − s·thr has reset_by = thr/β, so RB' is thr's integer, exact where θ/u
is, while thr/β would round; β·reset_by within 2^−48 of θ is taken as θ). The form whose
constants round least is chosen (a subtract reset's error weighs β: it is decayed once).
The membrane range is proven by interval arithmetic over the T steps
(hqc.intops.neuron.lif_ranges) and sets `mem_bits`; a channel that can never fire gets the
smallest Θ that keeps it silent. The neurons of the first lowering (τ = 2^k ≥ 2, hard
reset to 0, v_init = 0) keep its parameters, saturation and membrane width exactly
(its closed-form width, which the iterated bound never exceeds).

Logits: the head's a_c·acc + b_c becomes L_c = M_c·acc + B_c with M_c = round(a_c/u·2^R),
B_c = round(b_c/u·2^R), u = max_c |a_c| (R lowered until int64 holds the result).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from hqc.errors import ModelError
from hqc.intops.base import INT64_SAFE
from hqc.intops.neuron import lif_int, lif_ranges
from hqc.ir import Node
from hqc.lif import LIFParams
from hqc.lowering.affine import Sym, arr, bits_needed, ceil_to, floor_to, frac, round_half_up
from hqc.lowering.rules import rule

if TYPE_CHECKING:
    from hqc.lowering.lowerer import Lowerer


@dataclass
class LIFFold:
    """The integer LIF for one float LIF: node attributes, the neuron record, and the
    affine view (a per channel, b scalar) of its membrane output H: h = a·H + b."""

    attrs: dict[str, Any]
    record: dict[str, Any]
    membrane_a: np.ndarray
    membrane_b: float


@dataclass
class _Neuron:
    """The float neuron in the shifted form h = β·v + x' (see the module docstring)."""

    beta: Fraction
    k: int | None  # τ = 2^k (IF: 0), None when β is not dyadic
    is_if: bool
    hard: bool
    theta: Fraction  # θ − v_r
    v0: Fraction  # v_init − v_r
    reset_by: Fraction
    offset: Fraction  # v_r (hard reset), 0
    cin: Fraction  # the input's factor in the charge: 1/τ (decay_input) or 1
    decay_input: bool
    strict: bool


@dataclass
class _Channels:
    """The input view per channel: a, b (exact), σ, the parameter shape, the accumulator's
    range, T and the time axis."""

    a: list[Fraction]
    b: list[Fraction]
    signs: list[int]
    pshape: tuple[int, ...]
    acc: tuple[int, int]
    T: int
    ta: int


def _neuron(p: LIFParams, where: str) -> _Neuron:
    if math.isnan(p.tau) or p.tau < 1:
        raise ModelError(f"{where}: tau = {p.tau:g} < 1 is not supported (the membrane would not decay)")
    hard = p.v_reset is not None
    vr = frac(p.v_reset) if hard else Fraction(0)
    theta = frac(p.v_threshold) - vr
    if theta <= 0:
        shown = f"{p.v_threshold:g}" + (f" − v_reset {p.v_reset:g}" if hard and vr else "")
        raise ModelError(f"{where}: threshold {shown} ≤ 0 is not supported")
    is_if = not math.isfinite(p.tau)
    tau = None if is_if else frac(p.tau)
    k = 0 if is_if else None
    if tau is not None and tau.denominator == 1 and tau.numerator & (tau.numerator - 1) == 0:
        k = tau.numerator.bit_length() - 1
    return _Neuron(
        beta=Fraction(1) if tau is None else 1 - 1 / tau,
        k=k,
        is_if=is_if,
        hard=hard,
        theta=theta,
        v0=frac(p.v_init) - vr,
        reset_by=Fraction(0) if hard else frac(p.reset_by if p.reset_by is not None else p.v_threshold),
        offset=vr,
        cin=1 / tau if (tau is not None and p.decay_input) else Fraction(1),
        decay_input=p.decay_input,
        strict=p.comparison == ">",
    )


_TWO = Fraction(2)  # exact powers of two, negative exponents included
LAG_SNAP = Fraction(1, 2**48)  # β·reset_by this close to θ is θ (float64 rounding of thr/β)


def _g_cap(theta: Fraction, units: list[Fraction], res: int, lowest: int = 0) -> int:
    """The resolution rule: enough fraction bits that θ/u·2^G ≥ 2^R in every channel
    (at least `lowest`)."""
    return max(lowest, max(math.ceil(res - math.log2(theta / u)) for u in units))


def _idle_unit(theta: Fraction, res: int) -> Fraction:
    """The unit of a channel that ignores its input (a_c = 0): the largest power of two
    ≤ θ·2^−R, so that a dyadic bias stays exact."""
    e = math.floor(math.log2(theta))
    while _TWO**e > theta:
        e -= 1
    while _TWO ** (e + 1) <= theta:
        e += 1
    return _TWO ** (e - res)


def _fewest_bits(ratios: list[Fraction], cap: int) -> int:
    """The smallest G ≤ cap with every ratio·2^G an integer (cap when there is none)."""
    return next((g for g in range(cap + 1) if all((r * 2**g).denominator == 1 for r in ratios)), cap)


def _rounding(ratios: list[Fraction], bits: int) -> float:
    """Σ |round(r·2^bits) − r·2^bits|·2^−bits: the total rounding, in units u."""
    return float(sum(abs(round_half_up(r * _TWO**bits) - r * _TWO**bits) for r in ratios) / _TWO**bits)


SILENT_WINDOW = {"exact": 1, "rounded": 4}  # a bias rounded for the silent input moves by < this many units


def _silent_float(n: _Neuron, b: np.ndarray, T: int) -> tuple[np.ndarray, np.ndarray]:
    """The float neuron on the silent input x_t = b_c (accumulator 0 at every step), in
    float64, per channel: (spikes (T, C), the smallest |h_t − θ| over the steps)."""
    beta, cin, theta = float(n.beta), float(n.cin), float(n.theta)
    v = np.full(b.shape, float(n.v0))
    out, gap = np.zeros((T, b.size), bool), np.full(b.shape, np.inf)
    for t in range(T):
        h = beta * v + cin * b
        s = h > theta if n.strict else h >= theta
        gap = np.minimum(gap, np.abs(h - theta))
        v = np.where(s, 0.0, h) if n.hard else h - s * float(n.reset_by)
        out[t] = s
    return out, gap


def _silent_spikes(n: _Neuron, b: Fraction, T: int) -> np.ndarray:
    """The float neuron's spikes on the silent input x_t = b, exactly (rational arithmetic
    on the float parameters)."""
    v, out = n.v0, []
    for _ in range(T):
        h = n.beta * v + n.cin * b
        s = h > n.theta if n.strict else h >= n.theta
        v = (Fraction(0) if s else h) if n.hard else (h - n.reset_by if s else h)
        out.append(s)
    return np.array(out, bool)


def _round_bias(n: _Neuron, ch: _Channels, scaled: list[Fraction], shift: int, attrs: dict[str, Any],
                window: int) -> tuple[list[int], int]:
    """The integer biases B_c = q_c·2^shift for the exact scaled biases scaled_c (b_c/u_c·2^bits).

    q_c = round_half_up(scaled_c), except where the integer neuron then fires on the
    *silent input* (accumulator 0 at every step: x_t = b_c) on other steps than the float
    neuron. The silent input is the commonest input of a spiking layer (no spike in the
    receptive field), and its membrane is the one value no weight quantizer moves, so a
    float membrane that sits on the threshold there (a bias tuned until a neuron's firing
    rate changes ends exactly on such a value) stays on it in the fake-quant model, and a
    rounding of the bias in the wrong direction flips every silent element of the channel.
    There q_c is the integer nearest to scaled_c, |q_c − scaled_c| < `window`, with which
    the integer neuron's silent spikes are the float neuron's (exact rationals); none: the
    nearest. An exact bias (scaled_c an integer) is never changed, nor is anything when 0
    is outside the accumulator's range. `attrs`: the integer LIF's attributes but the
    bias. Returns (B, the number of channels not rounded to nearest)."""
    near = [round_half_up(v) for v in scaled]
    lo, hi = ch.acc
    if not lo <= 0 <= hi or all(v.denominator == 1 for v in scaled) \
            or (max(abs(q) for q in near) + window) << shift >= INT64_SAFE:
        return [q << shift for q in near], 0
    zero = np.zeros((ch.T, *ch.pshape), np.int64)

    def silent(qs: list[int]) -> np.ndarray:
        bias = _ints([q << shift for q in qs], ch.pshape)
        return np.asarray(lif_int(zero, {**attrs, "bias": bias}, 0)).reshape(ch.T, -1) != 0

    got = silent(near)
    f64, gap = _silent_float(n, np.array([float(v) for v in ch.b]), ch.T)
    # exact check where float64 disagrees or cannot tell (a membrane within 2^-40 of θ)
    suspect = np.flatnonzero((got != f64).any(axis=0) | (gap <= float(n.theta) * 2.0**-40))
    wrong = {}
    for c in suspect:
        want = _silent_spikes(n, ch.b[c], ch.T)
        if scaled[c].denominator != 1 and not np.array_equal(got[:, c], want):
            wrong[int(c)] = want
    out = list(near)
    for j in range(1, 2 * window):  # the j-th nearest integer: near + s, near − s, near + 2s, …
        if not wrong:
            break
        trial = list(out)
        for c in wrong:
            step = 1 if scaled[c] >= near[c] else -1
            trial[c] = near[c] + (step if j % 2 else -step) * ((j + 1) // 2)
        got = silent(trial)
        for c in list(wrong):
            if abs(trial[c] - scaled[c]) < window and np.array_equal(got[:, c], wrong[c]):
                out[c] = trial[c]
                del wrong[c]
    return [q << shift for q in out], sum(int(q != r) for q, r in zip(out, near, strict=True))


FREE_BITS = 16  # at most this many fraction bits beyond the resolution rule, for free


def _free_bits(n: _Neuron, ch: _Channels, res: int, membrane: bool, fold: Any) -> Any:
    """The exact-decay fold with the most fraction bits (up to res + FREE_BITS) whose
    membrane still fits the C type the resolution rule's fold needs already (int32, or
    int64 with 62 bits): the bias (and reset, v_init) round finer at no cost in width or
    speed. A membrane lattice
    point within θ·2^−(res+1) of the threshold is not rare in a spiking layer (a quarter of
    a million membranes per sample), and a flipped spike cascades through later layers:
    measured on SpikingJelly's SEW-ResNet (IF neurons), res = 16 alone left 2 of 100
    predictions different from the fake-quant model's, the free bits none."""
    limit = 31 if fold[1]["membrane_bits"] <= 31 else 62
    for extra in (e for e in (16, 12, 8, 6, 4, 2, 1) if e <= FREE_BITS):
        try:
            f = _fold_exact(n, ch, res + extra, membrane)
        except OverflowError:  # a constant beyond int64 at these bits: not a candidate
            continue
        if f is not None and f[1]["membrane_bits"] <= limit:
            return f
    return fold


def fold_lif(p: LIFParams, s: Sym, resolution_bits: int, where: str, membrane: bool = False) -> LIFFold:
    """The integer LIF (attributes, record, membrane view) for the neuron p fed by s;
    `membrane`: its H is read out (no saturation of the bias, which would change H)."""
    n = _neuron(p, where)
    ta = p.time_axis % len(s.shape)
    T = s.shape[ta]
    if s.a.shape[ta] != 1 or s.b.shape[ta] != 1:
        raise ModelError(f"{where}: its input scale varies over time")
    a = np.squeeze(s.a, axis=ta)
    b = np.squeeze(s.b, axis=ta)
    pshape = tuple(max(x, y) for x, y in zip(a.shape, b.shape, strict=True))
    a, b = np.broadcast_to(a, pshape), np.broadcast_to(b, pshape)
    af = [frac(v) for v in a.reshape(-1)]
    bf = [frac(v) for v in b.reshape(-1)]
    signs = [(av > 0) - (av < 0) for av in af]
    ch = _Channels(af, bf, signs, pshape, (int(s.lo), int(s.hi)), T, ta)
    fold = _fold_exact(n, ch, resolution_bits, membrane) if n.k is not None else None
    if fold is not None and not fold[1]["exact"]:
        fold = _free_bits(n, ch, resolution_bits, membrane, fold)
    if fold is None:
        if n.is_if:
            raise ModelError(f"{where}: the integer membrane needs more than 62 bits; lower --resolution-bits")
        fold = _fold_rounded(n, ch, resolution_bits, where)
    attrs, rec, units, F = fold
    attrs = {"time_axis": ta, **attrs, "layer": s.layer or ""}
    scale = np.array([float(u / _TWO**F) for u in units], np.float64).reshape(pshape)
    return LIFFold(attrs, rec, np.expand_dims(scale, ta), float(n.offset))


def _ints(values: list[int], pshape: tuple[int, ...]) -> np.ndarray:
    return np.array(values, np.int64).reshape(pshape)


def _reset_forms(n: _Neuron) -> list[tuple[str, Fraction]]:
    """(reset attribute, the real constant it subtracts) candidates of the neuron."""
    if n.hard:
        return [("hard", Fraction(0))]
    lagged = n.beta * n.reset_by
    if abs(lagged - n.theta) <= n.theta * LAG_SNAP:  # snnTorch: reset_by = float64(thr/β)
        lagged = n.theta
    return [("subtract", n.reset_by), ("lagged", lagged)]


def _theta(n: _Neuron, u: Fraction, F: int) -> int:
    th = n.theta / u * _TWO**F
    return math.floor(th) + 1 if n.strict else math.ceil(th)


def _fold_exact(n: _Neuron, ch: _Channels, res: int,
                membrane: bool) -> tuple[dict[str, Any], dict[str, Any], list[Fraction], int] | None:
    """τ = 2^k or IF: every division exact (module docstring); None when it needs > 62 bits."""
    k = int(n.k)  # type: ignore[arg-type]
    m = 1 if n.is_if else (1 << k) - 1
    xs = 0 if (n.decay_input or n.is_if) else k
    first = n.hard and n.v0 == 0 and not n.is_if and k >= 1  # the neuron class of the first lowering
    idle = n.theta / 2**res if first and n.offset == 0 else _idle_unit(n.theta, res)
    units = [abs(av) if av != 0 else idle for av in ch.a]
    ratios = [bv / u for bv, u in zip(ch.b, units, strict=True)]
    v0s = [n.v0 / u for u in units]
    g_cap = _g_cap(n.theta, units, res)
    choices = []
    for i, (reset, c) in enumerate(_reset_forms(n)):
        rbs = [c / u for u in units]
        G = _fewest_bits(ratios + v0s + rbs, g_cap)
        weight = float(n.beta) if reset == "subtract" else 1.0  # a subtract reset's error is decayed once
        err = _rounding(ratios + v0s, G) + weight * _rounding(rbs, G)
        choices.append((err, G, i, reset, rbs))
    _, G, _, reset, rbs = min(choices)
    kT = k * ch.T
    F = G + kT
    V0 = [round_half_up(v * _TWO**G) << kT for v in v0s]
    RB = [round_half_up(r * _TWO**G) << kT for r in rbs]
    TH = [_theta(n, u, F) for u in units]
    B, directed = _round_bias(n, ch, [r * _TWO**G for r in ratios], kT,
                              {"tau_shift": k, "x_shift": xs, "frac_bits": F, "theta": _ints(TH, ch.pshape),
                               "sign": _ints(ch.signs, ch.pshape), **_optional(m, k, 0, reset, RB, V0, ch.pshape)},
                              SILENT_WINDOW["exact"])
    acc_max = max(abs(ch.acc[0]), abs(ch.acc[1])) << F
    if first and n.decay_input and not membrane:
        for c in range(len(B)):  # saturation (first lowering): channels that always or never fire
            bt, th = B[c], TH[c]
            if bt >= acc_max + (th << k):
                bt = ceil_to(acc_max + (th << k), 1 << kT)
            elif bt + acc_max <= 0:
                bt = floor_to(-acc_max, 1 << kT)
            if th > max(0, acc_max + bt):
                th = max(0, acc_max + bt) + 1
            B[c], TH[c] = bt, th
    attrs: dict[str, Any] = {"tau_shift": k, "x_shift": xs, "frac_bits": F, "bias": _ints(B, ch.pshape),
                             "theta": _ints(TH, ch.pshape), "sign": _ints(ch.signs, ch.pshape)}
    if not first:
        attrs.update(_optional(m, k, 0, reset, RB, V0, ch.pshape))
    if first:
        x_max = acc_max + max(abs(v) for v in B)
        h_max = x_max if n.decay_input else x_max << k
        num_max = (h_max << k) + h_max + (x_max << xs)
        if num_max >= INT64_SAFE or max(TH) >= INT64_SAFE:
            return None
        mem_bits = bits_needed(num_max) + 1
        if max(TH) >= 1 << (mem_bits - 1):  # a silent channel's Θ beyond the membrane's type
            _silence(attrs, ch, TH, clamp_all=False, below=1 << (mem_bits - 1))
        attrs["mem_bits"] = mem_bits
    elif not _finish_bounds(attrs, ch, TH):
        return None
    rounded_b = sum(int((r * _TWO**G).denominator != 1) for r in ratios)
    rounded_c = sum(int((r * _TWO**G).denominator != 1) for r in v0s + rbs)
    rec = {
        "tau": float("inf") if n.is_if else 2.0**k,
        "v_threshold": float(n.theta + n.offset),
        "fraction_bits": F,
        "bias_fraction_bits": G,
        "bias_rounded_channels": rounded_b,
        "channels": len(ch.a),
        "membrane_bits": int(attrs["mem_bits"]),
        "exact": rounded_b == 0 and rounded_c == 0,
    }
    if directed:
        rec["bias_silent_channels"] = directed
    if not (first and n.offset == 0):
        rec.update(_variant_record(n, reset, "exact", k, m, rounded_c))
    return attrs, rec, units, F


def _fold_rounded(n: _Neuron, ch: _Channels, res: int,
                  where: str) -> tuple[dict[str, Any], dict[str, Any], list[Fraction], int]:
    """Any τ: decay by multiply, round half up and shift (module docstring)."""
    if n.k is not None:  # τ = 2^k too wide for the exact form: keep β exact, round the division
        k, m = n.k, (1 << n.k) - 1
    else:
        k = res
        m = round_half_up(n.beta * 2**k)
    beta_hat = Fraction(m, 2**k)
    live = [abs(av) * n.cin for av in ch.a if av != 0]
    g_cap = _g_cap(n.theta, live, res, -k) if live else 0
    # F < 0 (a wide accumulator, e.g. after an fp32 layer) lets the input's low bits enter
    # the decay's rounding; F up to 0 keeps them when int64 still holds the membrane
    for F in [g_cap] if g_cap >= 0 else range(0, g_cap - 1, -1):
        idle = _idle_unit(n.theta, res - F)  # a channel with a_c = 0: θ/u·2^F ≥ 2^R too
        units = [abs(av) * n.cin if av != 0 else idle for av in ch.a]
        ratios = [bv * n.cin / u for bv, u in zip(ch.b, units, strict=True)]
        v0s = [n.v0 / u for u in units]
        choices = []
        for i, (reset, c) in enumerate(_reset_forms(n)):
            rbs = [c / u for u in units]
            if reset == "subtract":  # decayed once, by β̂ instead of β
                err = float(n.beta) * _rounding(rbs, F) + float(abs(n.beta - beta_hat)) * sum(float(r) for r in rbs)
            else:
                err = _rounding(rbs, F)
            choices.append((err, i, reset, rbs))
        _, _, reset, rbs = min(choices)
        V0 = [round_half_up(v * _TWO**F) for v in v0s]
        RB = [round_half_up(r * _TWO**F) for r in rbs]
        TH = [_theta(n, u, F) for u in units]
        attrs: dict[str, Any] = {"tau_shift": k, "x_shift": k, "frac_bits": F, "theta": _ints(TH, ch.pshape),
                                 "sign": _ints(ch.signs, ch.pshape), **_optional(m, k, 1, reset, RB, V0, ch.pshape)}
        B, directed = _round_bias(n, ch, [r * _TWO**F for r in ratios], 0, attrs, SILENT_WINDOW["rounded"])
        attrs = {"tau_shift": k, "x_shift": k, "frac_bits": F, "bias": _ints(B, ch.pshape), **attrs}
        if _finish_bounds(attrs, ch, TH):
            break
    else:
        raise ModelError(f"{where}: the integer membrane needs more than 62 bits "
                         f"(F = {F} fraction bits, {k} decay bits); lower --resolution-bits")
    rounded_b = sum(int((r * _TWO**F).denominator != 1) for r in ratios)
    rounded_c = sum(int((r * _TWO**F).denominator != 1) for r in v0s + rbs)
    rec = {
        "tau": float(1 / (1 - n.beta)),
        "v_threshold": float(n.theta + n.offset),
        "fraction_bits": F,
        "bias_fraction_bits": F,
        "bias_rounded_channels": rounded_b,
        "channels": len(ch.a),
        "membrane_bits": int(attrs["mem_bits"]),
        "exact": False,
        **_variant_record(n, reset, "rounded", k, m, rounded_c),
    }
    if directed:
        rec["bias_silent_channels"] = directed
    return attrs, rec, units, F


def _optional(m: int, k: int, rnd: int, reset: str, RB: list[int], V0: list[int],
              pshape: tuple[int, ...]) -> dict[str, Any]:
    """The optional attributes of the integer LIF that differ from their defaults."""
    out: dict[str, Any] = {}
    if m != (1 << k) - 1:
        out["decay_mult"] = m
    if rnd:
        out["round"] = 1
    if reset != "hard":
        out["reset"] = reset
        out["reset_by"] = _ints(RB, pshape)
    if any(V0):
        out["v_init"] = _ints(V0, pshape)
    return out


def _silence(attrs: dict[str, Any], ch: _Channels, TH: list[int], clamp_all: bool, below: int = 0) -> None:
    """Θ of the channels that can never fire → the smallest Θ that keeps them silent
    (their highest reachable H + 1), so that Θ does not widen the membrane's type."""
    rg = lif_ranges({**attrs, "mem_bits": 64}, ch.acc, ch.T)
    best = rg.h_max[rg.row_of.reshape(-1)]
    for c, (th, hm) in enumerate(zip(TH, best, strict=True)):
        if th > hm and (clamp_all or th >= below):
            TH[c] = int(hm) + 1
    attrs["theta"] = _ints(TH, ch.pshape)


def _finish_bounds(attrs: dict[str, Any], ch: _Channels, TH: list[int]) -> bool:
    """Silence the channels that cannot fire and set mem_bits from the proven ranges;
    False when a partial sum reaches 2^62."""
    _silence(attrs, ch, TH, clamp_all=True)
    rg = lif_ranges({**attrs, "mem_bits": 64}, ch.acc, ch.T)
    if rg.top >= INT64_SAFE:
        return False
    attrs["mem_bits"] = rg.mem_bits
    return True


def _variant_record(n: _Neuron, reset: str, decay: str, k: int, m: int, rounded_c: int) -> dict[str, Any]:
    return {
        "reset": reset,
        "v_reset": float(n.offset) if n.hard else None,
        "v_init": float(n.v0 + n.offset),
        "decay_input": n.decay_input,
        "decay": decay,
        "decay_bits": k,
        "beta": float(n.beta),
        "beta_hat": m / 2**k,
        "reset_rounded_channels": rounded_c,
    }


def fold_logits(s: Sym, logit_bits: int, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(attrs of the Requant node, the logits record) for the graph output s."""
    rank = len(s.shape)
    a = np.broadcast_to(s.a, tuple(max(x, y) for x, y in zip(s.a.shape, s.b.shape, strict=True)))
    b = np.broadcast_to(s.b, a.shape)
    af = [frac(v) for v in a.reshape(-1)]
    bf = [frac(v) for v in b.reshape(-1)]
    u = max((abs(v) for v in af), default=Fraction(1)) or Fraction(1)
    acc = max(abs(s.lo), abs(s.hi))
    for R in range(logit_bits, -1, -1):
        M = [round_half_up(v / u * 2**R) for v in af]
        Bq = [round_half_up(v / u * 2**R) for v in bf]
        top = acc * max(abs(m) for m in M) + max(abs(v) for v in Bq)
        if top < INT64_SAFE:
            break
    else:
        raise ModelError(f"the logits of {name!r} do not fit int64")
    attrs = {"mult": np.array(M, np.int64).reshape(a.shape), "bias": np.array(Bq, np.int64).reshape(a.shape),
             "logit_bits": R}
    exact = all((v / u * 2**R).denominator == 1 for v in af + bf)
    info = {
        "name": name,
        "rank": rank,
        "tensor": None,  # set by the lowerer: the Requant output
        "shape": list(s.shape),
        "dtype": "int64",
        "scale": float(u) * 2.0**-R,
        "logit_bits": R,
        "exact": exact,
        "layer": s.layer,
    }
    return attrs, info


@rule("LIF")
def lif(lw: Lowerer, node: Node) -> None:
    """LIF(a·X + b) → the integer LIF of the module docstring; spikes: a = 1, b = 0; the
    membrane output (if any): h = a_H·H + b_H (LIFFold.membrane_a, membrane_b)."""
    p = LIFParams.from_attrs(node.attrs)
    s = lw.sym_of(node, 0)
    membrane = node.outputs[1] if len(node.outputs) > 1 and node.outputs[1] else None
    fold = fold_lif(p, s, lw.resolution_bits, f"LIF {node.name!r}", membrane is not None)
    attrs, rec = fold.attrs, fold.record
    attrs["neuron"] = node.name
    rank = len(s.shape)
    if membrane is None:
        t = lw.emit("LIF", [s.t], node.outputs[0], attrs, s.shape, name=node.name)
    else:
        t, h = lw.emit("LIF", [s.t], [node.outputs[0], membrane], attrs, s.shape, name=node.name)
        lw.put(node, h, fold.membrane_a, arr(fold.membrane_b, rank), slot=1)
        rec = {**rec, "membrane_output": True}
    lw.put(node, t, arr(1.0, rank), arr(0.0, rank))
    lw.tensor_map[node.outputs[0]] = t
    lw.neuron_recs.append({"name": node.name, "layer": s.layer, **rec})
    if s.layer and lw.layer_recs.get(s.layer) is not None:
        lw.layer_recs[s.layer]["fraction_bits"] = rec["fraction_bits"]
        lw.layer_recs[s.layer]["neuron"] = node.name
