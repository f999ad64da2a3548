"""CLI commands for hardware targets: `hqc targets list|show|validate` and `hqc cost`.

The main `hqc` group registers them (`main.add_command(targets)`, `main.add_command(cost)`)
and turns every `HqcError` into `error: <message>` on stderr with exit code 2;
`targets validate` prints its error itself, since reporting it is its job.
"""

from __future__ import annotations

import json

import click
import yaml

from hqc.choices import DEFAULT_CHOICES, parse_choice
from hqc.cli_options import config_file_option
from hqc.describe import describe_cost, describe_full, describe_target
from hqc.errors import TargetError
from hqc.fmt import table
from hqc.results import target_document, targets_document
from hqc.targets import (
    dump_table,
    list_targets,
    load_target,
    mac_energy_pj,
)
from hqc.targets.schema import SCHEMA_VERSION

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
    for line in table(rows, right=set()):
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
