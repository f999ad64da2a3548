"""`hqc compile`: a thin command over `hqc.compile.run_compile` (options, progress, summary).

Options come from `--config hqc.yaml` first, then from the command line (which wins).
"""

from __future__ import annotations

import sys
from typing import Any

import click
from click.core import ParameterSource

from hqc.config import STAGES, CompileConfig

# command-line option name → CompileConfig field
_FIELDS = {
    "data": "data",
    "target": "target",
    "out": "out",
    "plan": "plan",
    "search_space": "search_space",
    "input_layout": "input_layout",
    "lam": "lambda_",
    "epochs": "epochs",
    "finetune_epochs": "finetune_epochs",
    "batch_size": "batch_size",
    "seed": "seed",
    "device": "device",
    "stop_after": "stop_after",
    "verify_limit": "verify_limit",
    "split": "split",
}


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
    return "n/a" if x is None else f"{100 * x:.2f}%"


def summary_lines(result: Any) -> list[str]:
    """The one-screen summary printed at the end of a run."""
    s = result.summary
    rep = s.get("report")
    lines = [f"hqc compile  {s['model']}  →  {result.out_dir}/"]
    if result.stopped_after:
        lines.append(f"stopped after {result.stopped_after} (--stop-after); outputs so far are in the folder")
        return lines
    lines.append(
        f"accuracy     float {_pct(s.get('float_accuracy'))} → fake-quant {_pct(s.get('fake_quant_accuracy'))}"
        f" → deployed integer {_pct(s.get('integer_accuracy'))}"
    )
    if rep is not None:
        r, tot, base = rep["ratios"], rep["total"], rep["baseline_fp32"]
        lines.append(
            f"energy       {_pct(r['energy_total_pj'])} of fp32 (paper model, {rep['target']['name']}): "
            f"{tot['energy_total_pj'] / 1e6:.3g} µJ vs {base['energy_total_pj'] / 1e6:.3g} µJ per inference"
        )
        if r.get("spike_energy_total_pj") is not None:
            lines.append(f"             {_pct(r['spike_energy_total_pj'])} of fp32 (spike-aware estimate, measured firing rates)")
        lines.append(
            f"storage      {_pct(r['storage_bits'])} of fp32, average {tot.get('average_bits', 0):.2f} bits per weight"
        )
        counts: dict[str, int] = {}
        for layer in rep["layers"]:
            counts[layer["choice"]] = counts.get(layer["choice"], 0) + 1
        lines.append("plan         " + ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items())))
    v = s.get("verify")
    if v:
        agree = ", ".join(f"{k} {n}/{v['samples']}" for k, n in v["agree"].items())
        lines.append(f"verified     integer logits identical to the numpy reference: {agree}")
    lines.append(f"time         {s['seconds']:.0f} s (search and fine-tune {s.get('search_seconds', 0):.0f} s)")
    lines.append(f"outputs      {result.out_dir}/report.html, report.md, plan.yaml, model.int.onnx, kernels/")
    return lines


@click.command("compile")
@click.argument("model", type=click.Path(dir_okay=False), required=False)
@click.option("--data", default=None, help="NPZ with x (N, T, C, H, W), y; x_val/y_val for accuracy.")
@click.option("--target", default="cmos45", show_default=True, help="Cost table: built-in name, YAML path or entry point.")
@click.option("-o", "--out", default=None, help="Output folder (default build/<model stem>).")
@click.option("--plan", default=None, type=click.Path(dir_okay=False), help="Use this plan.yaml instead of searching.")
@click.option("--search-space", default=None, type=click.Path(dir_okay=False), help="Search-space YAML (candidates, pins).")
@click.option("--input-layout", default=None, help="Where the model input keeps batch and time: BT… or TB….")
@click.option("--lambda", "lam", type=float, default=None, help="Weight of the energy loss (default: the search's).")
@click.option("--epochs", type=int, default=6, show_default=True, help="Search epochs.")
@click.option("--finetune-epochs", type=int, default=2, show_default=True, help="QAT epochs of the chosen plan.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--split", default="val", show_default=True, help="Split the accuracies are measured on.")
@click.option("--verify-limit", type=int, default=None, help="Verify on the first N samples of the split only.")
@click.option("--stop-after", type=click.Choice(STAGES), default=None, help="End after this stage.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help="hqc.yaml with any of these options.")
@click.option("--no-progress", is_flag=True, help="No progress output.")
@click.pass_context
def compile_cmd(ctx: click.Context, model: str | None, config_path: str | None, no_progress: bool, **opts: Any) -> None:
    """Search, lower and report MODEL (ONNX) for a target, into one output folder."""
    cfg = CompileConfig.from_file(config_path) if config_path else CompileConfig()
    if model is not None:
        cfg.model = model
    for opt, fieldname in _FIELDS.items():
        src = ctx.get_parameter_source(opt)
        if src is ParameterSource.COMMANDLINE or (config_path is None and src is not None):
            setattr(cfg, fieldname, opts[opt])
    cfg.validate("options")
    from hqc.compile import run_compile

    progress = _Progress(enabled=not no_progress and sys.stderr is not None)
    try:
        result = run_compile(cfg, progress)
    finally:
        progress.close()
    for line in summary_lines(result):
        click.echo(line)
