"""`hqc search`: a thin command over `hqc.search.run_search` (progress bars, summary).

    hqc search MODEL.onnx --data D.npz --target cmos45 [--lambda 1.0] [-o OUTDIR] [--json] ...
    hqc search --config hqc.yaml [options that win over the file]

Errors are the library's `HqcError`s: one line `error: ...`, exit code 2 (see hqc.cli).
Under torchrun every rank runs this command; only rank 0 draws and prints.
"""

from __future__ import annotations

from typing import Any

import click

from hqc.cli_options import SHARED_FIELDS, build_config, refuse_compile_only, shared_options
from hqc.config import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_FINETUNE_EPOCHS, DEFAULT_LAMBDA
from hqc.fmt import format_pct

# The defaults of hqc.config, shared with `hqc compile` and hqc.search.SearchConfig.
DEFAULTS: dict[str, Any] = {"lam": DEFAULT_LAMBDA, "epochs": DEFAULT_EPOCHS,
                            "finetune_epochs": DEFAULT_FINETUNE_EPOCHS, "batch_size": DEFAULT_BATCH_SIZE}


class _Bars:
    """tqdm progress bars on stderr, one per phase, fed by run_search's progress events."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if event == "phase":
            self.close()
            total = info["epochs"] * info["steps"]
            self.bar = tqdm(total=total, initial=info["start"] * info["steps"], desc=info["phase"],
                            unit="step", dynamic_ncols=True, leave=True)
        elif event == "step" and self.bar is not None:
            self.bar.update(1)
            post = {"ep": info["epoch"] + 1, "loss": f"{info['loss']:.3f}", "acc": f"{info['accuracy']:.3f}"}
            if info.get("energy") is not None:
                post["E/Efp32"] = f"{info['energy']:.3f}"
            self.bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@click.command("search")
@click.argument("model", type=click.Path(dir_okay=False), required=False)
@shared_options
@click.option("--resume", is_flag=True, help="Continue from OUTDIR/search.ckpt.")
@click.option("--threads", type=int, default=None, help="torch intra-op threads per process (default: torch's).")
@click.pass_context
def search(ctx: click.Context, model: str | None, config_path: str | None, as_json: bool, no_progress: bool,
           resume: bool, threads: int | None, **opts: Any) -> None:
    """Search a per-layer weight-quantization plan for MODEL (ONNX) and fine-tune it."""
    import json
    import sys

    import torch

    from hqc.errors import ConfigError
    from hqc.results import search_document
    from hqc.search import SearchConfig, run_search

    cfg = build_config(ctx, model, config_path, opts, SHARED_FIELDS)
    refuse_compile_only(cfg, config_path, "search")
    cfg.require_inputs()
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)

    scfg = SearchConfig(lam=DEFAULT_LAMBDA if cfg.lambda_ is None else cfg.lambda_, epochs=cfg.epochs,
                        finetune_epochs=cfg.finetune_epochs, batch_size=cfg.batch_size, seed=cfg.seed,
                        device=cfg.device)
    bars = _Bars(enabled=not no_progress and sys.stderr is not None)
    try:
        result = run_search(cfg.model, cfg.data, target=cfg.target, out_dir=cfg.out or None, config=scfg,
                            plan=cfg.plan, search_space=cfg.search_space, input_layout=cfg.input_layout,
                            resume=resume, progress=bars)
    finally:
        bars.close()
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
        return
    doc = search_document(result)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    acc = doc["accuracy"]
    click.echo(f"plan        {doc['plan']}")
    click.echo(f"qat model   {doc['qat_model']}")
    click.echo(f"accuracy    float {acc['float']:.4f}, fake-quant {acc['fake_quant']:.4f} ({acc['split']} split)")
    click.echo(f"energy      {format_pct(doc['energy_ratio'], 2)} of fp32 (paper model, {doc['target']})")
    click.echo("choices     " + ", ".join(f"{k} ×{v}" for k, v in doc["choices"].items()))
