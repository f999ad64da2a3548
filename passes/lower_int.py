"""lower-int: the frontend IR + a plan → an integer-only IR (domain `ai.hqc.int`).

Every tensor of the model is tracked as an *affine view of an integer tensor*:
real = a · X + b, with X int64 and a, b float64 arrays broadcastable to X (per channel
or scalar). The rewrite, op by op (see docs/lowering.md for the rounding choices):

    model input (integer-valued events)        → X, a = 1, b = 0
    Conv/Gemm/MatMul(x, W) [+ bias]             → QConv/QLinear(X) with integer codes,
        (Q(W) = unit_c · w_int)                     a = a_x · unit_c, b = bias
    BatchNormalization / Mul / Div / Add / Sub by constants
                                                → a, b updated; no integer op
    Reshape / Transpose / Squeeze / Unsqueeze / Flatten
                                                → Reshape / Transpose (a, b follow the
                                                   channel axis)
    Add(x, y) of integer tensors (residuals)   → Add (or Add + Shl when a_y / a_x = 2^k)
    MatMul(x, y) of integer tensors (attention) → MatMul, a = a_x · a_y (a scale such as
                                                   0.125 is never applied: it is folded
                                                   into the next threshold)
    MaxPool (a > 0)                             → MaxPool
    ReduceMean over n elements                  → ReduceSum, a = a / n
    LIF(a·X + b), tau = 2^k, hard reset to 0    → LIF on an integer membrane with F
                                                   fraction bits, integer bias B and
                                                   threshold Θ per channel (below)
    graph output a·X + b                        → Requant: L = M·X + B, M_c ≈ a_c/u · 2^R

Integer LIF (per channel c, u = |a_c|, σ = sign(a_c), membrane V in units u·2^-F):

    X̃ = σ·acc·2^F + B,   B = round(b/u · 2^G) · 2^(kT),   F = G + k·T
    H = ((2^k − 1)·V + X̃) / 2^k              (decay_input=1; exact: no remainder, t ≤ T)
    s = H ≥ Θ,   Θ = ceil(θ/u · 2^F)  (">"  : floor(θ/u · 2^F) + 1)
    V = s ? 0 : H

This is the float LIF with b replaced by b̂ = B·u·2^-F (|b − b̂| ≤ u·2^-(G+1)); nothing
else is rounded. G is the smallest number of bits that represents every b/u exactly,
capped by `resolution_bits` (|b − b̂| ≤ θ·2^-(resolution_bits+1)).

Pre: the frontend ran (canonicalize, recognize-neurons); shapes static; `plan` holds a
choice for every layer of `annotate_layers(graph)`. Post: a new Graph whose nodes are all
in `ai.hqc.int`, every tensor int64, graph.meta["lowering"] holding per-layer and
per-neuron records and graph.meta["bounds"] an integer interval for every tensor.
Running the pass on a lowered graph returns it unchanged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from hqc.choices import QuantChoice
from hqc.errors import ModelError, PlanError
from hqc.ir import Graph, Node, Value
from hqc.layers import LayerInfo
from hqc.lif import LIFParams
from hqc.passes.annotate_layers import weight_transposed  # noqa: F401  (re-export)
from hqc.passes.base import Context, Pass, PassResult, register
from hqc.quant import channel_scales, kmax_pot, quantize_codes, storage_code

log = logging.getLogger(__name__)

INT_DOMAIN = "ai.hqc.int"
DEFAULT_RESOLUTION_BITS = 16
DEFAULT_LOGIT_BITS = 16
DEFAULT_INPUT_RANGE = (0, 255)
FP32_GRID_BITS = 30  # fp32 weights: per-channel fixed point with up to 30 bits below the max
EXACT_DOUBLE = 2**53
INT64_SAFE = 2**62

_SHAPE_OPS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")


# --------------------------------------------------------------------------- records
@dataclass
class Sym:
    """A model tensor as an affine view real = a · X + b of the integer tensor X."""

    t: str
    a: np.ndarray
    b: np.ndarray
    shape: tuple[int, ...]
    lo: int
    hi: int
    layer: str | None = None  # the quantized layer whose accumulator X is (if any)


@dataclass
class LoweredModel:
    """The result of lowering: the integer IR and what the reports need."""

    graph: Graph
    layers: list[dict[str, Any]]
    neurons: list[dict[str, Any]]
    logits: dict[str, Any]
    input: dict[str, Any]
    tensor_map: dict[str, str] = field(default_factory=dict)  # frontend LIF output → lowered


def layer_weight(graph: Graph, layer: LayerInfo) -> np.ndarray:
    """The layer's weight in the PyTorch convention (out channels on axis 0), float32."""
    w = np.asarray(graph.const(layer.weight), np.float32)
    return np.ascontiguousarray(w.T) if weight_transposed(graph, layer) else w


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


def layer_codes(w: np.ndarray, choice: QuantChoice, input_bound: int) -> LayerCodes:
    """Weight (PyTorch layout) → integer codes with the exact per-channel unit.

    uniform: w_int = q, unit = s.  power-of-two: w_int = ±2^(kmax−k), unit = s·2^-kmax.
    fp32: w_int = rint(w / 2^e_c) with 2^e_c = 2^(E_c − g) (E_c: exponent of the channel's
    max |w|, g ≤ 30 chosen so that fan_in · input_bound · 2^g < 2^53, which keeps every
    partial sum exact in int64 and in double); weights ≥ 2^(E_c−7) are unchanged.
    """
    w = np.asarray(w, np.float32)
    if choice.kind == "uniform":
        s = channel_scales(w, choice)
        (q, _) = quantize_codes(w, choice, s)
        return LayerCodes(choice, q.astype(np.int64), s.astype(np.float64), storage_code((q,), choice))
    if choice.kind == "pot":
        s = channel_scales(w, choice)
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


# --------------------------------------------------------------------------- helpers
def _prod(xs) -> int:
    n = 1
    for v in xs:
        n *= int(v)
    return n


def _arr(x: Any, rank: int) -> np.ndarray:
    a = np.asarray(x, np.float64)
    if a.ndim > rank:
        if _prod(a.shape[: a.ndim - rank]) != 1:
            raise ModelError(f"constant of shape {list(a.shape)} does not broadcast to rank {rank}")
        a = a.reshape(a.shape[a.ndim - rank:])
    return a.reshape((1,) * (rank - a.ndim) + a.shape)


def _compact(a: np.ndarray) -> np.ndarray:
    """Shrink axes along which a is constant to size 1 (keeps rank)."""
    for ax in range(a.ndim):
        if a.shape[ax] > 1 and np.all(a == a.take([0], axis=ax)):
            a = a.take([0], axis=ax)
    return a


def _is_scalar(a: np.ndarray) -> bool:
    return a.size == 1


def _reshape_aff(arr: np.ndarray, in_shape: tuple[int, ...], out_shape: tuple[int, ...], where: str) -> np.ndarray:
    if arr.size == 1:
        return arr.reshape((1,) * len(out_shape))
    non1 = [i for i, d in enumerate(arr.shape) if d != 1]
    if len(non1) != 1:
        raise ModelError(f"{where}: a per-channel scale spread over several axes cannot follow a reshape")
    ax = non1[0]
    c = in_shape[ax]
    pre = _prod(in_shape[:ax])
    for j, d in enumerate(out_shape):
        if d == c and _prod(out_shape[:j]) == pre:
            new = [1] * len(out_shape)
            new[j] = c
            return arr.reshape(new)
    raise ModelError(f"{where}: reshape {list(in_shape)} → {list(out_shape)} splits the channel axis "
                     "of a per-channel scale")


def _frac(x: float) -> Fraction:
    return Fraction(float(x))


def _round_half_up(f: Fraction) -> int:
    return math.floor(f + Fraction(1, 2))


def _ceil_to(v: int, m: int) -> int:
    return -((-v) // m) * m


def _floor_to(v: int, m: int) -> int:
    return (v // m) * m


def _bits_needed(v: int) -> int:
    return int(abs(int(v))).bit_length()


# --------------------------------------------------------------------------- the pass
class _Lowerer:
    def __init__(self, graph: Graph, layers: list[LayerInfo], plan: dict[str, QuantChoice],
                 input_range: tuple[int, int], resolution_bits: int, logit_bits: int) -> None:
        self.src = graph
        self.layers = layers
        self.plan = plan
        self.input_range = (int(input_range[0]), int(input_range[1]))
        self.resolution_bits = int(resolution_bits)
        self.logit_bits = int(logit_bits)
        self.by_node: dict[str, LayerInfo] = {n: layer for layer in layers for n in layer.nodes}
        self.out = Graph(name=(graph.name or "model") + ".int", opset=17)
        self.out.meta["bounds"] = {}
        self.sym: dict[str, Sym] = {}
        self.codes: dict[str, LayerCodes] = {}
        self.layer_recs: dict[str, dict[str, Any]] = {}
        self.neuron_recs: list[dict[str, Any]] = []
        self.tensor_map: dict[str, str] = {}
        missing = [layer.name for layer in layers if layer.name not in plan]
        if missing:
            raise PlanError(f"plan has no choice for layers: {', '.join(missing)}")

    # ---------------------------------------------------------------- emit helpers
    def _shape(self, t: str) -> tuple[int, ...]:
        s = self.src.shape(t)
        if s is None or any(not isinstance(d, int) for d in s):
            p = self.src.producer(t)
            raise ModelError(f"tensor {t!r} (node {p.name if p else '?'!r}) has no static shape")
        return tuple(int(d) for d in s)

    def _emit(self, op: str, inputs: list[str], base: str, attrs: dict[str, Any], shape: tuple[int, ...],
              lo: int, hi: int, name: str | None = None) -> str:
        if max(abs(lo), abs(hi)) >= INT64_SAFE:
            raise ModelError(f"integer range of {base!r} exceeds int64 ({lo}..{hi})")
        t = self.out.fresh(base)
        self.out.add_node(op, inputs, [t], attrs, name=name or t, domain=INT_DOMAIN)
        self.out.values[t].shape = tuple(shape)
        self.out.values[t].dtype = "int64"
        self.out.meta["bounds"][t] = (int(lo), int(hi))
        return t

    def _sym_of(self, node: Node, slot: int) -> Sym:
        t = node.inputs[slot]
        if t not in self.sym:
            if self.src.is_const(t):
                raise ModelError(f"node {node.name!r} ({node.op}): constant operand in slot {slot} is not supported here")
            raise ModelError(f"node {node.name!r} ({node.op}): input {t!r} has no integer form")
        return self.sym[t]

    def _const(self, node: Node, slot: int) -> np.ndarray | None:
        if slot >= len(node.inputs) or not node.inputs[slot]:
            return None
        return self.src.const(node.inputs[slot])

    def _unsupported(self, node: Node, why: str) -> ModelError:
        return ModelError(f"lower-int: node {node.name!r} ({node.op}): {why}")

    # ---------------------------------------------------------------- driver
    def run(self) -> LoweredModel:
        g = self.src
        if len(g.inputs) != 1:
            raise ModelError(f"the model has {len(g.inputs)} inputs; lowering supports one")
        x = g.inputs[0]
        shape = self._shape(x)
        self.out.inputs = [x]
        self.out.values[x] = Value(shape, "int64")
        lo, hi = self.input_range
        self.out.meta["bounds"][x] = (lo, hi)
        rank = len(shape)
        self.sym[x] = Sym(x, _arr(1.0, rank), _arr(0.0, rank), shape, lo, hi)
        for node in g.nodes():
            handler = getattr(self, "_op_" + node.op, None)
            if node.op == "LIF" and node.domain:
                handler = self._op_LIF
            if handler is None:
                raise self._unsupported(node, "operator not supported by the integer lowering")
            handler(node)
        outs = []
        logits: dict[str, Any] = {}
        for t in g.outputs:
            s = self.sym.get(t)
            if s is None:
                raise ModelError(f"graph output {t!r} has no integer form")
            o, logits = self._requant(s, t)
            outs.append(o)
        self.out.outputs = outs
        for layer in self.layers:
            if layer.name not in self.layer_recs:
                raise ModelError(f"layer {layer.name!r} was not lowered (its nodes are not on the path to the output)")
        layers = [self.layer_recs[layer.name] for layer in self.layers]
        self.out.meta["lowered"] = True
        inp = {"name": x, "shape": list(shape), "dtype": "int64", "range": [lo, hi]}
        return LoweredModel(self.out, layers, self.neuron_recs, logits, inp, self.tensor_map)

    # ---------------------------------------------------------------- shape ops
    def _reshape_like(self, node: Node) -> None:
        s = self._sym_of(node, 0)
        out_shape = self._shape(node.outputs[0])
        if _prod(out_shape) != _prod(s.shape):
            raise self._unsupported(node, f"reshape {list(s.shape)} → {list(out_shape)} changes the size")
        a = _reshape_aff(s.a, s.shape, out_shape, node.name)
        b = _reshape_aff(s.b, s.shape, out_shape, node.name)
        t = self._emit("Reshape", [s.t], node.outputs[0], {"shape": list(out_shape)}, out_shape, s.lo, s.hi)
        self.sym[node.outputs[0]] = Sym(t, a, b, out_shape, s.lo, s.hi, s.layer)

    _op_Reshape = _reshape_like
    _op_Flatten = _reshape_like
    _op_Squeeze = _reshape_like
    _op_Unsqueeze = _reshape_like

    def _op_Identity(self, node: Node) -> None:
        self.sym[node.outputs[0]] = self._sym_of(node, 0)

    _op_Dropout = _op_Identity

    def _op_Transpose(self, node: Node) -> None:
        s = self._sym_of(node, 0)
        perm = list(node.attrs.get("perm", list(reversed(range(len(s.shape))))))
        out_shape = tuple(s.shape[p] for p in perm)
        t = self._emit("Transpose", [s.t], node.outputs[0], {"perm": perm}, out_shape, s.lo, s.hi)
        self.sym[node.outputs[0]] = Sym(t, s.a.transpose(perm), s.b.transpose(perm), out_shape, s.lo, s.hi, s.layer)

    # ---------------------------------------------------------------- affine ops
    def _binary_const(self, node: Node) -> tuple[Sym, np.ndarray, int] | None:
        """(sym, const, sym_slot) when one operand is a constant."""
        c0, c1 = self._const(node, 0), self._const(node, 1)
        if c0 is None and c1 is None:
            return None
        if c0 is not None and c1 is not None:
            raise self._unsupported(node, "both operands constant (not folded by canonicalize)")
        slot = 1 if c0 is not None else 0
        s = self._sym_of(node, slot)
        c = c0 if c0 is not None else c1
        out_shape = self._shape(node.outputs[0])
        if tuple(np.broadcast_shapes(s.shape, np.shape(c))) != tuple(s.shape) or out_shape != s.shape:
            raise self._unsupported(node, "a constant operand that broadcasts the integer tensor is not supported")
        return s, _arr(c, len(s.shape)), slot

    def _op_Mul(self, node: Node) -> None:
        bc = self._binary_const(node)
        if bc is None:
            raise self._unsupported(node, "elementwise product of two activations is not supported")
        s, c, _ = bc
        self.sym[node.outputs[0]] = Sym(s.t, _compact(s.a * c), _compact(s.b * c), s.shape, s.lo, s.hi, s.layer)

    def _op_Div(self, node: Node) -> None:
        bc = self._binary_const(node)
        if bc is None or bc[2] != 0:
            raise self._unsupported(node, "only division by a constant is supported")
        s, c, _ = bc
        self.sym[node.outputs[0]] = Sym(s.t, _compact(s.a / c), _compact(s.b / c), s.shape, s.lo, s.hi, s.layer)

    def _op_Neg(self, node: Node) -> None:
        s = self._sym_of(node, 0)
        self.sym[node.outputs[0]] = Sym(s.t, -s.a, -s.b, s.shape, s.lo, s.hi, s.layer)

    def _op_BatchNormalization(self, node: Node) -> None:
        s = self._sym_of(node, 0)
        if len(node.outputs) > 1 and any(node.outputs[1:]):
            raise self._unsupported(node, "training-mode BatchNormalization")
        scale, bias, mean, var = (np.asarray(self._const(node, i), np.float64) for i in range(1, 5))
        eps = float(np.float32(node.attrs.get("epsilon", 1e-5)))
        g = scale / np.sqrt(var.astype(np.float32).astype(np.float64) + eps)
        shape = [1] * len(s.shape)
        shape[1] = -1
        g, bias, mean = g.reshape(shape), bias.reshape(shape), mean.reshape(shape)
        a = _compact(s.a * g)
        b = _compact((s.b - mean) * g + bias)
        self.sym[node.outputs[0]] = Sym(s.t, a, b, s.shape, s.lo, s.hi, s.layer)

    def _add_sub(self, node: Node, sign: int) -> None:
        bc = self._binary_const(node)
        if bc is not None:
            s, c, slot = bc
            if sign > 0:
                b = s.b + c
                a = s.a
            elif slot == 0:  # x - c
                a, b = s.a, s.b - c
            else:  # c - x
                a, b = -s.a, c - s.b
            self.sym[node.outputs[0]] = Sym(s.t, _compact(a), _compact(b), s.shape, s.lo, s.hi, s.layer)
            return
        x, y = self._sym_of(node, 0), self._sym_of(node, 1)
        if x.shape != y.shape:
            raise self._unsupported(node, f"operands of shapes {list(x.shape)} and {list(y.shape)} (broadcasting)")
        xt, yt, a = x.t, y.t, x.a
        xlo, xhi, ylo, yhi = x.lo, x.hi, y.lo, y.hi
        if _is_scalar(x.a) and _is_scalar(y.a):
            ax, ay = float(x.a.reshape(-1)[0]), float(y.a.reshape(-1)[0])
            r = ay / ax if ax != 0 else math.inf
            k = round(math.log2(abs(r))) if r not in (0, math.inf) and math.isfinite(r) else None
            if k is None or abs(r) != 2.0**k or r < 0:
                raise self._unsupported(node, f"adding integer tensors of scales {ax:g} and {ay:g} "
                                              "(their ratio is not a power of two)")
            if k > 0:
                yt = self._emit("Shl", [y.t], node.outputs[0] + "_shl", {"n": k}, y.shape, y.lo << k, y.hi << k)
                ylo, yhi = y.lo << k, y.hi << k
            elif k < 0:
                xt = self._emit("Shl", [x.t], node.outputs[0] + "_shl", {"n": -k}, x.shape, x.lo << -k, x.hi << -k)
                xlo, xhi = x.lo << -k, x.hi << -k
                a = y.a
        elif not np.array_equal(*np.broadcast_arrays(x.a, y.a)):
            raise self._unsupported(node, "adding integer tensors with different per-channel scales")
        if sign > 0:
            lo, hi = xlo + ylo, xhi + yhi
            b = x.b + y.b
        else:
            lo, hi = xlo - yhi, xhi - ylo
            b = x.b - y.b
        t = self._emit("Add" if sign > 0 else "Sub", [xt, yt], node.outputs[0], {}, x.shape, lo, hi)
        self.sym[node.outputs[0]] = Sym(t, a, _compact(b), x.shape, lo, hi)

    def _op_Add(self, node: Node) -> None:
        self._add_sub(node, 1)

    def _op_Sub(self, node: Node) -> None:
        self._add_sub(node, -1)

    # ---------------------------------------------------------------- pooling, reductions
    def _op_MaxPool(self, node: Node) -> None:
        s = self._sym_of(node, 0)
        if len(node.outputs) > 1 and any(node.outputs[1:]):
            raise self._unsupported(node, "MaxPool with an indices output")
        if np.any(s.a <= 0) or any(d != 1 for d in s.a.shape[2:]) or any(d != 1 for d in s.b.shape[2:]):
            raise self._unsupported(node, "max-pool of a tensor whose scale is not positive per channel")
        if node.attrs.get("ceil_mode", 0) or any(d != 1 for d in node.attrs.get("dilations", [1])):
            raise self._unsupported(node, "ceil_mode and dilations are not supported")
        if node.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise self._unsupported(node, "auto_pad is not supported")
        k = list(node.attrs["kernel_shape"])
        nd = len(k)
        attrs = {
            "kernel_shape": k,
            "strides": list(node.attrs.get("strides", [1] * nd)),
            "pads": list(node.attrs.get("pads", [0] * (2 * nd))),
        }
        if any(p >= kk for p, kk in zip(attrs["pads"], k + k, strict=True)):
            raise self._unsupported(node, "padding as large as the window")
        out_shape = self._shape(node.outputs[0])
        t = self._emit("MaxPool", [s.t], node.outputs[0], attrs, out_shape, s.lo, s.hi)
        self.sym[node.outputs[0]] = Sym(t, s.a, s.b, out_shape, s.lo, s.hi)

    def _reduce(self, node: Node, mean: bool) -> None:
        s = self._sym_of(node, 0)
        rank = len(s.shape)
        if len(node.inputs) > 1 and node.inputs[1]:
            axes = [int(v) for v in np.asarray(self._const(node, 1)).reshape(-1)]
        else:
            axes = list(node.attrs.get("axes", []))
        if not axes:
            axes = list(range(rank))
        axes = sorted({a % rank for a in axes})
        keep = bool(node.attrs.get("keepdims", 1))
        if any(s.a.shape[a] != 1 or s.b.shape[a] != 1 for a in axes):
            raise self._unsupported(node, "reduction over an axis along which the scale varies")
        n = _prod(s.shape[a] for a in axes)
        out_shape = self._shape(node.outputs[0])
        a = s.a / n if mean else s.a
        b = s.b if mean else s.b * n
        if not keep:
            a = a.reshape([d for i, d in enumerate(a.shape) if i not in axes])
            b = b.reshape([d for i, d in enumerate(b.shape) if i not in axes])
        lo, hi = min(0, s.lo * n), max(0, s.hi * n)
        t = self._emit("ReduceSum", [s.t], node.outputs[0], {"axes": axes, "keepdims": int(keep)}, out_shape, lo, hi)
        self.sym[node.outputs[0]] = Sym(t, a, b, out_shape, lo, hi)

    def _op_ReduceMean(self, node: Node) -> None:
        self._reduce(node, True)

    def _op_ReduceSum(self, node: Node) -> None:
        self._reduce(node, False)

    def _op_GlobalAveragePool(self, node: Node) -> None:
        s = self._sym_of(node, 0)
        node = Node(node.name, "ReduceMean", [node.inputs[0]], node.outputs,
                    {"axes": list(range(2, len(s.shape))), "keepdims": 1})
        self._reduce(node, True)

    # ---------------------------------------------------------------- weight layers
    def _layer_of(self, node: Node) -> LayerInfo | None:
        return self.by_node.get(node.name)

    def _codes(self, layer: LayerInfo, input_bound: int) -> LayerCodes:
        if layer.name not in self.codes:
            w = layer_weight(self.src, layer)
            self.codes[layer.name] = layer_codes(w, self.plan[layer.name], input_bound)
        return self.codes[layer.name]

    def _weight_input(self, node: Node, layer: LayerInfo) -> Sym:
        slot = 0
        if node.op == "MatMul":
            if node.inputs[0] == layer.weight:
                raise self._unsupported(node, "MatMul W·x with the weight on the left is not supported")
        s = self._sym_of(node, slot)
        if not _is_scalar(s.a) or np.any(s.b != 0):
            raise self._unsupported(node, "the input of a weight layer must be an integer tensor "
                                          "with one scale and no offset")
        return s

    def _layer_record(self, layer: LayerInfo, lc: LayerCodes, input_kind: str, s_in: Sym) -> None:
        rec = self.layer_recs.get(layer.name)
        if rec is not None:
            return
        c = lc.choice
        self.layer_recs[layer.name] = {
            "name": layer.name,
            "kind": layer.kind,
            "quantizer": c.name,
            "bits": c.bits,
            "params": int(layer.params),
            "packed_bytes": packed_bytes(layer.params, c.bits),
            "fp32_bytes": 4 * int(layer.params),
            "input": input_kind,
            "input_range": [int(s_in.lo), int(s_in.hi)],
            "arith": {"fp32": "double accumulate of float32 weights (exact, see docs)",
                      "uniform": "integer add" if input_kind == "spikes" else "integer MAC",
                      "pot": "shift and add"}[c.kind],
            "fraction_bits": None,
            **({"fp32_weights_rounded": lc.fp32_rounded} if c.kind == "fp32" else {}),
        }

    def _qattrs(self, layer: LayerInfo, lc: LayerCodes) -> dict[str, Any]:
        c = lc.choice
        attrs: dict[str, Any] = {"layer": layer.name, "quant": c.name, "bits": int(c.bits), "w": lc.w_int}
        if lc.storage is not None:
            attrs["codes"] = lc.storage.astype(np.uint8)
        if lc.w_float is not None:
            attrs["w_float"] = lc.w_float
            attrs["unit_exp"] = lc.unit_exp
        return attrs

    @staticmethod
    def _acc_bounds(w_int: np.ndarray, lo: int, hi: int) -> tuple[int, int]:
        flat = w_int.reshape(w_int.shape[0], -1).astype(object)
        xlo, xhi = min(lo, 0), max(hi, 0)
        pos = np.where(flat > 0, flat, 0)
        neg = np.where(flat < 0, flat, 0)
        hi_c = (pos * xhi + neg * xlo).sum(axis=1)
        lo_c = (pos * xlo + neg * xhi).sum(axis=1)
        return int(min(lo_c)), int(max(hi_c))

    def _op_Conv(self, node: Node) -> None:
        layer = self._layer_of(node)
        if layer is None:
            raise self._unsupported(node, "Conv without a constant weight")
        s = self._weight_input(node, layer)
        bound = max(abs(s.lo), abs(s.hi))
        lc = self._codes(layer, bound)
        w = lc.w_int
        nd = w.ndim - 2
        if node.attrs.get("group", 1) != 1:
            raise self._unsupported(node, "grouped convolution is not supported")
        if node.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise self._unsupported(node, "auto_pad is not supported")
        attrs = self._qattrs(layer, lc)
        attrs.update(
            nd=nd,
            strides=list(node.attrs.get("strides", [1] * nd)),
            pads=list(node.attrs.get("pads", [0] * (2 * nd))),
            dilations=list(node.attrs.get("dilations", [1] * nd)),
        )
        out_shape = self._shape(node.outputs[0])
        lo, hi = self._acc_bounds(w, s.lo, s.hi)
        t = self._emit("QConv", [s.t], node.outputs[0], attrs, out_shape, lo, hi)
        rank = len(out_shape)
        shp = [1] * rank
        shp[1] = -1
        a = _compact(float(s.a.reshape(-1)[0]) * lc.unit.reshape(shp))
        bias = self._const(node, 2)
        b = _arr(0.0, rank) if bias is None else _compact(np.asarray(bias, np.float64).reshape(shp))
        self.sym[node.outputs[0]] = Sym(t, a, b, out_shape, lo, hi, layer.name)
        self._layer_record(layer, lc, "spikes" if (s.lo, s.hi) == (0, 1) else "integers", s)

    def _linear(self, node: Node, alpha: float = 1.0, bias: np.ndarray | None = None) -> None:
        layer = self._layer_of(node)
        if layer is None:
            raise self._unsupported(node, f"{node.op} of two activations with a constant weight expected")
        s = self._weight_input(node, layer)
        bound = max(abs(s.lo), abs(s.hi))
        lc = self._codes(layer, bound)
        out_shape = self._shape(node.outputs[0])
        lo, hi = self._acc_bounds(lc.w_int, s.lo, s.hi)
        t = self._emit("QLinear", [s.t], node.outputs[0], self._qattrs(layer, lc), out_shape, lo, hi)
        rank = len(out_shape)
        a = _compact(float(s.a.reshape(-1)[0]) * alpha * _arr(lc.unit, rank))
        b = _arr(0.0, rank) if bias is None else _compact(_arr(bias, rank))
        self.sym[node.outputs[0]] = Sym(t, a, b, out_shape, lo, hi, layer.name)
        self._layer_record(layer, lc, "spikes" if (s.lo, s.hi) == (0, 1) else "integers", s)

    def _op_Gemm(self, node: Node) -> None:
        if node.attrs.get("transA", 0):
            raise self._unsupported(node, "Gemm with transA=1")
        c = self._const(node, 2)
        beta = float(node.attrs.get("beta", 1.0))
        bias = None if c is None else np.asarray(c, np.float64) * beta
        self._linear(node, float(node.attrs.get("alpha", 1.0)), bias)

    def _op_MatMul(self, node: Node) -> None:
        if self._layer_of(node) is not None:
            self._linear(node)
            return
        x, y = self._sym_of(node, 0), self._sym_of(node, 1)
        for s in (x, y):
            if not _is_scalar(s.a) or np.any(s.b != 0):
                raise self._unsupported(node, "MatMul of activations needs integer tensors with one scale and no offset")
        out_shape = self._shape(node.outputs[0])
        k = x.shape[-1]
        cands = [x.lo * y.lo, x.lo * y.hi, x.hi * y.lo, x.hi * y.hi]
        lo, hi = min(0, min(cands) * k), max(0, max(cands) * k)
        t = self._emit("MatMul", [x.t, y.t], node.outputs[0], {}, out_shape, lo, hi)
        a = _arr(float(x.a.reshape(-1)[0]) * float(y.a.reshape(-1)[0]), len(out_shape))
        self.sym[node.outputs[0]] = Sym(t, a, _arr(0.0, len(out_shape)), out_shape, lo, hi)

    # ---------------------------------------------------------------- neurons
    def _op_LIF(self, node: Node) -> None:
        p = LIFParams.from_attrs(node.attrs)
        s = self._sym_of(node, 0)
        where = f"LIF {node.name!r}"
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
        theta = _frac(p.v_threshold)
        af = [_frac(v) for v in a.reshape(-1)]
        bf = [_frac(v) for v in b.reshape(-1)]
        res = self.resolution_bits
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
            bq = _round_half_up(r * 2**G)
            rounded += int(Fraction(bq) != r * 2**G)
            bt = bq << kT
            th_exact = theta / u * 2**F
            th = math.ceil(th_exact) if p.comparison == ">=" else math.floor(th_exact) + 1
            if p.decay_input:
                if bt >= acc_max + (th << k):  # fires at every step whatever the input
                    bt = _ceil_to(acc_max + (th << k), 1 << kT)
                elif bt + acc_max <= 0:  # never fires
                    bt = _floor_to(-acc_max, 1 << kT)
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
        mem_bits = _bits_needed(num_max) + 1
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
            "neuron": node.name,
        }
        t = self._emit("LIF", [s.t], node.outputs[0], attrs, s.shape, 0, 1, name=node.name)
        rank = len(s.shape)
        self.sym[node.outputs[0]] = Sym(t, _arr(1.0, rank), _arr(0.0, rank), s.shape, 0, 1)
        self.tensor_map[node.outputs[0]] = t
        rec = {
            "name": node.name,
            "layer": s.layer,
            "tau": p.tau,
            "v_threshold": p.v_threshold,
            "fraction_bits": F,
            "bias_fraction_bits": G,
            "bias_rounded_channels": rounded,
            "channels": len(af),
            "membrane_bits": mem_bits,
            "exact": rounded == 0,
        }
        self.neuron_recs.append(rec)
        if s.layer and self.layer_recs.get(s.layer) is not None:
            self.layer_recs[s.layer]["fraction_bits"] = F
            self.layer_recs[s.layer]["neuron"] = node.name

    # ---------------------------------------------------------------- output
    def _requant(self, s: Sym, name: str) -> tuple[str, dict[str, Any]]:
        rank = len(s.shape)
        a = np.broadcast_to(s.a, tuple(max(x, y) for x, y in zip(s.a.shape, s.b.shape, strict=True)))
        b = np.broadcast_to(s.b, a.shape)
        af = [_frac(v) for v in a.reshape(-1)]
        bf = [_frac(v) for v in b.reshape(-1)]
        u = max((abs(v) for v in af), default=Fraction(1)) or Fraction(1)
        acc = max(abs(s.lo), abs(s.hi))
        for R in range(self.logit_bits, -1, -1):
            M = [_round_half_up(v / u * 2**R) for v in af]
            Bq = [_round_half_up(v / u * 2**R) for v in bf]
            top = acc * max(abs(m) for m in M) + max(abs(v) for v in Bq)
            if top < INT64_SAFE:
                break
        else:
            raise ModelError(f"the logits of {name!r} do not fit int64")
        lo, hi = -top, top
        attrs = {"mult": np.array(M, np.int64).reshape(a.shape), "bias": np.array(Bq, np.int64).reshape(a.shape),
                 "logit_bits": R}
        t = self._emit("Requant", [s.t], "logits", attrs, s.shape, lo, hi)
        exact = all((v / u * 2**R).denominator == 1 for v in af + bf)
        info = {
            "name": name,
            "rank": rank,
            "tensor": t,
            "shape": list(s.shape),
            "dtype": "int64",
            "scale": float(u) * 2.0**-R,
            "logit_bits": R,
            "exact": exact,
            "layer": s.layer,
        }
        return t, info


def lower_graph(
    graph: Graph,
    layers: list[LayerInfo],
    plan: dict[str, QuantChoice],
    input_range: tuple[int, int] = DEFAULT_INPUT_RANGE,
    resolution_bits: int = DEFAULT_RESOLUTION_BITS,
    logit_bits: int = DEFAULT_LOGIT_BITS,
) -> LoweredModel:
    """Frontend IR + layers + plan → LoweredModel (integer IR and its records).

    Pre: `graph` after the frontend (LIF nodes, static shapes); `plan` has a choice for
    every layer; the model input holds integers in `input_range`.
    Post: see the module docstring. Raises ModelError naming the node for anything the
    integer lowering cannot express, PlanError for an incomplete plan.
    """
    if input_range[0] > input_range[1]:
        raise ModelError(f"input range {list(input_range)} is empty")
    if not 0 <= resolution_bits <= 40:
        raise ModelError(f"resolution_bits {resolution_bits} outside 0..40")
    if not 1 <= logit_bits <= 40:
        raise ModelError(f"logit_bits {logit_bits} outside 1..40")
    return _Lowerer(graph, layers, plan, input_range, resolution_bits, logit_bits).run()


@register
class LowerInt(Pass):
    """The pass form: ctx.options needs `layers` and `plan`; optional `input_range`,
    `resolution_bits`, `logit_bits`. Stats carry the per-layer and per-neuron records."""

    name = "lower-int"

    def run(self, graph: Graph, ctx: Context) -> PassResult:
        if graph.meta.get("lowered"):
            return PassResult(graph, False, {})
        opts = ctx.options
        lm = lower_graph(
            graph,
            list(opts["layers"]),
            dict(opts["plan"]),
            tuple(opts.get("input_range", DEFAULT_INPUT_RANGE)),
            int(opts.get("resolution_bits", DEFAULT_RESOLUTION_BITS)),
            int(opts.get("logit_bits", DEFAULT_LOGIT_BITS)),
        )
        lm.graph.meta["lowering"] = {"layers": lm.layers, "neurons": lm.neurons, "logits": lm.logits, "input": lm.input}
        return PassResult(lm.graph, True, {"layers": len(lm.layers), "neurons": len(lm.neurons)})
