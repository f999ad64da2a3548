"""Full accounting: the costs the paper model leaves out, priced from the same table.

    (graph, layers, plan, target[, deployed model][, firing rates]) --full_cost--> FullCost

The paper model (`hqc.targets.cost`) prices weight layers only; it stays the headline.
Beside it, per inference of one sample (export batch divided out, all T steps):

  attention MatMul   count = output elements · inner dim. An operand of spikes (0/1)
                     selects the other: spike × spike and spike × integer products are
                     adds, count · E_add(acc); a real operand needs a multiplier:
                     count · (E_mult(acc) + E_add(acc)). fp32 baseline: the float ops.
  LIF update         count = neurons · T; per neuron per step: decay (τ = 2^k: shift +
                     add; other finite τ: one multiply; IF: none), charge: one add, fire:
                     one compare, reset: subtract reset one add, hard reset a select (not
                     priced). fp32 baseline: decay one float multiply, float add/compare.
  residual Add       count = output elements of an Add of two activations; E_add each.

Widths: `accumulator="paper"` prices every integer op at ACCUMULATOR_BITS (32);
`accumulator="proven"` takes each op's width from the lowering's proven bound: a weight
layer's accumulator = the bits of its QConv/QLinear output, an attention MatMul's and a
residual Add's = the bits of their output, a LIF's = its membrane bits (`mem_bits`).

Deployed storage: every constant array of the emitted C (kernels/hqc_model.c) at its C
type: packed weights, neuron parameters (thresholds, biases, signs, reset values),
rescale constants (Requant multipliers and offsets, LinComb coefficients, pool factors,
fp32 layers' unit scales) and index tables, beside the weights-only figure.

Not priced: data movement (Reshape, Transpose, Concat, ...), MaxPool comparisons,
ReduceMean/ReduceSum, scalar Mul/Div by constants (the lowering folds them into
thresholds and rescales), the constants' memory reads. Analyses only: nothing is mutated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hqc.choices import QuantChoice
from hqc.errors import ModelError
from hqc.ir import Graph
from hqc.layers import LayerInfo
from hqc.lif import LIFParams
from hqc.plan import resolve_plan
from hqc.targets.cost import ACCUMULATOR_BITS, ModelCost
from hqc.targets.schema import OpEnergy, Target

OP_KINDS: tuple[str, ...] = ("attention_matmul", "lif", "residual_add")
ACCUMULATORS: tuple[str, ...] = ("paper", "proven")
Accumulator = Literal["paper", "proven"]

#: Bytes of the C types the kernels declare constants with.
C_TYPE_BYTES: dict[str, int] = {"uint8_t": 1, "int8_t": 1, "int16_t": 2, "uint16_t": 2,
                                "int32_t": 4, "uint32_t": 4, "int64_t": 8, "float": 4,
                                "double": 8}

#: Deployed-storage categories, in report order.
STORAGE_CATEGORIES: tuple[str, ...] = ("weights", "thresholds", "biases", "neuron_other",
                                       "rescale", "index_tables", "other")

# array suffix -> category (a LIF fused into the convolution feeding it keeps its suffixes
# under the convolution's kernel name); Requant's offsets are rescale constants, not biases
_CATEGORY = {
    "w": "weights", "th": "thresholds", "b": "biases",
    "sg": "neuron_other", "rb": "neuron_other", "v0": "neuron_other",
    "u": "rescale", "m": "rescale", "mult": "rescale", "sgn": "rescale", "lut": "rescale",
    "rowc": "index_tables", "colc": "index_tables", "idx": "index_tables", "oxlo": "index_tables",
    "oxhi": "index_tables", "ixlo": "index_tables", "iy0": "index_tables", "iy1": "index_tables",
}
_RESCALE_OPS = ("Requant", "LinComb", "Mul")
_ARRAY_RE = re.compile(r"^(?:static )?const (\w+) (\w+)\[(\d+)\] = \{", re.M)
# k<N>_<suffix>: data of kernel kN; k<N>l_: of the LIF fused into kN; mp<N>_: pool tables
_NAME_RE = re.compile(r"^([a-z]+)(\d+)([a-z]*)_(\w+)$")
# a call of hqc_model_run: `    kN(<arguments>);  // <op> <node>`
_CALL_RE = re.compile(r"^\s+(k\d+)\(.*\);\s*//\s*(\S+)", re.M)
_LOWERED_SUFFIX = re.compile(r"__\d+$")
# the lowered ops a counted op becomes: an Add of tensors with different scales is a
# LinComb (a rescaled sum)
_LOWERED_OPS = {"attention_matmul": ("MatMul",), "lif": ("LIF",), "residual_add": ("Add", "LinComb")}


# ---------------------------------------------------------------------------- counting


@dataclass(frozen=True)
class OpCount:
    """One non-weight operation site of the model, per inference of one sample.

    kind: attention_matmul | lif | residual_add; node: IR node name; output: its first
    output tensor; count: products (MatMul), neuron-steps (LIF) or element adds (Add);
    operands: operand kinds, e.g. "spikes x integers" (LIF: its reset and decay);
    tau / reset: the LIF's time constant and reset ("hard" | "subtract"), else None.
    """

    kind: str
    node: str
    output: str
    count: int
    operands: str
    tau: float | None = None
    reset: str | None = None


def _export_batch(graph: Graph) -> int:
    from hqc.passes.annotate_layers import _export_batch as batch

    return batch(graph)


def _operand_kind(graph: Graph, kind_of: Any, t: str) -> str:
    """value_kinds, seeing through reshapes and scalar Mul/Div by a constant (the lowering
    folds those scales into the next threshold or rescale)."""
    from hqc.passes.annotate_layers import PASSTHROUGH

    p = graph.producer(t)
    if p is not None and p.op in PASSTHROUGH:
        return _operand_kind(graph, kind_of, p.inputs[0])
    if p is not None and p.op in ("Mul", "Div") and len(p.inputs) == 2:
        c = [i for i in p.inputs if graph.is_const(i)]
        scale = len(c) == 1 and np.asarray(graph.const(c[0])).size == 1
        if scale and (p.op == "Mul" or c[0] == p.inputs[1]):  # x·c, c·x, x/c (not c/x)
            other = p.inputs[0] if c[0] == p.inputs[1] else p.inputs[1]
            return _operand_kind(graph, kind_of, other)
    return kind_of(t)


def _elements(graph: Graph, t: str, node: str) -> int:
    shp = graph.shape(t)
    if shp is None or any(not isinstance(d, int) for d in shp):
        raise ModelError(f"node {node!r}: shape of {t!r} unknown; cannot count its operations")
    return int(np.prod(shp)) if shp else 1


def count_ops(graph: Graph) -> list[OpCount]:
    """The attention MatMuls, LIF nodes and residual Adds of a frontend graph, in
    topological order, with their counts per inference of one sample."""
    from hqc.passes.annotate_layers import value_kinds

    kind_of = value_kinds(graph)
    batch = _export_batch(graph)
    out: list[OpCount] = []
    for node in graph.nodes():
        dyn = len(node.inputs) == 2 and not any(graph.is_const(i) for i in node.inputs)
        if node.op == "MatMul" and dyn:
            inner = graph.shape(node.inputs[0])
            if not inner or not isinstance(inner[-1], int):
                raise ModelError(f"node {node.name!r}: operand shape unknown; cannot count its products")
            n = _elements(graph, node.outputs[0], node.name) * int(inner[-1]) // batch
            kinds = [_operand_kind(graph, kind_of, i) for i in node.inputs]
            out.append(OpCount("attention_matmul", node.name, node.outputs[0], n, " x ".join(kinds)))
        elif node.op == "LIF":
            p = LIFParams.from_attrs(node.attrs)
            n = _elements(graph, node.inputs[0], node.name) // batch
            out.append(OpCount("lif", node.name, node.outputs[0], n, f"{p.reset} reset",
                               tau=p.tau, reset=p.reset))
        elif node.op == "Add" and dyn:
            n = _elements(graph, node.outputs[0], node.name) // batch
            kinds = [_operand_kind(graph, kind_of, i) for i in node.inputs]
            out.append(OpCount("residual_add", node.name, node.outputs[0], n, " + ".join(kinds)))
    return out


# ---------------------------------------------------------------------------- pricing


def _pow2(tau: float) -> bool:
    if not math.isfinite(tau) or tau < 2:
        return False
    k = round(math.log2(tau))
    return 2.0**k == tau


def op_steps(op: OpCount, fp32: bool) -> list[str]:
    """The table operations one unit of `op` costs (an element of its count)."""
    if op.kind == "attention_matmul":
        real = "real" in op.operands.split(" x ")
        return ["mult", "add"] if real or fp32 else ["add"]
    if op.kind == "residual_add":
        return ["add"]
    assert op.tau is not None
    steps: list[str] = []
    if math.isfinite(op.tau):
        steps += ["mult"] if fp32 or not _pow2(op.tau) else ["shift", "add"]
    steps += ["add", "compare"]
    if op.reset == "subtract":
        steps.append("add")
    return steps


@dataclass(frozen=True)
class OpCost:
    """A priced OpCount: per unit the listed table operations at `bits`; energy_pj for
    the plan's integer model, fp32_energy_pj for the all-fp32 baseline."""

    kind: str
    node: str
    count: int
    operands: str
    bits: int
    ops: str
    energy_pj: float
    fp32_ops: str
    fp32_energy_pj: float
    derived: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["derived"] = list(self.derived)
        return d


def _price(op: OpCount, bits: int, target: Target) -> OpCost:
    used: list[OpEnergy] = []

    def energy(steps: list[str], fmt: Literal["int", "float"], b: int) -> tuple[float, str]:
        es = [target.op_energy(fmt, s, b) for s in steps]
        used.extend(es)
        text = " + ".join(e.key for e in es) or "none"
        return op.count * math.fsum(e.energy_pj for e in es), text

    e_int, t_int = energy(op_steps(op, fp32=False), "int", bits)
    e_fp, t_fp = energy(op_steps(op, fp32=True), "float", 32)
    derived = tuple(sorted({e.describe() for e in used if e.derived}))
    return OpCost(op.kind, op.node, op.count, op.operands, bits, t_int, e_int, t_fp, e_fp, derived)


# ---------------------------------------------------------------------------- deployed model


@dataclass(frozen=True)
class CConstant:
    """One constant array of the emitted C: name, C type, element count, bytes, category,
    and the op of the kernel it belongs to (None for tables not named after a kernel)."""

    name: str
    c_type: str
    count: int
    bytes: int
    category: str
    op: str | None


def c_constants(source: str) -> list[CConstant]:
    """Every `static const T name[n]` array of an hqc_model.c, classified."""
    ops = {fn: op for fn, op in _CALL_RE.findall(source)}
    out = []
    for m in _ARRAY_RE.finditer(source):
        ctyp, name, n = m.groups()
        if ctyp not in C_TYPE_BYTES:
            raise ModelError(f"hqc_model.c: constant {name!r} has C type {ctyp!r}, unknown to the cost model")
        parts = _NAME_RE.match(name)
        if parts is None:
            op, cat = None, "other"
        else:
            prefix, num, fused, suffix = parts.groups()
            op = "LIF" if fused == "l" else ops.get(f"k{num}") if prefix == "k" else "MaxPool"
            # LinComb coefficient tables are named after their input slot (c, m0, m1, ...)
            cat = "rescale" if op in _RESCALE_OPS else _CATEGORY.get(suffix, "other")
        out.append(CConstant(name, ctyp, int(n), int(n) * C_TYPE_BYTES[ctyp], cat, op))
    return out


@dataclass
class DeployedModel:
    """What the lowering produced for one plan: the lowered IR (with proven bounds), the
    C source and where they came from ("lowered in memory" or a folder)."""

    graph: Graph
    c_source: str
    plan: dict[str, str]
    origin: str

    @classmethod
    def from_lowering(cls, low: Any, origin: str = "lowered in memory") -> DeployedModel:
        """From `hqc.lowerdir.lower(...)`'s result."""
        return cls(low.lowered.graph, low.kernel_files["hqc_model.c"],
                   dict(low.doc["plan"]["layers"]), origin)

    @classmethod
    def from_dir(cls, directory: str | Path) -> DeployedModel:
        """From a folder written by `hqc lower` or `hqc compile` (lowering.json,
        lowered.onnx, kernels/hqc_model.c); ConfigError naming what is missing."""
        import json

        from hqc import intref
        from hqc.errors import ConfigError
        from hqc.lowerdir import KERNELS, LOWERED_IR, LOWERING_JSON

        d = Path(directory)
        paths = [d / LOWERING_JSON, d / LOWERED_IR, d / KERNELS / "hqc_model.c"]
        for p in paths:
            if not p.is_file():
                raise ConfigError(f"{d}: not a lowering folder (no {p.relative_to(d)}; run hqc lower or hqc compile)")
        try:
            doc = json.loads(paths[0].read_text(encoding="utf-8"))
            plan = dict(doc["plan"]["layers"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{paths[0]}: not a lowering.json written by hqc lower") from None
        return cls(intref.load_lowered(paths[1]), paths[2].read_text(encoding="utf-8"), plan, str(d))

    def check_plan(self, plan: Mapping[str, QuantChoice]) -> None:
        """ConfigError unless this lowering was made with exactly `plan`."""
        from hqc.errors import ConfigError

        want = {k: v.name for k, v in plan.items()}
        if want != self.plan:
            diff = sorted(k for k in set(want) | set(self.plan) if want.get(k) != self.plan.get(k))
            raise ConfigError(f"{self.origin}: the lowering was made with another plan (layers differ: "
                              f"{', '.join(diff[:4])}{', ...' if len(diff) > 4 else ''})")

    def bits(self, t: str) -> int:
        from hqc.lowerdir import signed_bits

        lo, hi = self.graph.meta["bounds"][t]
        return signed_bits(int(lo), int(hi))

    def accumulator_bits(self) -> dict[str, int]:
        """Per weight layer: bits of the proven range of its QConv/QLinear output."""
        out: dict[str, int] = {}
        for n in self.graph.nodes():
            if n.op in ("QConv", "QLinear") and n.attrs.get("layer"):
                out[n.attrs["layer"]] = max(out.get(n.attrs["layer"], 1), self.bits(n.outputs[0]))
        return out

    def op_bits(self, ops: Sequence[OpCount]) -> dict[str, int]:
        """Per counted op (frontend node name): its proven width in the lowered graph."""
        by_base: dict[tuple[str, str], Any] = {}
        for n in self.graph.nodes():
            key = n.attrs.get("neuron") if n.op == "LIF" else _LOWERED_SUFFIX.sub("", n.name)
            by_base.setdefault((n.op, str(key)), n)
        out = {}
        for op in ops:
            key = op.node if op.kind == "lif" else op.output
            found = [by_base[(lop, key)] for lop in _LOWERED_OPS[op.kind] if (lop, key) in by_base]
            if not found:
                raise ModelError(f"{self.origin}: no lowered {' or '.join(_LOWERED_OPS[op.kind])} for node "
                                 f"{op.node!r}; proven widths are unavailable for this model")
            n = found[0]
            out[op.node] = int(n.attrs["mem_bits"]) if n.op == "LIF" else self.bits(n.outputs[0])
        return out


def deployed_firing_rates(deployed: DeployedModel, layers: Sequence[LayerInfo], x: np.ndarray,
                          layout: str, limit: int = 256) -> dict[str, float]:
    """Input firing rate of every spiking-input layer, measured with the integer
    reference (`hqc.intref`) of the deployed model on the first `limit` samples of x
    (N, T, ...): the fraction of nonzero values at the input of its QConv/QLinear."""
    from hqc import intref
    from hqc.verification import to_groups

    g = deployed.graph
    spiking = {layer.name for layer in layers if layer.input_kind == "spikes"}
    sites: dict[str, list[str]] = {}
    for n in g.nodes():
        if n.op in ("QConv", "QLinear") and n.attrs.get("layer") in spiking:
            sites.setdefault(n.attrs["layer"], []).append(n.inputs[0])
    missing = sorted(spiking - set(sites))
    if missing:
        raise ModelError(f"{deployed.origin}: no lowered layer {missing[0]!r}; cannot measure its firing rate")
    if not sites:
        return {}
    shape = tuple(int(d) for d in g.shape(g.inputs[0]))
    b0 = shape[layout.upper().index("B")]
    n = min(limit, len(x))
    if n >= b0:
        n -= n % b0  # whole groups: no padded copies in the counts
    names = sorted({t for ts in sites.values() for t in ts})
    ones = dict.fromkeys(names, 0)
    size = dict.fromkeys(names, 0)
    groups = to_groups(np.asarray(x[:n]), layout, shape)
    for i in range(0, len(groups), 8):
        for t, v in zip(names, intref.run(g, groups[i: i + 8], names), strict=True):
            ones[t] += int(np.count_nonzero(v))
            size[t] += int(v.size)
    return {name: sum(ones[t] for t in ts) / max(1, sum(size[t] for t in ts)) for name, ts in sites.items()}


# ---------------------------------------------------------------------------- model


@dataclass(frozen=True)
class DeployedStorage:
    """Bytes of the deployed C constants by category, beside the weights-only figure."""

    origin: str
    bytes_by_category: dict[str, int]
    total_bytes: int
    weights_only_bytes: int
    arrays: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FullCost:
    """The full accounting beside the paper model (see the module docstring).

    accumulator: "paper" or "proven"; accumulator_bits: per weight layer, its proven
    accumulator width ("proven" only; empty for "paper", where every one is 32 bits);
    weights_*: the weight layers (paper model, or with proven accumulators);
    non_weight_*: the counted ops; energy_total_pj = weights + non-weight (plan), with the
    same sums for the fp32 baseline and their ratio; spike_energy_total_pj: the spike-aware
    weight figure + the (dense) non-weight figure, None without firing rates.
    storage: the deployed constants, None with `storage_unavailable` saying why.
    """

    accumulator: str
    accumulator_bits: dict[str, int]
    ops: tuple[OpCost, ...]
    by_kind: dict[str, dict[str, float]]
    weights_energy_pj: float
    weights_spike_energy_pj: float | None
    non_weight_energy_pj: float
    energy_total_pj: float
    spike_energy_total_pj: float | None
    fp32_weights_energy_pj: float
    fp32_non_weight_energy_pj: float
    fp32_energy_total_pj: float
    fp32_spike_energy_total_pj: float | None
    ratios: dict[str, float | None]
    storage: DeployedStorage | None
    storage_unavailable: str | None
    firing_rates_source: str | None
    derived: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ops"] = [o.to_dict() for o in self.ops]
        d["derived"] = list(self.derived)
        d["storage"] = None if self.storage is None else self.storage.to_dict()
        d["description"] = FULL_DESCRIPTION
        return d


FULL_DESCRIPTION = (
    "full accounting beside the paper model: weight layers (paper model, accumulator per "
    "`accumulator`) + attention MatMuls (spike operands: adds), LIF updates per neuron per "
    "step (decay shift+add or multiply, add, compare, subtract reset add) and residual Adds, "
    "priced from the table; the fp32 baseline prices the same ops in fp32; storage: every "
    "constant of the emitted C at its C type"
)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _weights(cost: ModelCost, layers: Sequence[LayerInfo], target: Target,
             acc_bits: Mapping[str, int] | None) -> tuple[float, float | None, list[str]]:
    """Plan weight energy (compute + memory) and its spike-aware sum, re-priced with
    per-layer accumulator widths when given."""
    if acc_bits is None:
        return cost.total.energy_total_pj, cost.total.spike_energy_total_pj, []
    used: list[OpEnergy] = []
    total, spike = [], []
    info = {layer.name: layer for layer in layers}
    for r in cost.layers:
        if r.choice == "fp32" or r.name not in acc_bits:
            total.append(r.energy_total_pj)
            spike.append(r.spike_energy_total_pj)
            continue
        old = target.op_energy("int", "add", ACCUMULATOR_BITS)
        new = target.op_energy("int", "add", acc_bits[r.name])
        used.append(new)
        macs = info[r.name].macs
        total.append(r.energy_total_pj + macs * (new.energy_pj - old.energy_pj))
        if r.spike_energy_total_pj is None:
            spike.append(None)
        elif r.input_kind == "spikes":
            assert r.firing_rate is not None
            spike.append(r.spike_energy_total_pj + r.firing_rate * macs * (new.energy_pj - old.energy_pj))
        else:
            spike.append(r.spike_energy_total_pj + macs * (new.energy_pj - old.energy_pj))
    spike_sum = None if any(s is None for s in spike) else math.fsum(s for s in spike if s is not None)
    return math.fsum(total), spike_sum, [e.describe() for e in used if e.derived]


def full_cost(graph: Graph, layers: Sequence[LayerInfo], cost: ModelCost,
              plan: Mapping[str, QuantChoice | str], target: Target,
              deployed: DeployedModel | None = None, accumulator: Accumulator = "paper",
              storage_unavailable: str | None = None,
              firing_rates_source: str | None = None) -> FullCost:
    """The full accounting of `plan` beside its paper-model `cost` (the ModelCost of the
    same layers, plan, target and firing rates).

    `deployed` (the lowering of exactly this plan) gives the deployed storage and, with
    accumulator="proven", the widths; without it the storage is None and
    `storage_unavailable` says why. ModelError when "proven" is asked without it.
    """
    if accumulator not in ACCUMULATORS:
        raise ValueError(f"accumulator must be one of {ACCUMULATORS}, got {accumulator!r}")
    choices = resolve_plan(plan, layers)
    if deployed is not None:
        deployed.check_plan(choices)
    counts = count_ops(graph)
    if accumulator == "proven":
        if deployed is None:
            raise ModelError("proven accumulator widths need a lowering: "
                             + (storage_unavailable or "none was given"))
        widths = deployed.op_bits(counts)
        acc_bits: dict[str, int] | None = deployed.accumulator_bits()
    else:
        widths = {op.node: ACCUMULATOR_BITS for op in counts}
        acc_bits = None
    ops = tuple(_price(op, widths[op.node], target) for op in counts)
    by_kind = {}
    for k in OP_KINDS:
        rows = [o for o in ops if o.kind == k]
        by_kind[k] = {"sites": len(rows), "count": sum(o.count for o in rows),
                      "energy_pj": math.fsum(o.energy_pj for o in rows),
                      "fp32_energy_pj": math.fsum(o.fp32_energy_pj for o in rows)}
    w, w_spike, w_derived = _weights(cost, layers, target, acc_bits)
    nw = math.fsum(o.energy_pj for o in ops)
    fw, fnw = cost.baseline_total.energy_total_pj, math.fsum(o.fp32_energy_pj for o in ops)
    f_spike = cost.baseline_total.spike_energy_total_pj
    total, spike = w + nw, None if w_spike is None else w_spike + nw
    f_total, f_spike_total = fw + fnw, None if f_spike is None else f_spike + fnw
    storage = None
    if deployed is not None:
        consts = c_constants(deployed.c_source)
        by_cat = {c: sum(k.bytes for k in consts if k.category == c) for c in STORAGE_CATEGORIES}
        storage = DeployedStorage(deployed.origin, by_cat, sum(by_cat.values()),
                                  math.ceil(cost.total.storage_bits / 8), len(consts))
        storage_unavailable = None
    derived = tuple(sorted({d for o in ops for d in o.derived} | set(w_derived)))
    return FullCost(
        accumulator=accumulator,
        accumulator_bits=dict(acc_bits) if acc_bits is not None else {},
        ops=ops, by_kind=by_kind,
        weights_energy_pj=w, weights_spike_energy_pj=w_spike, non_weight_energy_pj=nw,
        energy_total_pj=total, spike_energy_total_pj=spike,
        fp32_weights_energy_pj=fw, fp32_non_weight_energy_pj=fnw,
        fp32_energy_total_pj=f_total, fp32_spike_energy_total_pj=f_spike_total,
        ratios={"energy_total_pj": _ratio(total, f_total),
                "spike_energy_total_pj": _ratio(spike, f_spike_total),
                "non_weight_energy_pj": _ratio(nw, fnw)},
        storage=storage, storage_unavailable=storage_unavailable,
        firing_rates_source=firing_rates_source if cost.spike_aware_available else None,
        derived=derived,
    )



def lower_for_cost(model: str | Path, plan: Mapping[str, QuantChoice], *, frontend: Any = None,
                   data: Any = None, input_layout: str | None = None) -> tuple[DeployedModel | None, str | None]:
    """Lower `model` with `plan` in memory, as `hqc lower` does, for its deployed figures:
    (DeployedModel, None), or (None, why) when the lowering refuses the model."""
    from hqc.errors import HqcError
    from hqc.lowerdir import lower

    try:
        low = lower(model, dict(plan), data=data, input_layout=input_layout, frontend=frontend)
    except HqcError as e:
        return None, f"the lowering failed: {e}"
    return DeployedModel.from_lowering(low), None



def deployed_model(model: str | Path, layers: Sequence[LayerInfo], plan: Mapping[str, QuantChoice], *,
                   lowering_dir: str | Path | None = None, data: Any = None,
                   input_layout: str | None = None) -> tuple[DeployedModel | None, str | None]:
    """The deployed model of `plan`: the lowering in `lowering_dir` (ConfigError unless it
    was made with this plan), else `model` lowered in memory (`lower_for_cost`)."""
    if lowering_dir is None:
        return lower_for_cost(model, plan, data=data, input_layout=input_layout)
    deployed = DeployedModel.from_dir(lowering_dir)
    deployed.check_plan(resolve_plan(plan, layers))
    return deployed, None


def deployed_rates_from_data(deployed: DeployedModel, graph: Graph, layers: Sequence[LayerInfo],
                             data: str | Path, input_layout: str | None = None,
                             limit: int = 256) -> tuple[dict[str, float], str]:
    """`deployed_firing_rates` on the val split of an NPZ (train if it has none), and a
    line saying where the rates come from."""
    from hqc.data import load_data
    from hqc.lowerdir import layout_of
    from hqc.pipeline import sample_shape

    ds = load_data(data, sample_shape(graph, input_layout))
    split = "val" if "val" in ds.splits else "train"
    x = ds.splits[split].x
    rates = deployed_firing_rates(deployed, layers, x, layout_of(graph, input_layout), limit)
    return rates, f"deployed integer model ({deployed.origin}), {min(limit, len(x))} {split} samples"


@dataclass
class CostRun:
    """What `hqc cost` and `hqc.cost` compute for a model file under a plan: the paper
    model's cost (`result`, the headline) and the full accounting beside it."""

    model: str
    plan_label: str
    result: ModelCost
    full: FullCost

    def document(self) -> dict[str, Any]:
        """The `hqc cost --json` document (schema hqc.cost/1, docs/cli.md)."""
        from hqc.results import cost_document

        return {**cost_document(self.model, self.plan_label, self.result), "full": self.full.to_dict()}


def cost_of_model(model: str | Path, target: Target, *, plan: str | Path | Mapping[str, Any] | None = None,
                  all_choice: str | None = None, data: str | Path | None = None, input_layout: str | None = None,
                  lowering_dir: str | Path | None = None, accumulator: str = "paper") -> CostRun:
    """Cost of the ONNX `model` under `plan` (a plan.yaml path or {layer: choice}) or one
    choice for all layers. `data` measures firing rates: on the integer model of
    `lowering_dir` when given, else on the float model. ConfigError/PlanError on bad input."""
    from hqc.choices import parse_choice
    from hqc.errors import ConfigError
    from hqc.pipeline import load_and_analyze
    from hqc.plan import read_plan
    from hqc.targets.cost import model_cost

    if (plan is None) == (all_choice is None):
        raise ConfigError("give exactly one of a plan (--plan FILE) or one choice for all layers (--all CHOICE)")
    if accumulator not in ("paper", "proven"):
        raise ConfigError(f"accumulator must be 'paper' or 'proven', got {accumulator!r}")
    graph, layers = load_and_analyze(model, input_layout=input_layout)
    if all_choice is not None:
        uniform = parse_choice(all_choice)
        choices, label = {layer.name: uniform for layer in layers}, f"all {uniform}"
    elif isinstance(plan, Mapping):
        choices, label = resolve_plan(plan, layers), "<mapping>"
    else:
        choices, label = read_plan(plan, layers), str(plan)
    deployed, why = deployed_model(model, layers, choices, lowering_dir=lowering_dir, data=data,
                                   input_layout=input_layout)
    rates, source = None, None
    if data is not None and lowering_dir is not None:
        assert deployed is not None
        rates, source = deployed_rates_from_data(deployed, graph, layers, data, input_layout)
    elif data is not None:
        from hqc.pipeline import measure_firing_rates

        rates, source = measure_firing_rates(graph, layers, data, input_layout), "float model"
    result = model_cost(layers, choices, target, firing_rates=rates)
    full = full_cost(graph, layers, result, choices, target, deployed, accumulator,  # type: ignore[arg-type]
                     storage_unavailable=why, firing_rates_source=source)
    return CostRun(str(model), label, result, full)
