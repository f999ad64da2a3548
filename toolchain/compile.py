"""`hqc compile`: the whole pipeline into one output folder, complete or not at all.

    import → canonicalize → recognize-neurons → annotate-layers → insert-quant-choices
      → search → finetune → lower-int → verify → emit

The stages call the same library functions as `hqc inspect`, `hqc search`, `hqc lower`,
`hqc verify` and `hqc report`. Everything is written into a temporary folder beside the
output and renamed into place at the end (`hqc.outdir.atomic_dir`): an error or an
interrupt leaves no output folder. `--stop-after STAGE` ends the run after that stage with
the files produced so far.

Output folder:
    plan.yaml          the plan (searched, or the user's)
    model.qat.onnx     the fine-tuned float model the lowering quantized
    model.int.onnx     the integer model (onnxruntime)
    kernels/           C99 sources, header, Makefile, test main
    lowering.json      per-layer codes, bits, packed bytes, fixed-point choices
    verify.json        agreement of numpy reference / onnxruntime / C, accuracies
    report.json/.md/.html
    config.yaml        every option of this run (`--config` reproduces it)
    compile.log        the log of the run (search progress per epoch, stages, timings)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hqc.config import STAGES, CompileConfig, environment_versions, require_device
from hqc.errors import DataError, VerificationError
from hqc.outdir import atomic_dir

log = logging.getLogger(__name__)

Progress = Callable[[str, dict[str, Any]], None]

#: Samples of the split the deployed firing rates are measured on (integer reference).
RATE_SAMPLES = 256


@dataclass
class CompileResult:
    out_dir: Path
    stopped_after: str | None
    summary: dict[str, Any] = field(default_factory=dict)


def _stop(cfg: CompileConfig, stage: str) -> bool:
    return cfg.stop_after is not None and STAGES.index(stage) >= STAGES.index(cfg.stop_after)


def default_out(model: str) -> Path:
    return Path("build") / Path(model).stem


def run_compile(cfg: CompileConfig, progress: Progress | None = None) -> CompileResult:
    """Run the pipeline for `cfg`; returns where the outputs are and the summary figures."""
    from hqc.data import load_data
    from hqc.pipeline import measure_firing_rates, run_frontend, sample_shape
    from hqc.targets import load_target

    cfg.validate()
    cfg.require_inputs()
    require_device(cfg.device)
    notify = progress or (lambda kind, info: None)
    t_start = time.perf_counter()
    out = Path(cfg.out) if cfg.out else default_out(cfg.model)
    target = load_target(cfg.target)  # fail fast on a bad table
    notify("stage", {"stage": "import"})
    fe = run_frontend(cfg.model, cfg.input_layout)
    ds = load_data(cfg.data, sample_shape(fe.graph, cfg.input_layout))
    n_classes = _num_classes(fe)
    if n_classes is not None and ds.num_classes > n_classes:
        raise DataError(f"{cfg.data}: labels go up to {ds.num_classes - 1} but the model has {n_classes} outputs")
    if cfg.split not in ds.splits:
        raise DataError(f"{cfg.data}: no {cfg.split!r} split to measure accuracy on (has: {', '.join(ds.splits)})")
    if cfg.plan is not None:
        from hqc.plan import read_plan

        read_plan(cfg.plan, fe.layers)  # fail fast on a plan that does not fit
    summary: dict[str, Any] = {"model": cfg.model, "target": target.name}
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
            stopped = _pipeline(cfg, fe, ds, target, tmp, summary, notify, measure_firing_rates)
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
            handler.close()
    summary["seconds"] = time.perf_counter() - t_start
    summary["out"] = str(out)
    return CompileResult(out, stopped, summary)


def _num_classes(fe: Any) -> int | None:
    shp = fe.graph.shape(fe.graph.outputs[0])
    return int(shp[-1]) if shp else None


def _pipeline(cfg, fe, ds, target, tmp: Path, summary: dict, notify: Progress, measure_firing_rates) -> str | None:
    from hqc.cli import inspect_dict

    for stage in ("import", "canonicalize", "recognize-neurons", "annotate-layers"):
        if _stop(cfg, stage):
            (tmp / "inspect.json").write_text(json.dumps(inspect_dict(fe), indent=2) + "\n", encoding="utf-8")
            return stage
    from hqc.search import SearchConfig, run_search

    notify("stage", {"stage": "search"})
    scfg = SearchConfig(
        epochs=cfg.epochs,
        finetune_epochs=0 if _stop(cfg, "search") else cfg.finetune_epochs,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        device=cfg.device,
    )
    if cfg.lambda_ is not None:
        scfg.lam = cfg.lambda_
    if _stop(cfg, "insert-quant-choices"):
        from hqc.passes import Context, run_passes

        run_passes(fe.graph.copy(), ["insert-quant-choices"], Context(options={"search_space": cfg.search_space}))
        (tmp / "inspect.json").write_text(json.dumps(inspect_dict(fe), indent=2) + "\n", encoding="utf-8")
        return "insert-quant-choices"
    t0 = time.perf_counter()
    sr = run_search(
        cfg.model,
        cfg.data,
        target=cfg.target,
        out_dir=tmp,
        config=scfg,
        plan=cfg.plan,
        search_space=cfg.search_space,
        input_layout=cfg.input_layout,
        progress=lambda kind, info: notify(kind, info),
    )
    search_seconds = time.perf_counter() - t0
    for leftover in ("search.ckpt",):
        (tmp / leftover).unlink(missing_ok=True)
    summary.update(
        float_accuracy=sr.float_accuracy,
        fake_quant_accuracy=sr.fake_quant_accuracy,
        energy_ratio=sr.energy_ratio,
        search_seconds=search_seconds,
    )
    for stage in ("search", "finetune"):
        if _stop(cfg, stage):
            return stage
    from hqc.cli_lower import lower, verify_dir, write_lowering
    from hqc.results import verify_document

    notify("stage", {"stage": "lower-int"})
    low = lower(sr.qat_model_path, sr.plan_path, data=ds.path, input_layout=cfg.input_layout)
    write_lowering(low, tmp)
    totals = low.doc.get("totals", {})
    summary.update(packed_weight_bytes=totals.get("packed_weight_bytes"), fp32_weight_bytes=totals.get("fp32_weight_bytes"))
    if _stop(cfg, "lower-int"):
        return "lower-int"
    notify("stage", {"stage": "verify"})
    # on the whole split the search already measured the fake-quant model on these very
    # samples; with --verify-limit, measure it again on the subset so figures compare
    vr = verify_dir(
        tmp,
        cfg.data,
        split=cfg.split,
        limit=cfg.verify_limit,
        float_model=cfg.verify_limit is not None or cfg.split != sr.document.get("accuracy", {}).get("split"),
    )
    (tmp / "verify.json").write_text(json.dumps(verify_document(vr), indent=2) + "\n", encoding="utf-8")
    if not vr.identical:
        raise VerificationError(
            f"verification failed: integer logits differ between the numpy reference and {vr.agree} of {vr.samples} samples"
        )
    summary.update(integer_accuracy=vr.accuracy_int, verify=vr.to_dict())
    if vr.accuracy_float is not None:
        summary["fake_quant_accuracy"] = vr.accuracy_float
    if _stop(cfg, "verify"):
        return "verify"
    notify("stage", {"stage": "emit"})
    from hqc.cli_lower import _layout_of  # full accounting
    from hqc.report import (
        AccuracyInfo,
        ModelInfo,
        SearchInfo,
        VerifyInfo,
        build_report,
        write_report,
    )
    from hqc.targets.full import DeployedModel, deployed_firing_rates  # full accounting

    # ---- full accounting (hqc.targets.full): rates of the deployed integer model ----
    deployed = DeployedModel.from_lowering(low, origin="model.int.onnx")
    xs = ds.split(cfg.split).x
    rates = deployed_firing_rates(deployed, fe.layers, xs, _layout_of(fe.graph, cfg.input_layout), RATE_SAMPLES)
    rates_source = f"deployed integer model (model.int.onnx), {min(RATE_SAMPLES, len(xs))} {cfg.split} samples"
    # ---- end full accounting ----
    shape = list(fe.graph.shape(fe.graph.inputs[0]) or [])
    T = int(fe.neurons[0][2][fe.neurons[0][1].time_axis]) if fe.neurons else None
    model_info = ModelInfo(
        path=str(cfg.model),
        onnx_nodes=fe.onnx_nodes,
        ir_nodes=len(fe.graph),
        input_shape=shape,
        time_steps=T,
        input_layout=cfg.input_layout or _layout(fe),
    )
    plan_doc = sr.document
    # fake-quant and integer accuracy on exactly the same samples (verify's); the float
    # model's accuracy is the search's, on the whole split
    accuracy = AccuracyInfo(
        split=cfg.split,
        samples=vr.samples,
        float_model=sr.float_accuracy,
        fake_quant=vr.accuracy_float if vr.accuracy_float is not None else sr.fake_quant_accuracy,
        integer=vr.accuracy_int,
    )
    search = SearchInfo.from_plan(plan_doc, source="user" if cfg.plan else "search", plan_file="plan.yaml")
    outputs = {
        "plan": "plan.yaml",
        "qat_model": "model.qat.onnx",
        "int_model": "model.int.onnx",
        "kernels": "kernels/",
        "lowering": "lowering.json",
        "verify": "verify.json",
        "config": "config.yaml",
        "log": "compile.log",
    }
    report = build_report(
        model=model_info,
        layers=fe.layers,
        plan=plan_doc,
        target=target,
        firing_rates=rates,
        accuracy=accuracy,
        search=search,
        verify=VerifyInfo.from_result(vr),
        outputs=outputs,
        weights=_layer_weights(fe, sr.weights),
        # full accounting: imported weights for the "before" histograms, deployed figures
        imported_weights=_layer_weights(fe, {layer.weight: fe.graph.const(layer.weight) for layer in fe.layers}),
        graph=fe.graph,
        deployed=deployed,
        firing_rates_source=rates_source,
    )
    write_report(tmp, report)
    summary["report"] = report
    return None


def _layer_weights(fe: Any, weights: dict[str, Any]) -> dict[str, Any]:
    """The search's weights (keyed by initializer, ONNX layout) per layer name in the
    PyTorch layout, as the report's histograms take them."""
    from hqc.passes.annotate_layers import weight_transposed

    out = {}
    for layer in fe.layers:
        if layer.weight in weights:
            w = weights[layer.weight]
            out[layer.name] = w.T if weight_transposed(fe.graph, layer) else w
    return out


def _layout(fe: Any) -> str:
    from hqc.layout import detect_layout

    return detect_layout(fe.graph)
