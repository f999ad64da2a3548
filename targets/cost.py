"""Energy and storage of weight layers under a quantization plan on a hardware target.

    (layers, plan, target[, firing rates]) --model_cost--> ModelCost (rows, groups, totals,
                                                            fp32 baseline, ratios)

Paper model (DESIGN.md), per inference of one sample, N_mult = layer.macs:
  uniform b      compute = N_mult * (E_mult(int b) + E_add(int ACCUMULATOR_BITS))
  power-of-two b compute = N_mult * (E_shift(int b) + E_add(int ACCUMULATOR_BITS))
  fp32           compute = N_mult * (E_mult(fp32) + E_add(fp32))
  storage_bits = params * b (fp32: 32);  memory = storage_bits * E_DRAM per bit
The multiplier and the shifter are indexed by the weight code width b, as E_mult(b) is
in the paper; the activation operand width is not modelled (nor is it in the paper).

Spike-aware estimate (a second, separate figure): a layer whose input_kind is "spikes"
does work only where a spike is present, and a multiply by a 0/1 spike is an add:
  compute = firing_rate * N_mult * E_add   (int ACCUMULATOR_BITS add; fp32 add for fp32)
Layers on "integers" or "real" inputs keep the paper model's compute. Memory is the same
in both estimates. Without measured firing rates it is unavailable (None), not guessed.

Analyses only: inputs are never modified.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from hqc.choices import QuantChoice, parse_choice
from hqc.errors import DataError, PlanError
from hqc.layers import GROUPS, LayerInfo
from hqc.plan import resolve_plan
from hqc.targets.schema import OpEnergy, Target

#: Width of the integer adder that accumulates products (or shifted weights, or weights
#: selected by spikes): integer kernels accumulate in int32.
ACCUMULATOR_BITS = 32

FP32 = QuantChoice("fp32", 32)

PAPER_MODEL = "paper"
SPIKE_AWARE = "spike-aware"


@dataclass(frozen=True)
class LayerCost:
    """Cost of one layer under one choice, per inference of one sample.

    Paper model: energy_compute_pj, energy_memory_pj, energy_total_pj. Spike-aware
    estimate: spike_energy_compute_pj, spike_energy_total_pj (None for a "spikes" layer
    without a firing rate); spike_model says which rule produced it ("spikes: rate * N_mult * E_add" or
    "paper model" for integer/real inputs). `derived` lists table numbers that were
    derived rather than listed (e.g. "int.mult.2 (quadratic from 8 bits)").
    """

    name: str
    group: str
    kind: str
    input_kind: str
    choice: str
    bits: int
    macs: int
    params: int
    storage_bits: int
    energy_compute_pj: float
    energy_memory_pj: float
    energy_total_pj: float
    firing_rate: float | None
    spike_energy_compute_pj: float | None
    spike_energy_total_pj: float | None
    spike_model: str
    derived: tuple[str, ...]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["derived"] = list(self.derived)
        return d


@dataclass(frozen=True)
class CostTotals:
    """Sums over a set of layers (pJ, bits); spike-aware sums None if any layer lacks one."""

    layers: int
    macs: int
    params: int
    storage_bits: int
    energy_compute_pj: float
    energy_memory_pj: float
    energy_total_pj: float
    spike_energy_compute_pj: float | None
    spike_energy_total_pj: float | None

    def to_dict(self) -> dict:
        return asdict(self)


_RATIO_FIELDS = ("energy_total_pj", "energy_compute_pj", "energy_memory_pj", "storage_bits",
                 "spike_energy_total_pj", "spike_energy_compute_pj")


@dataclass(frozen=True)
class ModelCost:
    """Per-layer rows, per-group and model totals, and the same for an all-fp32 plan.

    ratios[field] = plan / fp32 baseline for that field (below 1 is a saving), None when
    the baseline is 0 or the field is unavailable. Groups appear in GROUPS order, only
    those with layers.
    """

    target: str
    accumulator_bits: int
    layers: tuple[LayerCost, ...]
    groups: dict[str, CostTotals]
    total: CostTotals
    baseline_layers: tuple[LayerCost, ...]
    baseline_groups: dict[str, CostTotals]
    baseline_total: CostTotals
    ratios: dict[str, float | None]
    group_ratios: dict[str, dict[str, float | None]]
    derived: tuple[str, ...]
    spike_aware_available: bool

    def to_dict(self) -> dict:
        """Plain JSON-ready data (pJ, bits); labels the two estimates."""
        return {
            "target": self.target,
            "accumulator_bits": self.accumulator_bits,
            "estimates": {
                "energy_*": "paper model: N_mult * (E_op(b) + E_add); memory = bits * E_DRAM/bit",
                "spike_energy_*": "spike-aware: spike inputs -> firing_rate * N_mult * E_add; "
                                  "integer/real inputs as the paper model; null if no rates",
            },
            "spike_aware_available": self.spike_aware_available,
            "layers": [r.to_dict() for r in self.layers],
            "groups": {g: t.to_dict() for g, t in self.groups.items()},
            "total": self.total.to_dict(),
            "baseline_fp32": {
                "layers": [r.to_dict() for r in self.baseline_layers],
                "groups": {g: t.to_dict() for g, t in self.baseline_groups.items()},
                "total": self.baseline_total.to_dict(),
            },
            "ratios": dict(self.ratios),
            "group_ratios": {g: dict(r) for g, r in self.group_ratios.items()},
            "derived": list(self.derived),
        }


# ---------------------------------------------------------------------------- per op


def _as_choice(choice: QuantChoice | str) -> QuantChoice:
    return choice if isinstance(choice, QuantChoice) else parse_choice(choice)


def _mac_ops(choice: QuantChoice, target: Target) -> tuple[OpEnergy, OpEnergy]:
    """The (product, accumulate) operations of one MAC under the paper model."""
    if choice.kind == "fp32":
        return target.op_energy("float", "mult", 32), target.op_energy("float", "add", 32)
    product = "mult" if choice.kind == "uniform" else "shift"
    return (target.op_energy("int", product, choice.bits),
            target.op_energy("int", "add", ACCUMULATOR_BITS))


def _spike_add(choice: QuantChoice, target: Target) -> OpEnergy:
    if choice.kind == "fp32":
        return target.op_energy("float", "add", 32)
    return target.op_energy("int", "add", ACCUMULATOR_BITS)


def mac_energy_pj(choice: QuantChoice | str, target: Target) -> float:
    """Paper-model energy of one MAC in pJ: E_mult/E_shift(b) + E_add (fp32: float ops)."""
    product, accumulate = _mac_ops(_as_choice(choice), target)
    return product.energy_pj + accumulate.energy_pj


def storage_bits(layer: LayerInfo, choice: QuantChoice | str) -> int:
    """Weight storage in bits: params * b (fp32: 32); biases are not counted."""
    return layer.params * _as_choice(choice).bits


def layer_cost(layer: LayerInfo, choice: QuantChoice | str, target: Target,
               firing_rate: float | None = None) -> LayerCost:
    """Cost of one layer under one choice (paper model, and spike-aware if a rate is given)."""
    c = _as_choice(choice)
    if firing_rate is not None:
        firing_rate = _check_rate(layer, firing_rate)
    product, accumulate = _mac_ops(c, target)
    compute_pj = layer.macs * (product.energy_pj + accumulate.energy_pj)
    bits = storage_bits(layer, c)
    memory_pj = bits * target.memory_energy_pj_per_bit("dram")
    used = [product, accumulate]

    spike_compute: float | None = None
    if layer.input_kind == "spikes":
        spike_model = "spikes: rate * N_mult * E_add"
        if firing_rate is not None:
            add = _spike_add(c, target)
            used.append(add)
            spike_compute = firing_rate * layer.macs * add.energy_pj
    else:
        # Integer/real inputs need a real multiplier (or shifter): no rate makes them cheaper.
        spike_model = "paper model"
        spike_compute = compute_pj
    spike_total = None if spike_compute is None else spike_compute + memory_pj

    derived = tuple(sorted({op.describe() for op in used if op.derived}))
    return LayerCost(
        name=layer.name, group=layer.group, kind=layer.kind, input_kind=layer.input_kind,
        choice=c.name, bits=c.bits, macs=layer.macs, params=layer.params, storage_bits=bits,
        energy_compute_pj=compute_pj, energy_memory_pj=memory_pj,
        energy_total_pj=compute_pj + memory_pj, firing_rate=firing_rate,
        spike_energy_compute_pj=spike_compute, spike_energy_total_pj=spike_total,
        spike_model=spike_model, derived=derived,
    )


# ---------------------------------------------------------------------------- model


def _check_rate(layer: LayerInfo, r: object) -> float:
    if (isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r)
            or not 0.0 <= r <= 1.0):
        raise DataError(f"firing rate of layer {layer.name!r} must be a number in [0, 1], got {r!r}")
    return float(r)


def _check_rates(layers: Sequence[LayerInfo],
                 firing_rates: Mapping[str, float] | None) -> dict[str, float | None]:
    rates: dict[str, float | None] = {layer.name: None for layer in layers}
    if firing_rates is None:
        return rates
    for layer in layers:
        if layer.name in firing_rates:
            rates[layer.name] = _check_rate(layer, firing_rates[layer.name])
        elif layer.input_kind == "spikes":
            raise DataError(f"no firing rate measured for spiking-input layer {layer.name!r}")
    return rates


def _sum(rows: Sequence[LayerCost]) -> CostTotals:
    spikes = [r.spike_energy_compute_pj for r in rows if r.spike_energy_compute_pj is not None]
    spikes_total = [r.spike_energy_total_pj for r in rows if r.spike_energy_total_pj is not None]
    have = len(spikes) == len(rows)
    return CostTotals(
        layers=len(rows),
        macs=sum(r.macs for r in rows),
        params=sum(r.params for r in rows),
        storage_bits=sum(r.storage_bits for r in rows),
        energy_compute_pj=math.fsum(r.energy_compute_pj for r in rows),
        energy_memory_pj=math.fsum(r.energy_memory_pj for r in rows),
        energy_total_pj=math.fsum(r.energy_total_pj for r in rows),
        spike_energy_compute_pj=math.fsum(spikes) if have else None,
        spike_energy_total_pj=math.fsum(spikes_total) if have else None,
    )


def _group_totals(rows: Sequence[LayerCost]) -> dict[str, CostTotals]:
    out = {}
    for g in GROUPS:
        members = [r for r in rows if r.group == g]
        if members:
            out[g] = _sum(members)
    return out


def _ratios(plan: CostTotals, base: CostTotals) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for f in _RATIO_FIELDS:
        num, den = getattr(plan, f), getattr(base, f)
        out[f] = None if num is None or den is None or den == 0 else num / den
    return out


def model_cost(layers: Sequence[LayerInfo], plan: Mapping[str, QuantChoice | str],
               target: Target, firing_rates: Mapping[str, float] | None = None) -> ModelCost:
    """Per-layer, per-group and total cost of `plan` on `target`, with the fp32 baseline.

    `plan` maps every layer name to a choice. `firing_rates` maps layer name to the
    measured fraction of input positions holding a spike (0..1); it is required for every
    "spikes" layer when given, and enables the spike-aware estimate.
    """
    layers = list(layers)
    choices = resolve_plan(plan, layers)
    rates = _check_rates(layers, firing_rates)
    rows = tuple(layer_cost(lay, choices[lay.name], target, rates[lay.name]) for lay in layers)
    base = tuple(layer_cost(lay, FP32, target, rates[lay.name]) for lay in layers)
    groups, base_groups = _group_totals(rows), _group_totals(base)
    total, base_total = _sum(rows), _sum(base)
    derived = tuple(sorted({d for r in rows + base for d in r.derived}))
    return ModelCost(
        target=target.name, accumulator_bits=ACCUMULATOR_BITS, layers=rows, groups=groups,
        total=total, baseline_layers=base, baseline_groups=base_groups,
        baseline_total=base_total, ratios=_ratios(total, base_total),
        group_ratios={g: _ratios(groups[g], base_groups[g]) for g in groups},
        derived=derived, spike_aware_available=total.spike_energy_total_pj is not None,
    )


def expected_energy_terms(
    layers: Sequence[LayerInfo],
    choices_per_layer: Mapping[str, Sequence[QuantChoice | str]] | Sequence[QuantChoice | str],
    target: Target,
) -> dict[str, dict[str, float]]:
    """E_lk in pJ (paper model, compute + memory) for each layer l and candidate choice k.

    `choices_per_layer` is one sequence of choices for all layers, or a mapping layer name
    -> sequence. Result: {layer name: {choice name: energy_total_pj}} in the given order.
    The search's hardware loss is sum_lk p_lk * E_lk / fp32_energy_pj(layers, target).
    """
    out: dict[str, dict[str, float]] = {}
    for layer in layers:
        if isinstance(choices_per_layer, Mapping):
            if layer.name not in choices_per_layer:
                raise PlanError(f"no candidate choices for layer {layer.name!r}")
            cands: Iterable[QuantChoice | str] = choices_per_layer[layer.name]
        else:
            cands = choices_per_layer
        out[layer.name] = {}
        for cand in cands:
            c = _as_choice(cand)
            out[layer.name][c.name] = layer_cost(layer, c, target).energy_total_pj
    return out


def fp32_energy_pj(layers: Sequence[LayerInfo], target: Target) -> float:
    """Paper-model energy (compute + memory, pJ) of all `layers` kept in fp32."""
    return math.fsum(layer_cost(layer, FP32, target).energy_total_pj for layer in layers)
