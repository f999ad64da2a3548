"""CLI commands for hardware targets: `hqc targets list|show|validate` and `hqc cost`.

The main `hqc` group registers them (`main.add_command(targets)`, `main.add_command(cost)`)
and turns every `HqcError` into `error: <message>` on stderr with exit code 2;
`targets validate` prints its error itself, since reporting it is its job.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click
import yaml

from hqc.choices import DEFAULT_CHOICES, QuantChoice, parse_choice
from hqc.cli_options import config_file_option
from hqc.errors import TargetError
from hqc.results import target_document, targets_document
from hqc.targets import (
    ACCUMULATOR_BITS,
    ModelCost,
    Target,
    dump_table,
    list_targets,
    load_target,
    mac_energy_pj,
)
from hqc.targets.schema import REQUIRED_OPS, SCHEMA_VERSION

if TYPE_CHECKING:
    from hqc.targets.full import FullCost

# ------------------------------------------------------------------------ formatting


def format_energy(energy_pj: float | None) -> str:
    """'12.3 uJ' for an energy given in pJ (ASCII prefixes: pJ, nJ, uJ, mJ, J)."""
    if energy_pj is None:
        return "n/a"
    for unit, scale in (("J", 1e12), ("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if abs(energy_pj) >= scale:
            return f"{energy_pj / scale:.4g} {unit}"
    return f"{energy_pj:.4g} pJ"


def format_bits(bits: int) -> str:
    """'36 KiB' for a storage size given in bits."""
    size = bits / 8
    for unit in ("B", "KiB", "MiB"):
        if size < 1024 or unit == "MiB":
            return f"{size:.4g} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def format_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "n/a"
    if ratio == 0:
        return "0"
    return f"{ratio:.4g} (x{1 / ratio:.3g} less)" if ratio < 1 else f"{ratio:.4g}"


def _table(rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
                 enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


# ------------------------------------------------------------------------ targets


@click.group("targets")
def targets() -> None:
    """List, show and validate hardware cost tables."""


@targets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON document (hqc.targets/1).")
def targets_list(as_json: bool) -> None:
    """List the tables found by name: built-in ones and those of installed packages."""
    infos = list_targets()
    if as_json:
        click.echo(json.dumps(targets_document(infos), indent=2))
        return
    rows = [("name", "origin", "location")]
    for info in infos:
        origin = info.origin + (" (shadowed by builtin)" if info.shadowed else "")
        rows.append((info.name, origin, info.location))
    for line in _table(rows, right=set()):
        click.echo(line)


@targets.command("show")
@click.argument("spec", metavar="NAME|PATH")
@click.option("--yaml", "as_yaml", is_flag=True, help="Print the validated table as YAML.")
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON document (hqc.target/1).")
def targets_show(spec: str, as_yaml: bool, as_json: bool) -> None:
    """Print a cost table with the source of every number."""
    if as_yaml and as_json:
        raise click.UsageError("give at most one of --yaml and --json")
    target = load_target(spec)
    if as_json:
        macs = {name: mac_energy_pj(parse_choice(name), target) for name in DEFAULT_CHOICES}
        click.echo(json.dumps(target_document(target, yaml.safe_load(dump_table(target)), macs), indent=2))
        return
    if as_yaml:
        click.echo(dump_table(target), nl=False)
        return
    for line in describe_target(target):
        click.echo(line)


@targets.command("validate")
@click.argument("spec", metavar="PATH")
@click.pass_context
def targets_validate(ctx: click.Context, spec: str) -> None:
    """Check a cost table; print OK, or the error and exit with code 2."""
    try:
        target = load_target(spec)
    except TargetError as e:
        click.echo(f"error: {e}", err=True)
        ctx.exit(2)
    click.echo(f"OK: {spec}: table {target.name!r}, schema {SCHEMA_VERSION}")


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
    lines += ["  " + s for s in _table(rows, right={2, 3})]
    lines += ["", "memory (energy per access):"]
    rows = [("level", f"energy_{unit}", "bits", "per_bit_pJ", "capacity", "source", "note")]
    for level, m in target.memory.items():
        cap = format_bits(m.capacity_bytes * 8) if m.capacity_bytes else ""
        rows.append((level, f"{m.value:g}", str(m.bits),
                     f"{target.memory_energy_pj_per_bit(level):.4g}", cap, m.source,
                     m.note or ""))
    lines += ["  " + s for s in _table(rows, right={1, 2, 3})]
    lines += ["", "unlisted widths: scale the nearest listed width (ties: the larger one):"]
    lines.append("  " + ", ".join(f"{op} {rule}" for op, rule in target.derive.items()))
    lines += ["", f"energy per MAC (paper model, int{ACCUMULATOR_BITS} accumulate):"]
    rows = [("choice", "energy_pJ", "operations")]
    for name in DEFAULT_CHOICES:
        choice = parse_choice(name)
        rows.append((name, f"{mac_energy_pj(choice, target):.6g}", _mac_ops_text(choice, target)))
    lines += ["  " + s for s in _table(rows, right={1})]
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


# ------------------------------------------------------------------------ cost


@click.command("cost")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--target", "target_spec", required=True, metavar="NAME|PATH",
              help="Cost table: a built-in name (cmos45), a .yaml path, or an entry point.")
@click.option("--plan", "plan_path", type=click.Path(exists=True, dir_okay=False),
              help="plan.yaml with a choice per layer.")
@click.option("--all", "all_choice", metavar="CHOICE",
              help="Use one choice for every layer: fp32, uni<b> or pot<b>.")
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False),
              help="NPZ data to measure firing rates (enables the spike-aware estimate).")
@click.option("--input-layout", default=None, help="Layout of the model input, e.g. TBCHW.")
# ---- full accounting (hqc.targets.full) ----
@click.option("--lowering", "lowering_dir", type=click.Path(exists=True, file_okay=False),
              help="Folder of hqc lower/compile with this plan: its deployed storage, and "
                   "firing rates (--data) measured on its integer model.")
@click.option("--accumulator", type=click.Choice(["paper", "proven"]), default="paper",
              show_default=True,
              help="Accumulator widths of the full accounting: the paper's 32 bits, or the "
                   "lowering's proven bounds.")
# ---- end full accounting ----
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON document (hqc.cost/1; energies in pJ).")
@config_file_option
def cost(model: str, target_spec: str, plan_path: str | None, all_choice: str | None,
         data_path: str | None, input_layout: str | None, lowering_dir: str | None,
         accumulator: str, as_json: bool, config_path: str | None) -> None:
    """Energy and storage per layer of MODEL under a plan, with totals and the fp32 baseline."""
    if (plan_path is None) == (all_choice is None):
        raise click.UsageError("give exactly one of --plan FILE or --all CHOICE")
    from hqc.targets.full import cost_of_model

    run = cost_of_model(model, load_target(target_spec), plan=plan_path, all_choice=all_choice, data=data_path,
                        input_layout=input_layout, lowering_dir=lowering_dir, accumulator=accumulator)
    if as_json:
        click.echo(json.dumps(run.document(), indent=2))
        return
    for line in describe_cost(run.result) + [""] + describe_full(run.full):
        click.echo(line)


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
        rows.append((kind.replace("_", " "), str(int(k["sites"])), f"{int(k['count']):,}",
                     format_energy(k["energy_pj"]), format_energy(k["fp32_energy_pj"])))
    rows.append(("total", "", "", format_energy(full.energy_total_pj),
                 format_energy(full.fp32_energy_total_pj)))
    lines += ["  " + s for s in _table(rows, right={1, 2, 3, 4})]
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
# ---- end full accounting ----


def describe_cost(result: ModelCost) -> list[str]:
    """Human-readable lines: per-layer table, group totals, model total vs fp32 baseline."""
    spike = result.spike_aware_available
    head = ["layer", "group", "input", "choice", "MACs", "storage", "compute", "memory", "total"]
    if spike:
        head += ["rate", "spike-aware"]
    rows = [tuple(head)]
    for r in result.layers:
        row = [r.name, r.group, r.input_kind, r.choice, f"{r.macs:,}", format_bits(r.storage_bits),
               format_energy(r.energy_compute_pj), format_energy(r.energy_memory_pj),
               format_energy(r.energy_total_pj)]
        if spike:
            rate = "-" if r.firing_rate is None else f"{r.firing_rate:.3f}"
            row += [rate, format_energy(r.spike_energy_total_pj)]
        rows.append(tuple(row))
    lines = [f"target {result.target}; energy per inference of one sample; "
             f"paper model: N_mult * (E_mult|E_shift(b) + E_add int{result.accumulator_bits}), "
             "memory = weight bits * DRAM energy per bit", ""]
    lines += _table(rows, right={4, 5, 6, 7, 8, 9, 10})

    lines += ["", "per group (paper model):"]
    rows = [("group", "layers", "storage", "energy", "fp32 energy", "energy / fp32")]
    for g, t in result.groups.items():
        base = result.baseline_groups[g]
        rows.append((g, str(t.layers), format_bits(t.storage_bits),
                     format_energy(t.energy_total_pj), format_energy(base.energy_total_pj),
                     format_ratio(result.group_ratios[g]["energy_total_pj"])))
    lines += ["  " + s for s in _table(rows, right={1, 2, 3, 4})]

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
