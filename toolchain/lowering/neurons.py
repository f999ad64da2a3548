"""LIF and logit folding: the affine view of a neuron's input → integer neuron parameters.

Integer LIF (per channel c, u = |a_c|, σ = sign(a_c), membrane V in units u·2^-F):

    X̃ = σ·acc·2^F + B,   B = round(b/u · 2^G) · 2^(kT),   F = G + k·T
    H = ((2^k − 1)·V + X̃) / 2^k              (decay_input=1; exact: no remainder, t ≤ T)
    s = H ≥ Θ,   Θ = ceil(θ/u · 2^F)  (">"  : floor(θ/u · 2^F) + 1)
    V = s ? 0 : H

This is the float LIF with b replaced by b̂ = B·u·2^-F (|b − b̂| ≤ u·2^-(G+1)); nothing
else is rounded. G is the smallest number of bits that represents every b/u exactly,
capped by `resolution_bits` (|b − b̂| ≤ θ·2^-(resolution_bits+1)).

Logits: the head's a_c·acc + b_c becomes L_c = M_c·acc + B_c with M_c = round(a_c/u·2^R),
B_c = round(b_c/u·2^R), u = max_c |a_c| (R lowered until int64 holds the result).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from hqc.errors import ModelError
from hqc.intops.base import INT64_SAFE
from hqc.ir import Node
from hqc.lif import LIFParams
from hqc.lowering.affine import Sym, arr, bits_needed, ceil_to, floor_to, frac, round_half_up
from hqc.lowering.rules import rule

if TYPE_CHECKING:
    from hqc.lowering.lowerer import Lowerer


def fold_lif(p: LIFParams, s: Sym, resolution_bits: int, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(attrs of the integer LIF node, its record) for the neuron p fed by s."""
    if p.v_reset is None or p.v_reset != 0.0:
        raise ModelError(f"{where}: lower-int supports hard reset to 0 only "
                         f"(this neuron: {p.reset} reset)")
    if p.v_init != 0.0:
        raise ModelError(f"{where}: a nonzero initial membrane is not supported")
    if not math.isfinite(p.tau) or p.tau < 2 or 2 ** round(math.log2(p.tau)) != p.tau:
        raise ModelError(f"{where}: tau = {p.tau:g}; lower-int needs tau a power of two ≥ 2 (a decay by shift)")
    if p.v_threshold <= 0:
        raise ModelError(f"{where}: threshold {p.v_threshold:g} ≤ 0 is not supported")
    k = round(math.log2(p.tau))
    ta = p.time_axis % len(s.shape)
    T = s.shape[ta]
    if s.a.shape[ta] != 1 or s.b.shape[ta] != 1:
        raise ModelError(f"{where}: its input scale varies over time")
    a = np.squeeze(s.a, axis=ta)
    b = np.squeeze(s.b, axis=ta)
    pshape = tuple(max(x, y) for x, y in zip(a.shape, b.shape, strict=True))
    a, b = np.broadcast_to(a, pshape), np.broadcast_to(b, pshape)
    theta = frac(p.v_threshold)
    af = [frac(v) for v in a.reshape(-1)]
    bf = [frac(v) for v in b.reshape(-1)]
    res = resolution_bits
    units, signs = [], []
    for av in af:
        if av == 0:
            units.append(theta / 2**res)
            signs.append(0)
        else:
            units.append(abs(av))
            signs.append(1 if av > 0 else -1)
    ratios = [bv / u for bv, u in zip(bf, units, strict=True)]
    # G: the fewest bits that hold every b/u exactly, capped by the resolution rule.
    g_cap = max(0, max(math.ceil(res - math.log2(theta / u)) for u in units))
    G = next((gg for gg in range(g_cap + 1) if all((r * 2**gg).denominator == 1 for r in ratios)), g_cap)
    kT = k * T
    F = G + kT
    acc_max = max(abs(s.lo), abs(s.hi)) << F
    B, TH, rounded = [], [], 0
    for r, u in zip(ratios, units, strict=True):
        bq = round_half_up(r * 2**G)
        rounded += int(Fraction(bq) != r * 2**G)
        bt = bq << kT
        th_exact = theta / u * 2**F
        th = math.ceil(th_exact) if p.comparison == ">=" else math.floor(th_exact) + 1
        if p.decay_input:
            if bt >= acc_max + (th << k):  # fires at every step whatever the input
                bt = ceil_to(acc_max + (th << k), 1 << kT)
            elif bt + acc_max <= 0:  # never fires
                bt = floor_to(-acc_max, 1 << kT)
            if th > max(0, acc_max + bt):  # never fires
                th = max(0, acc_max + bt) + 1
        B.append(bt)
        TH.append(th)
    x_max = acc_max + max(abs(v) for v in B)
    h_max = x_max if p.decay_input else x_max << k
    num_max = (h_max << k) + h_max + (x_max << (0 if p.decay_input else k))
    if num_max >= INT64_SAFE or max(TH) >= INT64_SAFE:
        raise ModelError(f"{where}: the integer membrane needs more than 62 bits "
                         f"(F = {F} fraction bits); lower --resolution-bits")
    mem_bits = bits_needed(num_max) + 1
    attrs = {
        "time_axis": ta,
        "tau_shift": k,
        "x_shift": 0 if p.decay_input else k,
        "frac_bits": F,
        "bias": np.array(B, np.int64).reshape(pshape),
        "theta": np.array(TH, np.int64).reshape(pshape),
        "sign": np.array(signs, np.int64).reshape(pshape),
        "mem_bits": mem_bits,
        "layer": s.layer or "",
    }
    rec = {
        "tau": p.tau,
        "v_threshold": p.v_threshold,
        "fraction_bits": F,
        "bias_fraction_bits": G,
        "bias_rounded_channels": rounded,
        "channels": len(af),
        "membrane_bits": mem_bits,
        "exact": rounded == 0,
    }
    return attrs, rec


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
    """LIF(a·X + b) → the integer LIF of the module docstring; spikes: a = 1, b = 0."""
    p = LIFParams.from_attrs(node.attrs)
    s = lw.sym_of(node, 0)
    attrs, rec = fold_lif(p, s, lw.resolution_bits, f"LIF {node.name!r}")
    attrs["neuron"] = node.name
    t = lw.emit("LIF", [s.t], node.outputs[0], attrs, s.shape, name=node.name)
    rank = len(s.shape)
    lw.put(node, t, arr(1.0, rank), arr(0.0, rank))
    lw.tensor_map[node.outputs[0]] = t
    lw.neuron_recs.append({"name": node.name, "layer": s.layer, **rec})
    if s.layer and lw.layer_recs.get(s.layer) is not None:
        lw.layer_recs[s.layer]["fraction_bits"] = rec["fraction_bits"]
        lw.layer_recs[s.layer]["neuron"] = node.name
