"""The pipeline: the frontend entry points and `STEPS`, the steps of `hqc compile`.

    import → canonicalize → recognize-neurons → annotate-layers (analysis)
           → insert-quant-choices → search → finetune → lower-int → verify → emit

`STEPS` is a tuple of `(name, step)`; `step(state, cfg) -> state` reads and fills one
`CompileState` and writes what it produced into `state.out` (the run's temporary
output folder). `SAVES[name]` lists those files: `hqc compile --start-from STEP` copies
the files of the steps before STEP from an earlier run's folder and `resume` rebuilds
the state from them (`hqc.compile.run_compile` is the driver).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hqc.errors import ConfigError, DataError, ModelError, VerificationError
from hqc.ir import Graph
from hqc.layers import LayerInfo
from hqc.lif import LIFParams
from hqc.onnx_io import import_model
from hqc.passes import Context, analysis, run_passes

log = logging.getLogger(__name__)

FRONTEND: tuple[str, ...] = (
    "canonicalize",
    "recognize-neurons",
)


@dataclass
class Frontend:
    """What the frontend knows of a model: the IR, its layers and neurons, timings."""

    graph: Graph
    layers: list[LayerInfo]
    neurons: list[tuple[str, LIFParams, tuple[int, ...]]]
    records: list[dict] = field(default_factory=list)
    import_seconds: float = 0.0
    onnx_nodes: int = 0


def neurons_of(graph: Graph) -> list[tuple[str, LIFParams, tuple[int, ...]]]:
    out = []
    for n in graph.nodes():
        if n.op == "LIF":
            out.append((n.name, LIFParams.from_attrs(n.attrs), tuple(graph.shape(n.inputs[0]) or ())))
    return out


def run_frontend(model_path: str | Path, input_layout: str | None = None) -> Frontend:
    """Import an ONNX model, canonicalize it, lift its neurons, annotate its layers."""
    t0 = time.perf_counter()
    graph = import_model(model_path)
    onnx_nodes = len(graph)
    graph, records = run_passes(graph, FRONTEND, Context(options={"input_layout": input_layout}))
    layers = analysis(graph, "annotate-layers")
    if not layers:
        raise ModelError(f"{model_path}: the model has no weight layers (Conv, Gemm or MatMul with a constant weight)")
    graph.meta["input_layout"] = input_layout
    seconds = time.perf_counter() - t0
    return Frontend(graph, layers, neurons_of(graph), records, seconds, onnx_nodes)


def load_and_analyze(model_path: str, input_layout: str | None = None) -> tuple[Graph, list[LayerInfo]]:
    """ONNX file → (IR after the frontend passes, weight layers)."""
    fe = run_frontend(model_path, input_layout)
    return fe.graph, fe.layers


def sample_shape(graph: Graph, input_layout: str | None = None) -> tuple[int, ...]:
    """Per-sample data shape (T, C, H, W) the model expects, from its input and layout."""
    from hqc.layout import detect_layout

    shp = [int(d) for d in graph.shape(graph.inputs[0]) or []]
    layout = (input_layout or detect_layout(graph)).upper()
    b = layout.index("B")
    shp.pop(b)
    if layout.startswith("TB"):
        pass  # remaining order is (T, C, H, W) already
    return tuple(shp)


def layer_input_tensors(graph: Graph, layer: LayerInfo) -> list[str]:
    """The data-input tensor of each node of a layer."""
    out = []
    for nid in layer.nodes:
        node = graph.node(nid)
        if node.op == "MatMul" and graph.is_const(node.inputs[0]):
            out.append(node.inputs[1])
        else:
            out.append(node.inputs[0])
    return out


def measure_firing_rates(
    graph: Graph,
    layers: list[LayerInfo],
    data_path: str,
    input_layout: str | None = None,
    split: str = "val",
    limit: int = 256,
    batch_size: int = 64,
) -> dict[str, float]:
    """Mean input firing rate (fraction of ones) of every layer whose input is spikes,
    measured with the float model on up to `limit` samples of `split` (train if absent)."""
    import numpy as np
    import torch

    from hqc.backend import TorchModel
    from hqc.data import load_data

    ds = load_data(data_path, sample_shape(graph, input_layout))
    sp = ds.splits.get(split) or ds.train
    model = TorchModel(graph, input_layout).eval()
    spiking = [layer for layer in layers if layer.input_kind == "spikes"]
    names = sorted({t for layer in spiking for t in layer_input_tensors(graph, layer)})
    if not names:
        return {}
    sums = dict.fromkeys(names, 0.0)
    counts = dict.fromkeys(names, 0)
    x = sp.x[:limit]
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            outs = model.forward_all(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])), names)
            for n, o in zip(names, outs, strict=True):
                sums[n] += float(o.double().sum())
                counts[n] += o.numel()
    rates = {}
    for layer in spiking:
        ts = layer_input_tensors(graph, layer)
        rates[layer.name] = sum(sums[t] for t in ts) / max(1, sum(counts[t] for t in ts))
    return rates


# --------------------------------------------------------------------------- hqc compile's steps
Progress = Callable[[str, dict[str, Any]], None]

#: Samples of the split the deployed firing rates are measured on (integer reference).
RATE_SAMPLES = 256
INSPECT_FILE = "inspect.json"
CHOICES_FILE = "choices.json"


@dataclass
class CompileState:
    """What `hqc compile` knows so far; every step fills its part."""

    out: Path  # the run's temporary output folder, where the steps write
    notify: Progress = field(default=lambda kind, info: None, repr=False)
    target: Any = None  # hqc.targets.Target
    graph: Graph | None = None  # the IR (after the frontend steps run so far)
    onnx_nodes: int = 0
    records: list[dict] = field(default_factory=list)  # per-pass records
    import_seconds: float = 0.0
    layers: list[LayerInfo] = field(default_factory=list)
    dataset: Any = None  # hqc.data.Dataset, loaded once
    choices: dict[str, list[str]] = field(default_factory=dict)  # candidates per layer
    searched: Any = None  # hqc.search.Searched: the search's run, between the search and finetune steps
    search: Any = None  # hqc.search.SearchResult: the plan, plan.yaml's document, trained weights
    qat: Frontend | None = None  # the fine-tuned float model the lowering quantizes
    lowering: Any = None  # hqc.lowerdir.Lowering (None when resumed from the folder)
    deployed: Any = None  # hqc.targets.full.DeployedModel
    verification: Any = None  # hqc.verification.VerifyResult
    report: dict[str, Any] | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # per step

    @property
    def frontend(self) -> Frontend:
        assert self.graph is not None
        return Frontend(self.graph, self.layers, neurons_of(self.graph), self.records,
                        self.import_seconds, self.onnx_nodes)


def _ctx(cfg: Any) -> Context:
    return Context(options={"input_layout": cfg.input_layout, "search_space": cfg.search_space}, seed=cfg.seed)


def _write_json(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def _write_inspect(state: CompileState) -> None:
    from hqc.inspection import inspect_dict

    _write_json(state.out / INSPECT_FILE, inspect_dict(state.frontend))


def _pass_step(name: str) -> Callable[[CompileState, Any], CompileState]:
    def step(state: CompileState, cfg: Any) -> CompileState:
        assert state.graph is not None
        state.graph, recs = run_passes(state.graph, [name], _ctx(cfg))
        state.records += recs
        _write_inspect(state)
        return state

    step.__name__ = f"step_{name.replace('-', '_')}"
    return step


def step_import(state: CompileState, cfg: Any) -> CompileState:
    """The ONNX model into the IR (the only import of the run)."""
    from hqc.targets import load_target

    state.target = load_target(cfg.target)  # fail fast on a bad table
    t0 = time.perf_counter()
    state.graph = import_model(cfg.model)
    state.import_seconds = time.perf_counter() - t0
    state.onnx_nodes = len(state.graph)
    _write_inspect(state)
    return state


def step_annotate_layers(state: CompileState, cfg: Any) -> CompileState:
    """The weight layers (the cached analysis), then the data, loaded once and checked
    against the model (labels, split, a given plan)."""
    from hqc.data import load_data

    assert state.graph is not None
    state.layers = analysis(state.graph, "annotate-layers")
    if not state.layers:
        raise ModelError(f"{cfg.model}: the model has no weight layers (Conv, Gemm or MatMul with a constant weight)")
    state.graph.meta["input_layout"] = cfg.input_layout
    ds = load_data(cfg.data, sample_shape(state.graph, cfg.input_layout))
    n_classes = _num_classes(state.graph)
    if n_classes is not None and ds.num_classes > n_classes:
        raise DataError(f"{cfg.data}: labels go up to {ds.num_classes - 1} but the model has {n_classes} outputs")
    if cfg.split not in ds.splits:
        raise DataError(f"{cfg.data}: no {cfg.split!r} split to measure accuracy on (has: {', '.join(ds.splits)})")
    if cfg.plan is not None:
        from hqc.plan import read_plan

        read_plan(cfg.plan, state.layers)  # fail fast on a plan that does not fit
    state.dataset = ds
    _write_inspect(state)
    return state


def _num_classes(graph: Graph) -> int | None:
    shp = graph.shape(graph.outputs[0])
    return int(shp[-1]) if shp else None


def step_insert_quant_choices(state: CompileState, cfg: Any) -> CompileState:
    """The candidate quantizers of every layer (node metadata, the graph the search
    uses), saved as choices.json."""
    from hqc.passes.insert_quant_choices import META_KEY

    assert state.graph is not None
    state.graph, recs = run_passes(state.graph, ["insert-quant-choices"], _ctx(cfg))
    state.records += recs
    state.choices = {layer.name: state.graph.node(layer.nodes[0]).meta[META_KEY].split(",")
                     for layer in state.layers}
    _write_json(state.out / CHOICES_FILE, {"layers": state.choices})
    return state


def step_search(state: CompileState, cfg: Any) -> CompileState:
    """`search_plan` on the state's graph (its candidates) and the loaded data: the plan
    and the searched supernet, which the finetune step continues from. A run that stops
    here does not fine-tune: it writes the searched plan's plan.yaml, model.qat.onnx (and
    scales.npz) with `finish_plan`."""
    from hqc.search import finish_plan

    stop = cfg.stop_after == "search"
    t0 = time.perf_counter()
    state.searched = _search_plan(state, cfg, finetune_epochs=0 if stop else cfg.finetune_epochs)
    if stop:
        _searched(state, finish_plan(state.searched), t0)
    else:
        _add_seconds(state, t0)
    return state


def step_finetune(state: CompileState, cfg: Any) -> CompileState:
    """`finetune_plan`: the QAT fine-tune of the search step's plan, continuing from its
    weights and optimizer. Resumed (`--start-from finetune`) it fine-tunes the saved
    plan.yaml from the imported weights, as `hqc search --plan` does."""
    from hqc.search import finetune_plan

    t0 = time.perf_counter()
    if state.searched is None:
        state.searched = _search_plan(state, cfg, cfg.finetune_epochs, plan=state.out / "plan.yaml")
    _searched(state, finetune_plan(state.searched), t0)
    return state


def _search_plan(state: CompileState, cfg: Any, finetune_epochs: int, plan: Any = None) -> Any:
    from hqc.search import SearchConfig, search_plan

    scfg = SearchConfig(epochs=cfg.epochs, finetune_epochs=finetune_epochs, batch_size=cfg.batch_size,
                        seed=cfg.seed, device=cfg.device)
    if cfg.lambda_ is not None:
        scfg.lam = cfg.lambda_
    return search_plan(cfg.model, cfg.data, target=cfg.target, out_dir=state.out, config=scfg,
                       plan=plan if plan is not None else cfg.plan, input_layout=cfg.input_layout,
                       progress=state.notify, frontend=state.frontend, dataset=state.dataset)


def _add_seconds(state: CompileState, t0: float) -> None:
    state.summary["search_seconds"] = state.summary.get("search_seconds", 0.0) + time.perf_counter() - t0


def _searched(state: CompileState, sr: Any, t0: float) -> None:
    """The search's result into the state: the plan, the fine-tuned model in memory."""
    (state.out / "search.ckpt").unlink(missing_ok=True)
    state.searched = None  # the supernet and its optimizers are not needed any more
    state.search = sr
    state.qat = qat_frontend(state.frontend, sr.weights)
    state.summary.update(float_accuracy=sr.float_accuracy, fake_quant_accuracy=sr.fake_quant_accuracy,
                         energy_ratio=sr.energy_ratio)
    _add_seconds(state, t0)


def qat_frontend(fe: Frontend, weights: dict[str, Any]) -> Frontend:
    """The fine-tuned model in memory: the frontend's IR with the search's trained weights
    and corrected BatchNorm statistics (`SearchResult.weights`), as re-importing
    model.qat.onnx (the same graph with these constants) would give it."""
    g = fe.graph.copy()
    for name, w in weights.items():
        g.constants[name] = w.astype(g.constants[name].dtype)
    return Frontend(g, analysis(g, "annotate-layers"), neurons_of(g), [], 0.0, fe.onnx_nodes)


def step_lower_int(state: CompileState, cfg: Any) -> CompileState:
    """The fine-tuned model + plan → the integer model, kernels and lowering.json."""
    from hqc.lowerdir import lower, write_lowering
    from hqc.targets.full import DeployedModel

    sr = state.search
    low = lower(sr.qat_model_path, sr.plan_path, data=state.dataset, input_layout=cfg.input_layout, frontend=state.qat)
    write_lowering(low, state.out)
    state.lowering = low
    state.deployed = DeployedModel.from_lowering(low, origin="model.int.onnx")
    totals = low.doc.get("totals", {})
    state.summary.update(packed_weight_bytes=totals.get("packed_weight_bytes"),
                         fp32_weight_bytes=totals.get("fp32_weight_bytes"))
    return state


def step_verify(state: CompileState, cfg: Any) -> CompileState:
    """numpy reference = onnxruntime = C on the split; verify.json."""
    from hqc.results import verify_document
    from hqc.verification import verify_dir

    # on the whole split the search already measured the fake-quant model on these very
    # samples; with --verify-limit, measure it again on the subset so figures compare
    vr = verify_dir(state.out, cfg.data, split=cfg.split, limit=cfg.verify_limit,
                    float_model=cfg.verify_limit is not None or cfg.split != state.search.document.get("accuracy", {}).get("split"),
                    dataset=state.dataset, frontend=state.qat)
    _write_json(state.out / "verify.json", verify_document(vr))
    if not vr.identical:
        raise VerificationError(
            f"verification failed: integer logits differ between the numpy reference and {vr.agree} of {vr.samples} samples"
        )
    state.verification = vr
    state.summary.update(integer_accuracy=vr.accuracy_int, verify=vr.to_dict())
    if vr.accuracy_float is not None:
        state.summary["fake_quant_accuracy"] = vr.accuracy_float
    return state


def step_emit(state: CompileState, cfg: Any) -> CompileState:
    """report.json/.md/.html: cost model, accuracies, verification, full accounting."""
    from hqc.layout import detect_layout
    from hqc.lowerdir import layout_of
    from hqc.report import (
        AccuracyInfo,
        ModelInfo,
        SearchInfo,
        VerifyInfo,
        build_report,
        write_report,
    )
    from hqc.targets.full import deployed_firing_rates

    fe, sr, vr = state.frontend, state.search, state.verification
    xs = state.dataset.split(cfg.split).x
    rates = deployed_firing_rates(state.deployed, fe.layers, xs, layout_of(fe.graph, cfg.input_layout), RATE_SAMPLES)
    rates_source = f"deployed integer model (model.int.onnx), {min(RATE_SAMPLES, len(xs))} {cfg.split} samples"
    shape = list(fe.graph.shape(fe.graph.inputs[0]) or [])
    T = int(fe.neurons[0][2][fe.neurons[0][1].time_axis]) if fe.neurons else None
    model_info = ModelInfo(path=str(cfg.model), onnx_nodes=fe.onnx_nodes, ir_nodes=len(fe.graph), input_shape=shape,
                           time_steps=T, input_layout=cfg.input_layout or detect_layout(fe.graph))
    # fake-quant and integer accuracy on exactly the same samples (verify's); the float
    # model's accuracy is the search's, on the whole split
    accuracy = AccuracyInfo(split=cfg.split, samples=vr.samples, float_model=sr.float_accuracy,
                            fake_quant=vr.accuracy_float if vr.accuracy_float is not None else sr.fake_quant_accuracy,
                            integer=vr.accuracy_int)
    search = SearchInfo.from_plan(sr.document, source="user" if cfg.plan else "search", plan_file="plan.yaml")
    outputs = {"plan": "plan.yaml", "qat_model": "model.qat.onnx", "int_model": "model.int.onnx", "kernels": "kernels/",
               "lowering": "lowering.json", "verify": "verify.json", "config": "config.yaml", "log": "compile.log"}
    report = build_report(
        model=model_info, layers=fe.layers, plan=sr.document, target=state.target, firing_rates=rates,
        accuracy=accuracy, search=search, verify=VerifyInfo.from_result(vr), outputs=outputs,
        weights=_layer_weights(fe, sr.weights),
        # full accounting: imported weights for the "before" histograms, deployed figures
        imported_weights=_layer_weights(fe, {layer.weight: fe.graph.const(layer.weight) for layer in fe.layers}),
        graph=fe.graph, deployed=state.deployed, firing_rates_source=rates_source, scales=sr.scales,
        memory=_lowering_doc(state).get("memory"),
    )
    write_report(state.out, report)
    state.report = report
    state.summary["report"] = report
    return state


def _layer_weights(fe: Frontend, weights: dict[str, Any]) -> dict[str, Any]:
    """The search's weights (keyed by initializer, ONNX layout) per layer name in the
    PyTorch layout, as the report's histograms take them."""
    from hqc.passes.annotate_layers import weight_transposed

    out = {}
    for layer in fe.layers:
        if layer.weight in weights:
            w = weights[layer.weight]
            out[layer.name] = w.T if weight_transposed(fe.graph, layer) else w
    return out


STEPS: tuple[tuple[str, Callable[[CompileState, Any], CompileState]], ...] = (
    ("import", step_import),
    ("canonicalize", _pass_step("canonicalize")),
    ("recognize-neurons", _pass_step("recognize-neurons")),
    ("annotate-layers", step_annotate_layers),
    ("insert-quant-choices", step_insert_quant_choices),
    ("search", step_search),
    ("finetune", step_finetune),
    ("lower-int", step_lower_int),
    ("verify", step_verify),
    ("emit", step_emit),
)

#: What each step leaves in the folder (the files in OPTIONAL only when there are learned scales).
SAVES: dict[str, tuple[str, ...]] = {
    "import": (INSPECT_FILE,),
    "canonicalize": (INSPECT_FILE,),
    "recognize-neurons": (INSPECT_FILE,),
    "annotate-layers": (INSPECT_FILE,),
    "insert-quant-choices": (CHOICES_FILE,),
    "search": ("plan.yaml", "model.qat.onnx", "scales.npz"),
    "finetune": ("plan.yaml", "model.qat.onnx", "scales.npz"),
    "lower-int": ("model.int.onnx", "kernels", "lowered.onnx", "lowering.json", "scales.npz"),
    "verify": ("verify.json",),
    "emit": ("report.json", "report.md", "report.html"),
}
OPTIONAL = frozenset({"scales.npz"})
#: Steps whose result `resume` rebuilds from the folder when they come before --start-from;
#: the others (the frontend, the choices: deterministic and sub-second) run again.
RESUMED = ("search", "finetune", "lower-int", "verify")


def resume(state: CompileState, cfg: Any, previous: Path, start_from: str) -> None:
    """Copy into `state.out` what the steps before `start_from` saved in `previous` and
    rebuild their part of the state. ConfigError (one line) when it is missing or does
    not belong to this model and data."""
    names = [n for n, _ in STEPS]
    before = names[: names.index(start_from)]
    if not any(n in RESUMED for n in before):
        return  # everything before it is recomputed from the model and the data
    if not (previous / "config.yaml").is_file():
        raise ConfigError(f"{previous}: not a folder of hqc compile (no config.yaml); cannot --start-from {start_from}")
    wanted = [f for n in before if n in RESUMED for f in SAVES[n]]
    for f in dict.fromkeys(wanted):
        src = previous / f
        if not src.exists():
            if f in OPTIONAL:
                continue
            raise ConfigError(f"{previous}: no {f} (the {_saver(f)} step's output); "
                              f"cannot --start-from {start_from}")
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, state.out / f)
    if "search" in before:
        _resume_search(state, cfg, start_from)
    if "lower-int" in before:
        _resume_lowering(state, start_from)
    if "verify" in before:
        _resume_verify(state, start_from)


def _saver(f: str) -> str:
    return next(n for n, files in SAVES.items() if f in files)


def _resume_search(state: CompileState, cfg: Any, start_from: str) -> None:
    """plan.yaml (+ model.qat.onnx, scales.npz) → state.search, state.qat."""
    from hqc.plan import load_plan_yaml, read_plan
    from hqc.quant import SCALES_FILE, load_scales
    from hqc.search import QAT_MODEL_FILE, SearchResult

    plan_path = state.out / "plan.yaml"
    doc = load_plan_yaml(plan_path)
    fp = (doc.get("data") or {}).get("fingerprint")
    if fp != state.dataset.fingerprint:
        raise ConfigError(f"{plan_path}: searched on other data than {cfg.data}; cannot --start-from {start_from}")
    plan = read_plan(plan_path, state.layers)
    if start_from == "finetune":
        return  # step_finetune fine-tunes it
    qat_path = state.out / QAT_MODEL_FILE
    t0 = time.perf_counter()
    qat = run_frontend(qat_path, cfg.input_layout)
    qat.import_seconds = time.perf_counter() - t0
    weights = {layer.weight: qat.graph.const(layer.weight) for layer in qat.layers}
    scales_path = state.out / SCALES_FILE if (state.out / SCALES_FILE).is_file() else None
    try:
        scales = load_scales(scales_path) if scales_path is not None else {}
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    acc, energy = doc.get("accuracy") or {}, doc.get("energy") or {}
    split = state.dataset.splits.get(acc.get("split"))
    n = len(split) if split is not None else None
    float_acc, fq_acc = _count_ratio(acc.get("float"), n), _count_ratio(acc.get("fake_quant"), n)
    state.search = SearchResult(plan, doc, state.out, plan_path, qat_path, float_acc, fq_acc,
                                energy.get("ratio"), energy.get("expected_ratio"), weights, scales, scales_path)
    state.qat = qat
    state.summary.update(float_accuracy=float_acc, fake_quant_accuracy=fq_acc,
                         energy_ratio=energy.get("ratio"), search_seconds=0.0)


def _count_ratio(x: float | None, n: int | None) -> float | None:
    """An accuracy plan.yaml rounded to 6 digits, back to correct/n exactly as the search
    computed it (n: the samples of the split it was measured on; unknown for a holdout)."""
    if x is None or not n:
        return x
    k = round(x * n)
    return k / n if abs(k / n - x) <= 5e-7 else x


def _lowering_doc(state: CompileState) -> dict[str, Any]:
    """lowering.json's document: the lowering of this run, or the one a resumed run found."""
    if state.lowering is not None:
        return state.lowering.doc
    return json.loads((state.out / "lowering.json").read_text(encoding="utf-8"))


def _resume_lowering(state: CompileState, start_from: str) -> None:
    """The lowering files → state.deployed (their plan must be plan.yaml's)."""
    import dataclasses

    from hqc.targets.full import DeployedModel

    dep = dataclasses.replace(DeployedModel.from_dir(state.out), origin="model.int.onnx")
    if dict(dep.plan) != {k: v.name for k, v in state.search.plan.items()}:
        raise ConfigError(f"{state.out.name}: lowering.json's plan is not plan.yaml's; cannot --start-from {start_from}")
    state.deployed = dep
    totals = json.loads((state.out / "lowering.json").read_text(encoding="utf-8")).get("totals", {})
    state.summary.update(packed_weight_bytes=totals.get("packed_weight_bytes"),
                         fp32_weight_bytes=totals.get("fp32_weight_bytes"))


def _resume_verify(state: CompileState, start_from: str) -> None:
    """verify.json → state.verification."""
    import dataclasses

    from hqc.verification import VerifyResult

    try:
        doc = json.loads((state.out / "verify.json").read_text(encoding="utf-8"))
        known = {f.name for f in dataclasses.fields(VerifyResult)}
        vr = VerifyResult(**{k: v for k, v in doc.items() if k in known})
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"verify.json: unreadable ({type(exc).__name__}); cannot --start-from {start_from}") from None
    vr.input_range = tuple(vr.input_range)
    if not vr.identical:
        raise ConfigError(f"verify.json: the saved verification failed; cannot --start-from {start_from}")
    state.verification = vr
    state.summary.update(integer_accuracy=vr.accuracy_int, verify=vr.to_dict())
    if vr.accuracy_float is not None:
        state.summary["fake_quant_accuracy"] = vr.accuracy_float
