"""`hqc compile`: a thin command over `hqc.compile.run_compile` (options, progress, summary).

Options come from `--config hqc.yaml` first, then from the command line (which wins).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from hqc.cli_options import SHARED_FIELDS, build_config, shared_options
from hqc.config import STAGES, CompileConfig
from hqc.fmt import format_energy, format_pct

_FIELDS = {**SHARED_FIELDS, "stop_after": "stop_after", "verify_limit": "verify_limit", "split": "split"}


class _Progress:
    """Stage lines and the search's tqdm bars on stderr."""

    def __init__(self, enabled: bool) -> None:
        from hqc.cli_search import _Bars

        self.enabled = enabled
        self.bars = _Bars(enabled)

    def __call__(self, kind: str, info: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if kind == "stage":
            self.bars.close()
            click.echo(f"[hqc] {info['stage']} …", err=True)
        else:
            self.bars(kind, info)

    def close(self) -> None:
        self.bars.close()


def _pct(x: float | None) -> str:
    return format_pct(x, 2)


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """The one-screen summary printed at the end of a run, from its `hqc.compile/1` document."""
    lines = [f"hqc compile  {doc['model']}  →  {doc['out']}/"]
    if doc["stopped_after"]:
        lines.append(f"stopped after {doc['stopped_after']} (--stop-after); outputs so far are in the folder")
        return lines
    acc = doc["accuracy"]
    lines.append(
        f"accuracy     float {_pct(acc['float'])} → fake-quant {_pct(acc['fake_quant'])}"
        f" → deployed integer {_pct(acc['integer'])}"
    )
    e, st = doc["energy"], doc["storage"]
    if e is not None:
        lines.append(
            f"energy       {_pct(e['ratio'])} of fp32 (paper model, {doc['target']}): "
            f"{format_energy(e['total_pj'])} vs {format_energy(e['fp32_total_pj'])} per inference"
        )
        if e["spike_aware_ratio"] is not None:
            lines.append(f"             {_pct(e['spike_aware_ratio'])} of fp32 (spike-aware estimate, measured firing rates)")
        lines.append(f"storage      {_pct(st['ratio'])} of fp32, average {st['average_bits'] or 0:.2f} bits per weight")
        lines.append("plan         " + ", ".join(f"{k} ×{v}" for k, v in doc["choices"].items()))
    v = doc["verify"]
    if v:
        agree = ", ".join(f"{k} {n}/{v['samples']}" for k, n in v["agree"].items())
        lines.append(f"verified     integer logits identical to the numpy reference: {agree}")
    lines.append(f"time         {doc['seconds']:.0f} s (search and fine-tune {doc['search_seconds'] or 0:.0f} s)")
    lines.append(f"outputs      {doc['out']}/report.html, report.md, plan.yaml, model.int.onnx, kernels/")
    return lines


@click.command("compile")
@click.argument("model", type=click.Path(dir_okay=False), required=False)
@shared_options
@click.option("--split", default=CompileConfig.split, show_default=True, help="Split the accuracies are measured on.")
@click.option("--verify-limit", type=int, default=None, help="Verify on the first N samples of the split only.")
@click.option("--stop-after", type=click.Choice(STAGES), default=None, help="End after this step.")
@click.option("--start-from", type=click.Choice(STAGES), default=None,
              help="Resume at this step from what an earlier run left in the -o folder.")
@click.pass_context
def compile_cmd(ctx: click.Context, model: str | None, config_path: str | None, as_json: bool,
                no_progress: bool, start_from: str | None, **opts: Any) -> None:
    """Search, lower and report MODEL (ONNX) for a target, into one output folder."""
    cfg = build_config(ctx, model, config_path, opts, _FIELDS)
    from hqc.compile import run_compile
    from hqc.results import compile_document

    progress = _Progress(enabled=not no_progress and sys.stderr is not None)
    try:
        result = run_compile(cfg, progress, start_from=start_from)
    finally:
        progress.close()
    doc = compile_document(result)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    for line in summary_lines(doc):
        click.echo(line)
