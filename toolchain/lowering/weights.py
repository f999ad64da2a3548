"""Weight codes of the lowering: a layer's quantized weight as integers times a unit.

    uniform b-bit: w_int = q, unit_c = s_c                      (Q(w) = unit · w_int exactly)
    power-of-two:  w_int = ±2^(kmax−k), unit_c = s_c·2^-kmax
    fp32:          w_int = rint(w / 2^e_c), 2^e_c = 2^(E_c − g)  (see `layer_codes`)

The integer weights are exactly the codes of `hqc.quant` (same scales, same rounding,
computed by the same functions). The scales are the learned ones the fine-tune hands over
(`hqc.quant.save_scales` / `load_scales`; graph.meta["learned_scales"], see
`learned_scale`) when given for the layer's choice, else the MSE-grid scales recomputed
from the weight (`channel_scales`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hqc.choices import QuantChoice
from hqc.errors import ModelError
from hqc.ir import Graph
from hqc.layers import LayerInfo
from hqc.quant import (
    LearnedScales,
    channel_scales,
    check_scales,
    kmax_pot,
    quantize_codes,
    storage_code,
)

#: graph.meta key of the learned scales ({layer name: (choice name, float32 scales)}).
LEARNED_SCALES_META = "learned_scales"

FP32_GRID_BITS = 30  # fp32 weights: per-channel fixed point with up to 30 bits below the max


def layer_weight(graph: Graph, layer: LayerInfo) -> np.ndarray:
    """The layer's weight in the PyTorch convention (out channels on axis 0), float32."""
    # imported here: hqc.passes (every pass, lower-int too) imports this module
    from hqc.passes.annotate_layers import weight_transposed

    w = np.asarray(graph.const(layer.weight), np.float32)
    return np.ascontiguousarray(w.T) if weight_transposed(graph, layer) else w


def learned_scale(graph: Graph, layer: LayerInfo, choice: QuantChoice) -> np.ndarray | None:
    """The learned scales of `layer` under `choice` carried by the graph (None: recompute).
    A scale learned for another choice is not used; a malformed one is a ModelError."""
    scales: LearnedScales = graph.meta.get(LEARNED_SCALES_META) or {}
    entry = scales.get(layer.name)
    if entry is None or entry[0] != choice.name or choice.kind == "fp32":
        return None
    try:
        return check_scales(entry[1], int(layer.weight_shape[0]), choice, f"learned scales of {layer.name}")
    except ValueError as exc:
        raise ModelError(str(exc)) from None


@dataclass
class LayerCodes:
    """Integer form of one layer's quantized weight: Q(w) = unit_c · w_int exactly."""

    choice: QuantChoice
    w_int: np.ndarray  # int64, PyTorch layout
    unit: np.ndarray  # float64 per output channel
    storage: np.ndarray | None  # unsigned b-bit storage words (uniform/pot), PyTorch layout
    w_float: np.ndarray | None = None  # fp32 layers: the float32 weights the kernels store
    unit_exp: np.ndarray | None = None  # fp32 layers: unit_c = 2^unit_exp[c]
    fp32_rounded: int = 0  # fp32 layers: weights moved onto the per-channel grid


def layer_codes(w: np.ndarray, choice: QuantChoice, input_bound: int,
                scales: np.ndarray | None = None) -> LayerCodes:
    """Weight (PyTorch layout) → integer codes with the exact per-channel unit; `scales`
    (float32 per output channel, uniform/pot only): the learned scales, else recomputed.

    uniform: w_int = q, unit = s.  power-of-two: w_int = ±2^(kmax−k), unit = s·2^-kmax.
    fp32: w_int = rint(w / 2^e_c) with 2^e_c = 2^(E_c − g) (E_c: exponent of the channel's
    max |w|, g ≤ 30 chosen so that fan_in · input_bound · 2^g < 2^53, which keeps every
    partial sum exact in int64 and in double); weights ≥ 2^(E_c−7) are unchanged.
    """
    w = np.asarray(w, np.float32)
    if scales is not None and choice.kind != "fp32":
        try:
            s = check_scales(scales, w.shape[0], choice)
        except ValueError as exc:
            raise ModelError(str(exc)) from None
    elif choice.kind != "fp32":
        s = channel_scales(w, choice)
    if choice.kind == "uniform":
        (q, _) = quantize_codes(w, choice, s)
        return LayerCodes(choice, q.astype(np.int64), s.astype(np.float64), storage_code((q,), choice))
    if choice.kind == "pot":
        sign, k, _ = quantize_codes(w, choice, s)
        kmax = kmax_pot(choice.bits)
        mag = np.left_shift(np.int64(1), (kmax - k.astype(np.int64)))
        w_int = np.where(sign > 0, -mag, mag).astype(np.int64)
        unit = s.astype(np.float64) * 2.0**-kmax
        return LayerCodes(choice, w_int, unit, storage_code((sign, k), choice))
    flat = w.reshape(w.shape[0], -1).astype(np.float64)
    fan_in = flat.shape[1]
    g = min(FP32_GRID_BITS, 52 - math.ceil(math.log2(fan_in * max(1, input_bound) + 1)))
    if g < 8:
        raise ModelError(f"fp32 layer with fan-in {fan_in} and inputs up to {input_bound}: "
                         "too large for an exact integer accumulation")
    maxabs = np.abs(flat).max(axis=1)
    exps = np.array([math.frexp(float(m))[1] if m > 0 else 0 for m in maxabs], np.int64)
    unit_exp = exps - g
    unit = np.ldexp(1.0, unit_exp.astype(np.int32))
    m = np.rint(flat / unit[:, None])
    w_grid = (m * unit[:, None]).astype(np.float32)
    if not np.array_equal(w_grid.astype(np.float64), m * unit[:, None]):
        raise ModelError("internal: fp32 grid weight not representable in float32")
    rounded = int((w_grid != flat.astype(np.float32)).sum())
    return LayerCodes(choice, m.astype(np.int64).reshape(w.shape), unit, None,
                      w_grid.reshape(w.shape), unit_exp, rounded)


def packed_bytes(params: int, bits: int) -> int:
    """Bytes of `params` codes of `bits` bits packed back to back: ceil(params·bits/8)."""
    return (int(params) * int(bits) + 7) // 8


def qattrs(layer: LayerInfo, lc: LayerCodes) -> dict:
    """The weight attributes of a QConv/QLinear node (hqc.intops.weights)."""
    c = lc.choice
    attrs: dict = {"layer": layer.name, "quant": c.name, "bits": int(c.bits), "w": lc.w_int}
    if lc.storage is not None:
        attrs["codes"] = lc.storage.astype(np.uint8)
    if lc.w_float is not None:
        attrs["w_float"] = lc.w_float
        attrs["unit_exp"] = lc.unit_exp
    return attrs
