"""`hqc lower` and `hqc verify`: parse options, call hqc.lowerdir.lower_model and
hqc.verification.verify_dir, print.
"""

from __future__ import annotations

import json

import click

from hqc.cli_options import config_file_option
from hqc.fmt import format_accuracy, format_int, table
from hqc.lowerdir import INT_ONNX, KERNELS, LOWERED_IR, LOWERING_JSON, lower_model
from hqc.results import verify_document
from hqc.verification import verify_dir


# --------------------------------------------------------------------------- commands
@click.command("lower")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--plan", "plan", required=True, type=click.Path(dir_okay=False), help="plan.yaml: a quantizer per layer.")
@click.option("-o", "--out", "out", default=None, type=click.Path(file_okay=False), help="Output folder (default build/<model stem>).")
@click.option("--data", default=None, type=click.Path(dir_okay=False), help="NPZ: checks that inputs are integers and sets their range.")
@click.option("--input-layout", default=None, help="Where the model input keeps batch and time: BT… or TB….")
@click.option("--resolution-bits", default=None, type=int, help="LIF bias resolution: |b − b̂| ≤ θ·2^-(bits+1) (default 16).")
@click.option("--logit-bits", default=None, type=int, help="Fraction bits of the integer logits (default 16).")
@click.option("--json", "as_json", is_flag=True, help="Print lowering.json (hqc.lowering/1) instead of the table.")
@config_file_option
def lower_cmd(model: str, plan: str, out: str | None, data: str | None, input_layout: str | None,
              resolution_bits: int | None, logit_bits: int | None, as_json: bool, config_path: str | None) -> None:
    """Lower MODEL (ONNX) with a plan to integer/shift-only form: model.int.onnx and C kernels."""
    r = lower_model(model, plan, out, data=data, input_layout=input_layout,
                    resolution_bits=resolution_bits, logit_bits=logit_bits)
    if as_json:
        click.echo(json.dumps(r.doc, indent=2))
        return
    rows = [["layer", "quantizer", "params", "packed bytes", "input", "F"]]
    for x in r.doc["layers"]:
        rows.append([x["name"], x["quantizer"], format_int(x["params"]), format_int(x["packed_bytes"]), x["input"],
                     "-" if x["fraction_bits"] is None else str(x["fraction_bits"])])
    for line in table(rows, {2, 3, 5}):
        click.echo(line)
    t = r.doc["totals"]
    click.echo("")
    click.echo(f"weights  {format_int(t['packed_weight_bytes'])} bytes packed (fp32: {format_int(t['fp32_weight_bytes'])} bytes, "
               f"{t['compression']}x smaller)")
    chk = r.doc["input"]["check"]
    if chk["checked"]:
        click.echo(f"inputs   integer-valued in {chk['data']} ({chk['samples']} samples, "
                   f"{chk['observed_range'][0]}..{chk['observed_range'][1]}); range {r.doc['input']['range']}")
    else:
        click.echo(f"inputs   assumed integers in {r.doc['input']['range']} (pass --data to check)")
    click.echo(f"wrote    {r.out_dir}/ ({INT_ONNX}, {KERNELS}/, {LOWERED_IR}, {LOWERING_JSON})")


@click.command("verify")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="NPZ with the samples.")
@click.option("--split", default="val", show_default=True, type=click.Choice(["train", "val", "test"]))
@click.option("--limit", default=None, type=int, help="Use the first N samples only.")
@click.option("--no-c", is_flag=True, help="Skip compiling and running the C kernels.")
@click.option("--no-float", is_flag=True, help="Skip the fake-quant float model.")
@click.option("--json", "as_json", is_flag=True, help="Print the stable JSON document (hqc.verify/1).")
@config_file_option
def verify_cmd(directory: str, data: str, split: str, limit: int | None, no_c: bool, no_float: bool,
               as_json: bool, config_path: str | None) -> None:
    """Check that the numpy reference, onnxruntime and the C kernels of DIRECTORY give identical
    integer logits on the data; report the integer and fake-quant float accuracy.
    Exit status 1 when a backend disagrees."""
    backends = ("onnxruntime",) if no_c else ("onnxruntime", "c")
    r = verify_dir(directory, data, split, limit, backends, not no_float)
    if as_json:
        click.echo(json.dumps(verify_document(r), indent=2))
    else:
        click.echo(f"verify {directory}  ({r.split} split, {r.samples} samples, inputs {r.input_range[0]}..{r.input_range[1]})")
        for b, v in r.agree.items():
            click.echo(f"  numpy reference vs {b:<12} {v}/{r.samples} identical integer logits")
        click.echo(f"  integer model accuracy       {format_accuracy(r.accuracy_int)}")
        if r.accuracy_float is not None:
            click.echo(f"  fake-quant float accuracy    {format_accuracy(r.accuracy_float)}  "
                       f"(same prediction on {r.float_vs_int_predictions}/{r.samples})")
            click.echo(f"  spike agreement int vs float {100 * (r.spike_agreement or 0):.4f} % of {r.spikes_compared} spikes")
    if not r.identical:
        raise click.exceptions.Exit(1)


def register_commands(group: click.Group) -> None:
    """Add `lower` and `verify` to the hqc command group."""
    group.add_command(lower_cmd)
    group.add_command(verify_cmd)
