"""`hqc search`: a thin command over `hqc.search.run_search` (progress bars, summary).

    hqc search MODEL.onnx --data D.npz --target cmos45 [--lambda 1.0] [-o OUTDIR] ...

Errors are the library's `HqcError`s: one line `error: ...`, exit code 2 (see hqc.cli).
Under torchrun every rank runs this command; only rank 0 draws and prints.
"""

from __future__ import annotations

from typing import Any

import click

from hqc.config import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_FINETUNE_EPOCHS, DEFAULT_LAMBDA

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
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="NPZ: x (N, T, ...), y (N,); optional x_val/y_val.")
@click.option("--target", default="cmos45", show_default=True, help="Cost table: built-in name or YAML path.")
@click.option("--lambda", "lam", type=float, default=DEFAULTS["lam"], show_default=True, help="Weight of the hardware loss (>= 0).")
@click.option("--epochs", type=int, default=DEFAULTS["epochs"], show_default=True, help="Search epochs.")
@click.option("--finetune-epochs", type=int, default=DEFAULTS["finetune_epochs"], show_default=True, help="QAT epochs of the chosen plan.")
@click.option("--batch-size", type=int, default=DEFAULTS["batch_size"], show_default=True, help="Global batch size.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--resume", is_flag=True, help="Continue from OUTDIR/search.ckpt.")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default=None, help="Output folder (default build/<model stem>).")
@click.option("--plan", "plan", type=click.Path(dir_okay=False), default=None, help="Use this plan.yaml: skip the search, only fine-tune.")
@click.option("--search-space", type=click.Path(dir_okay=False), default=None, help="YAML search-space config (see docs/search.md).")
@click.option("--input-layout", default=None, help="Where the model input keeps batch and time: BT… or TB….")
@click.option("--threads", type=int, default=None, help="torch intra-op threads per process (default: torch's).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def search(model: str, data: str, target: str, lam: float, epochs: int, finetune_epochs: int,
           batch_size: int, seed: int, device: str, resume: bool, out_dir: str | None,
           plan: str | None, search_space: str | None, input_layout: str | None,
           threads: int | None, no_progress: bool) -> None:
    """Search a per-layer weight-quantization plan for MODEL (ONNX) and fine-tune it."""
    import sys

    import torch

    from hqc.errors import ConfigError
    from hqc.search import SearchConfig, run_search

    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)

    cfg = SearchConfig(lam=lam, epochs=epochs, finetune_epochs=finetune_epochs,
                       batch_size=batch_size, seed=seed, device=device)
    bars = _Bars(enabled=not no_progress and sys.stderr is not None)
    try:
        result = run_search(model, data, target=target, out_dir=out_dir, config=cfg, plan=plan,
                            search_space=search_space, input_layout=input_layout, resume=resume,
                            progress=bars)
    finally:
        bars.close()
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
        return
    doc = result.document
    acc = doc["accuracy"]
    click.echo(f"plan        {result.plan_path}")
    click.echo(f"qat model   {result.qat_model_path}")
    click.echo(f"accuracy    float {acc['float']:.4f}, fake-quant {acc['fake_quant']:.4f} ({acc['split']} split)")
    click.echo(f"energy      {100 * result.energy_ratio:.2f}% of fp32 (paper model, {doc['target']})")
    counts: dict[str, int] = {}
    for entry in doc["layers"].values():
        counts[entry["choice"]] = counts.get(entry["choice"], 0) + 1
    click.echo("choices     " + ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items())))
