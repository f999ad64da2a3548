"""`hqc export DIR --format qdq|nir`: a thin command over `hqc.export_qdq` and
`hqc.export_nir` (docs/export.md)."""

from __future__ import annotations

import json

import click

EXPORT_SCHEMA = "hqc.export/1"  # --json: {schema, format, path, bytes, …, agreement (with --data)}


@click.command("export")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--format", "fmt", required=True, type=click.Choice(["qdq", "nir"]),
              help="qdq: standard quantized ONNX (DequantizeLinear int4/int8/int16 weights); nir: a NIR graph.")
@click.option("-o", "--out", "out", default=None, type=click.Path(dir_okay=False),
              help="Output file (default DIR/model.qdq.onnx or DIR/model.nir).")
@click.option("--data", default=None, type=click.Path(dir_okay=False),
              help="NPZ: measure the exported model's agreement with the integer model on it.")
@click.option("--split", default="val", show_default=True, type=click.Choice(["train", "val", "test"]))
@click.option("--limit", default=None, type=click.IntRange(min=1), help="Use the first N samples only.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def export_cmd(directory: str, fmt: str, out: str | None, data: str | None, split: str, limit: int | None,
               as_json: bool) -> None:
    """Export the lowered model in DIRECTORY (hqc lower / hqc compile) as standard quantized
    ONNX or as a NIR graph."""
    if data:  # bad data is an error before anything is written
        from hqc.export_qdq import load_split

        load_split(directory, data, split, limit)
    if fmt == "qdq":
        from hqc.export_qdq import agreement, export_qdq

        r = export_qdq(directory, out)
        doc = {"schema": EXPORT_SCHEMA, "format": fmt, **r.to_dict()}
        agree = agreement(directory, r.path, data, split, limit) if data else None
    else:
        from hqc.export_nir import agreement, export_nir

        r = export_nir(directory, out)
        doc = {"schema": EXPORT_SCHEMA, "format": fmt, **r.to_dict()}
        agree = agreement(directory, r.path, data, split, limit) if data else None
    if agree is not None:
        doc["agreement"] = agree.to_dict()
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    from hqc.fmt import table

    if fmt == "qdq":
        rows = [["layer", "quantizer", "stored as", "params", "weight bytes"]]
        rows += [[x.name, x.quantizer, x.storage, str(x.params), str(x.weight_bytes)] for x in r.layers]
        for line in table(rows, {3, 4}):
            click.echo(line)
        click.echo("")
        click.echo(f"wrote    {r.path} ({r.bytes} bytes, opset {r.opset}; model.int.onnx {r.int_onnx_bytes} bytes, "
                   f"{r.int_onnx_bytes / r.bytes:.2f}x larger)")
    else:
        rows = [["node", "NIR type", "from"]] + [[n.name, n.nir_type, n.source] for n in r.nodes]
        for line in table(rows, set()):
            click.echo(line)
        click.echo("")
        click.echo(f"wrote    {r.path} ({r.bytes} bytes, {len(r.nodes)} nodes, read back by nir.read)")
    if agree is not None:
        a = agree.to_dict()
        click.echo(f"agreement with the integer model ({a['split']} split, {a['samples']} samples): "
                   f"same prediction {a['same_prediction']}/{a['samples']} "
                   f"({100 * a['prediction_agreement']:.2f} %)")
        if a.get("spike_agreement") is not None:
            click.echo(f"          spikes identical {100 * a['spike_agreement']:.4f} % of {a['spikes_compared']} "
                       f"({a['neurons_compared']} of {a['neurons']} neurons)")


def register_commands(group: click.Group) -> None:
    """Add `export` to the hqc command group."""
    group.add_command(export_cmd)
