"""The `hqc` command line. The CLI owns the terminal; the library only logs.

Exit codes (README "Exit codes", docs/cli.md):

    0    ok
    1    verification disagreement: the integer backends differ (`hqc verify`, `hqc compile`)
    2    user error: an `HqcError` or a bad option, one line `error: <message>` on stderr
    3    internal error: one line `internal error: ...`; `hqc --debug ...` shows the traceback
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from hqc import __version__
from hqc.errors import HqcError, VerificationError
from hqc.fmt import format_count, table
from hqc.inspection import inspect_dict

EXIT_OK, EXIT_DISAGREE, EXIT_USER, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class HqcGroup(click.Group):
    """Turns errors into one line and an exit code instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VerificationError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_DISAGREE)
        except HqcError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_USER)
        except (click.exceptions.Exit, click.ClickException):
            raise
        except (KeyboardInterrupt, click.exceptions.Abort):
            click.echo("interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            first = str(exc).splitlines()[0] if str(exc) else ""
            click.echo(f"internal error: {type(exc).__name__}: {first} (rerun with --debug for details)", err=True)
            ctx.exit(EXIT_INTERNAL)


@click.group(cls=HqcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hqc")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.option("-v", "--verbose", count=True, help="Log what the passes do (-vv: more).")
@click.pass_context
def main(ctx: click.Context, debug: bool, verbose: int) -> None:
    """hqc: heterogeneous quantization compiler for spiking vision transformers."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for h in logging.getLogger().handlers:
        h.setLevel(level)  # a run's log file may lower hqc's level; the terminal keeps this one


@main.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--input-layout", default=None, help="Where the model input keeps batch and time: BT… or TB….")
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON document instead of tables.")
def inspect_cmd(model: str, input_layout: str | None, as_json: bool) -> None:
    """List the weight layers and spiking neurons hqc finds in MODEL (ONNX)."""
    from hqc.pipeline import run_frontend

    fe = run_frontend(model, input_layout)
    doc = inspect_dict(fe)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    rows = [["layer", "kind", "group", "weight shape", "params", "MACs", "input"]]
    for x in doc["layers"]:
        rows.append(
            [x["name"], x["kind"], x["group"], "×".join(map(str, x["weight_shape"])), format_count(x["params"]), format_count(x["macs"]), x["input_kind"]]
        )
    click.echo(f"model  {model}  ({doc['onnx_nodes']} ONNX nodes → {doc['ir_nodes']} IR nodes, imported in {doc['import_seconds']:.2f} s)")
    click.echo(f"input  {doc['input']['name']} {doc['input']['shape']}")
    click.echo("")
    for line in table(rows, {4, 5}):
        click.echo(line)
    click.echo("")
    nrows = [["neuron", "shape", "tau", "v_th", "reset", "cmp", "decay_input"]]
    for x in doc["neurons"]:
        reset = f"hard→{x['v_reset']:g}" if x["reset"] == "hard" else f"subtract {x['reset_by']:g}"
        tau = "inf" if x["tau"] is None else f"{x['tau']:g}"
        nrows.append([x["name"], "×".join(map(str, x["shape"])), tau, f"{x['v_threshold']:g}", reset, x["comparison"], str(x["decay_input"]).lower()])
    if len(nrows) > 1:
        for line in table(nrows, set()):
            click.echo(line)
    else:
        click.echo("no spiking neurons found")
    t = doc["totals"]
    click.echo("")
    click.echo(f"total  {t['layers']} weight layers, {format_count(t['params'])} params, {format_count(t['macs'])} MACs per sample, {t['neurons']} LIF neurons")


def _register_optional() -> None:
    # no try/except ImportError: a broken install fails loudly instead of losing commands
    from hqc.cli_targets import cost, targets

    main.add_command(targets)
    main.add_command(cost)
    from hqc.cli_search import search

    main.add_command(search)
    from hqc.cli_report import report

    main.add_command(report)
    from hqc.cli_lower import register_commands

    register_commands(main)
    from hqc.cli_compile import compile_cmd

    main.add_command(compile_cmd)
    from hqc.cli_data import data

    main.add_command(data)
    # hqc export (toolchain/cli_export.py)
    from hqc.cli_export import register_commands as register_export

    register_export(main)


_register_optional()


if __name__ == "__main__":  # pragma: no cover
    main()
