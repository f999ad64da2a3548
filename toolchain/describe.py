"""Human-readable lines of the cost model's results: a target table (`hqc targets show`),
a model's cost per layer and group (`hqc cost`) and the full accounting. Quantities are
written by hqc.fmt, as in the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hqc.choices import DEFAULT_CHOICES, QuantChoice, parse_choice
from hqc.fmt import format_bits, format_energy, format_int, format_ratio, table
from hqc.targets import ACCUMULATOR_BITS, ModelCost, Target, mac_energy_pj
from hqc.targets.schema import REQUIRED_OPS, SCHEMA_VERSION

if TYPE_CHECKING:
    from hqc.targets.full import FullCost


def describe_target(target: Target) -> list[str]:
    """Human-readable lines for a table: ops, memory, derivation rule, per-MAC cost, sources."""
    unit = target.energy_unit
    lines = [f"{target.name}: {target.technology}  (schema {SCHEMA_VERSION}, {target.origin})"]
    if target.description:
        lines.append(target.description)
    lines += ["", f"energy unit: {unit}", "", "operations (energy per operation):"]
    rows = [("format", "op", "bits", f"energy_{unit}", "source", "note")]
    for fmt in REQUIRED_OPS:
        for op, by_bits in target.ops[fmt].items():
            for bits, e in sorted(by_bits.items()):
                rows.append((fmt, op, str(bits), f"{e.value:g}", e.source, e.note or ""))
    lines += ["  " + s for s in table(rows, right={2, 3})]
    lines += ["", "memory (energy per access):"]
    rows = [("level", f"energy_{unit}", "bits", "per_bit_pJ", "capacity", "source", "note")]
    for level, m in target.memory.items():
        cap = format_bits(m.capacity_bytes * 8) if m.capacity_bytes else ""
        rows.append((level, f"{m.value:g}", str(m.bits),
                     f"{target.memory_energy_pj_per_bit(level):.4g}", cap, m.source,
                     m.note or ""))
    lines += ["  " + s for s in table(rows, right={1, 2, 3})]
    lines += ["", "unlisted widths: scale the nearest listed width (ties: the larger one):"]
    lines.append("  " + ", ".join(f"{op} {rule}" for op, rule in target.derive.items()))
    lines += ["", f"energy per MAC (paper model, int{ACCUMULATOR_BITS} accumulate):"]
    rows = [("choice", "energy_pJ", "operations")]
    for name in DEFAULT_CHOICES:
        choice = parse_choice(name)
        rows.append((name, f"{mac_energy_pj(choice, target):.6g}", _mac_ops_text(choice, target)))
    lines += ["  " + s for s in table(rows, right={1})]
    lines += ["", "sources:"]
    for key, text in target.sources.items():
        lines.append(f"  [{key}] {' '.join(text.split())}")
    return lines


def _mac_ops_text(choice: QuantChoice, target: Target) -> str:
    if choice.kind == "fp32":
        ops = [target.op_energy("float", "mult", 32), target.op_energy("float", "add", 32)]
    else:
        product = "mult" if choice.kind == "uniform" else "shift"
        ops = [target.op_energy("int", product, choice.bits),
               target.op_energy("int", "add", ACCUMULATOR_BITS)]
    parts = [f"{op.energy_pj:.4g} {op.describe()}" + (" [derived]" if op.derived else "")
             for op in ops]
    return " + ".join(parts)


def describe_full(full: FullCost) -> list[str]:
    """Human-readable lines of the full accounting (beside the paper model)."""
    acc = ("the lowering's proven bounds" if full.accumulator == "proven"
           else f"int{ACCUMULATOR_BITS} (the paper's)")
    lines = [f"full accounting (weight layers + attention MatMuls, LIF updates, residual adds; "
             f"accumulators: {acc}):"]
    rows = [("part", "sites", "count", "energy", "fp32 energy")]
    rows.append(("weight layers", "", "", format_energy(full.weights_energy_pj),
                 format_energy(full.fp32_weights_energy_pj)))
    for kind, k in full.by_kind.items():
        rows.append((kind.replace("_", " "), str(int(k["sites"])), format_int(k['count']),
                     format_energy(k["energy_pj"]), format_energy(k["fp32_energy_pj"])))
    rows.append(("total", "", "", format_energy(full.energy_total_pj),
                 format_energy(full.fp32_energy_total_pj)))
    lines += ["  " + s for s in table(rows, right={1, 2, 3, 4})]
    lines.append(f"  ratio {format_ratio(full.ratios['energy_total_pj'])}")
    if full.spike_energy_total_pj is not None:
        lines.append(f"  spike-aware total {format_energy(full.spike_energy_total_pj)}   fp32 "
                     f"{format_energy(full.fp32_spike_energy_total_pj)}   ratio "
                     f"{format_ratio(full.ratios['spike_energy_total_pj'])}   "
                     f"(firing rates: {full.firing_rates_source})")
    st = full.storage
    if st is None:
        lines.append(f"storage as deployed: unavailable ({full.storage_unavailable})")
    else:
        parts = ", ".join(f"{c.replace('_', ' ')} {format_bits(8 * b)}"
                          for c, b in st.bytes_by_category.items() if b)
        lines.append(f"storage as deployed: {format_bits(8 * st.total_bytes)} ({parts}); "
                     f"weights only {format_bits(8 * st.weights_only_bytes)}  [{st.origin}]")
    return lines


def describe_cost(result: ModelCost) -> list[str]:
    """Human-readable lines: per-layer table, group totals, model total vs fp32 baseline."""
    spike = result.spike_aware_available
    head = ["layer", "group", "input", "choice", "MACs", "storage", "compute", "memory", "total"]
    if spike:
        head += ["rate", "spike-aware"]
    rows = [tuple(head)]
    for r in result.layers:
        row = [r.name, r.group, r.input_kind, r.choice, format_int(r.macs), format_bits(r.storage_bits),
               format_energy(r.energy_compute_pj), format_energy(r.energy_memory_pj),
               format_energy(r.energy_total_pj)]
        if spike:
            rate = "-" if r.firing_rate is None else f"{r.firing_rate:.3f}"
            row += [rate, format_energy(r.spike_energy_total_pj)]
        rows.append(tuple(row))
    lines = [f"target {result.target}; energy per inference of one sample; "
             f"paper model: N_mult * (E_mult|E_shift(b) + E_add int{result.accumulator_bits}), "
             "memory = weight bits * DRAM energy per bit", ""]
    lines += table(rows, right={4, 5, 6, 7, 8, 9, 10})

    lines += ["", "per group (paper model):"]
    rows = [("group", "layers", "storage", "energy", "fp32 energy", "energy / fp32")]
    for g, t in result.groups.items():
        base = result.baseline_groups[g]
        rows.append((g, str(t.layers), format_bits(t.storage_bits),
                     format_energy(t.energy_total_pj), format_energy(base.energy_total_pj),
                     format_ratio(result.group_ratios[g]["energy_total_pj"])))
    lines += ["  " + s for s in table(rows, right={1, 2, 3, 4})]

    t, b, ratios = result.total, result.baseline_total, result.ratios
    lines += [
        "",
        "model total (paper model):",
        f"  compute  {format_energy(t.energy_compute_pj):>12}   fp32 "
        f"{format_energy(b.energy_compute_pj):>12}   ratio {format_ratio(ratios['energy_compute_pj'])}",
        f"  memory   {format_energy(t.energy_memory_pj):>12}   fp32 "
        f"{format_energy(b.energy_memory_pj):>12}   ratio {format_ratio(ratios['energy_memory_pj'])}",
        f"  total    {format_energy(t.energy_total_pj):>12}   fp32 "
        f"{format_energy(b.energy_total_pj):>12}   ratio {format_ratio(ratios['energy_total_pj'])}",
        f"  storage  {format_bits(t.storage_bits):>12}   fp32 "
        f"{format_bits(b.storage_bits):>12}   ratio {format_ratio(ratios['storage_bits'])}",
        "",
    ]
    if spike:
        lines += [
            "spike-aware estimate (spike inputs: firing rate * N_mult * E_add; integer/real "
            "inputs as the paper model):",
            f"  total    {format_energy(t.spike_energy_total_pj):>12}   fp32 "
            f"{format_energy(b.spike_energy_total_pj):>12}   "
            f"ratio {format_ratio(ratios['spike_energy_total_pj'])}",
        ]
    else:
        lines.append("spike-aware estimate: unavailable (no firing rates; pass --data to "
                     "measure them)")
    if result.derived:
        lines += ["", "derived table numbers (not listed in the table): "
                  + "; ".join(result.derived)]
    return lines
