"""`hqc compile`: the whole pipeline into one output folder, complete or not at all.

    import → canonicalize → recognize-neurons → annotate-layers → insert-quant-choices
      → search → finetune → lower-int → verify → emit

The steps are `hqc.pipeline.STEPS` over one `CompileState`; they call the same library
functions as `hqc inspect`, `hqc search`, `hqc lower`, `hqc verify` and `hqc report`, with
the model imported once and the data loaded once. Everything is written into a temporary
folder beside the output and renamed into place at the end (`hqc.outdir.atomic_dir`): an
error or an interrupt leaves no output folder. `--stop-after STEP` ends the run after that
step with the files produced so far; `--start-from STEP` resumes from what an earlier run
left in the output folder (`hqc.pipeline.resume`) and replaces it with a complete one.

Output folder:
    plan.yaml          the plan (searched, or the user's)
    model.qat.onnx     the fine-tuned float model the lowering quantized
    model.int.onnx     the integer model (onnxruntime)
    kernels/           C99 sources, header, Makefile, test main
    lowering.json      per-layer codes, bits, packed bytes, fixed-point choices
    verify.json        agreement of numpy reference / onnxruntime / C, accuracies
    report.json/.md/.html
    config.yaml        every option of this run (`--config` reproduces it)
    compile.log        the log of the run (search progress per epoch, steps, timings)
    inspect.json       the IR after the frontend steps (`hqc inspect --json`'s document)
    choices.json       the candidate quantizers per layer (insert-quant-choices)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hqc.config import STAGES, CompileConfig, environment_versions, require_device
from hqc.errors import ConfigError
from hqc.outdir import atomic_dir

log = logging.getLogger(__name__)

Progress = Callable[[str, dict[str, Any]], None]


@dataclass
class CompileResult:
    out_dir: Path
    stopped_after: str | None
    summary: dict[str, Any] = field(default_factory=dict)


def default_out(model: str) -> Path:
    return Path("build") / Path(model).stem


def run_compile(cfg: CompileConfig, progress: Progress | None = None, start_from: str | None = None) -> CompileResult:
    """Run the steps of `hqc.pipeline.STEPS` for `cfg` (from `start_from`, resuming from
    the output folder an earlier run left); returns where the outputs are and the summary."""
    from hqc.pipeline import RESUMED, STEPS, CompileState, resume

    cfg.validate()
    cfg.require_inputs()
    require_device(cfg.device)
    names = [name for name, _ in STEPS]
    assert tuple(names) == STAGES
    if start_from is not None and start_from not in names:
        raise ConfigError(f"--start-from {start_from!r} is not a step ({', '.join(names)})")
    if start_from is not None and cfg.stop_after is not None and names.index(cfg.stop_after) < names.index(start_from):
        raise ConfigError(f"--stop-after {cfg.stop_after} comes before --start-from {start_from}")
    notify = progress or (lambda kind, info: None)
    t_start = time.perf_counter()
    out = Path(cfg.out) if cfg.out else default_out(cfg.model)
    if start_from is not None and not out.is_dir():
        raise ConfigError(f"{out}: no such folder to --start-from {start_from} (the earlier run's -o)")
    summary: dict[str, Any] = {}
    stopped: str | None = None
    with atomic_dir(out) as tmp:
        handler = logging.FileHandler(tmp / "compile.log", encoding="utf-8")
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("hqc")
        old_level = root.level
        root.addHandler(handler)
        if root.getEffectiveLevel() > logging.INFO:
            root.setLevel(logging.INFO)
        try:
            (tmp / "config.yaml").write_text(cfg.to_yaml(environment_versions()), encoding="utf-8")
            state = CompileState(out=tmp, notify=notify, summary=summary)
            first = names.index(start_from) if start_from is not None else 0
            for i, (name, step) in enumerate(STEPS):
                if start_from is not None and i == first:
                    resume(state, cfg, out, start_from)
                if i < first and name in RESUMED:
                    continue  # rebuilt from the earlier run's folder by resume()
                notify("stage", {"stage": name})
                t0 = time.perf_counter()
                state = step(state, cfg)
                state.seconds[name] = time.perf_counter() - t0
                log.info("step %s: %.2fs", name, state.seconds[name])
                if cfg.stop_after == name:
                    stopped = name
                    break
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
            handler.close()
    summary.update(model=cfg.model, target=state.target.name if state.target is not None else cfg.target,
                   seconds=time.perf_counter() - t_start, out=str(out), step_seconds=dict(state.seconds))
    return CompileResult(out, stopped, summary)
