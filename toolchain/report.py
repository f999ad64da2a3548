"""The compile report: one JSON document (schema `hqc.report/1`) and its renderings.

    (model info, layers, plan, target, firing rates, accuracies, search, verify, weights)
        --build_report--> report dict --write_report--> report.json, report.md, report.html
    report.json --load_report (validated)--> report dict --render_*--> the same bytes again

Every energy and storage number is the cost model's (`hqc.targets.model_cost`), copied,
never recomputed; the report only adds shares (layer / total) and the params-weighted
average weight width. The document is canonical JSON (sorted keys, two-space indent,
UTF-8, a final newline) and holds no timestamp unless one is passed in, so the same
inputs give the same bytes. report.md and report.html are rendered from report.json
alone, which is what lets `hqc report DIR` re-render them byte for byte.

The schema is documented field by field in docs/report.md.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hqc import __version__
from hqc.choices import parse_choice
from hqc.errors import HqcError, PlanError
from hqc.layers import LayerInfo
from hqc.outdir import write_text_atomic
from hqc.quant import fake_quant_numpy
from hqc.targets import ModelCost, Target, model_cost

REPORT_SCHEMA = "hqc.report/1"

#: The files `write_report` writes, by `hqc report --format` name.
REPORT_FILES: dict[str, str] = {"json": "report.json", "md": "report.md", "html": "report.html"}

#: Bins of the weight histograms (the same edges before and after quantization).
HISTOGRAM_BINS = 48

#: What the two energy figures are; copied into every report.
ESTIMATES: dict[str, str] = {
    "paper": (
        "the search's hardware loss and the main figure: compute = N_mult · (E_mult(b) "
        "or E_shift(b) + E_add(int32)), fp32: N_mult · (E_mult,fp32 + E_add,fp32); "
        "memory = storage_bits · E_DRAM per bit, every weight read once per inference"
    ),
    "spike_aware": (
        "a layer on binary spikes adds a weight only where a spike is present: compute = "
        "firing_rate · N_mult · E_add, from measured firing rates; layers on integer or "
        "real inputs as the paper model; same memory energy; null when no firing rates "
        "were measured"
    ),
}


class ReportError(HqcError):
    """A report file is missing, not JSON, or does not follow schema hqc.report/1."""


# ------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class ModelInfo:
    """The model the report is about.

    path: the ONNX file as given; onnx_nodes / ir_nodes: node counts before and after the
    frontend; input_shape: the model input's shape; time_steps: T (None if unknown);
    input_layout: e.g. "TBCHW" or None.
    """

    path: str
    onnx_nodes: int
    ir_nodes: int
    input_shape: tuple[int, ...]
    time_steps: int | None
    input_layout: str | None = None


@dataclass(frozen=True)
class AccuracyInfo:
    """Top-1 accuracies (0..1) on one split: float model, fake-quant (QAT) model and the
    deployed integer model; None for a figure that was not measured."""

    split: str
    samples: int
    float_model: float | None
    fake_quant: float | None
    integer: float | None


@dataclass(frozen=True)
class SearchInfo:
    """How the plan was made: `source` "search" (λ, epochs, seed, wall time of search +
    fine-tune) or "user" (a plan file given with --plan; epochs 0)."""

    source: Literal["search", "user"]
    lam: float | None
    epochs: int
    finetune_epochs: int
    seed: int | None
    seconds: float | None
    plan_file: str | None = None

    @classmethod
    def from_plan(cls, plan: Mapping[str, Any], source: Literal["search", "user"] | None = None,
                  plan_file: str | None = None) -> SearchInfo:
        """Settings from a plan.yaml document written by the search (keys lambda, epochs,
        finetune_epochs, seed, search.seconds); `source` defaults to "search" when the
        plan has a history, else "user"."""
        layers = plan.get("layers") or {}
        has_history = any(isinstance(e, Mapping) and e.get("history") for e in layers.values())
        search = plan.get("search") if isinstance(plan.get("search"), Mapping) else {}
        return cls(
            source=source or ("search" if has_history else "user"),
            lam=_opt_float(plan.get("lambda")),
            epochs=int(plan.get("epochs") or 0),
            finetune_epochs=int(plan.get("finetune_epochs") or 0),
            seed=None if plan.get("seed") is None else int(plan["seed"]),
            seconds=_opt_float(search.get("seconds")),
            plan_file=plan_file if plan_file is not None else plan.get("source_plan"),
        )


@dataclass(frozen=True)
class VerifyInfo:
    """Agreement of the deployed runtimes with the integer reference.

    reference: the semantics everything is compared to (e.g. "numpy integer reference");
    samples: inputs compared; agreement: runtime name -> samples whose outputs match
    (e.g. {"onnxruntime": 100, "c": 100}); criterion: what "match" means.
    """

    reference: str
    samples: int
    agreement: Mapping[str, int]
    criterion: str = "identical integer logits"

    @classmethod
    def from_result(cls, result: Any) -> VerifyInfo:
        """From `hqc.verification.verify_dir`'s result (its `samples` and `agree` counts)."""
        return cls(reference="numpy integer reference", samples=int(result.samples),
                   agreement={str(k): int(v) for k, v in result.agree.items()})


@dataclass(frozen=True)
class _HistPick:
    role: str
    layer: LayerInfo


DEFAULT_OUTPUTS: dict[str, str] = {
    "plan": "plan.yaml",
    "integer_model": "model.int.onnx",
    "kernels": "kernels/",
    "report_json": REPORT_FILES["json"],
    "report_md": REPORT_FILES["md"],
    "report_html": REPORT_FILES["html"],
}


# ------------------------------------------------------------------------- build


def build_report(
    *,
    model: ModelInfo,
    layers: Sequence[LayerInfo],
    plan: Mapping[str, Any],
    target: Target,
    firing_rates: Mapping[str, float] | None = None,
    accuracy: AccuracyInfo | None = None,
    search: SearchInfo | None = None,
    verify: VerifyInfo | None = None,
    outputs: Mapping[str, str] | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
    created: str | None = None,
    imported_weights: Mapping[str, np.ndarray] | None = None,
    graph: Any = None,
    deployed: Any = None,
    accumulator: str = "paper",
    firing_rates_source: str | None = None,
) -> dict[str, Any]:
    """The report document (schema hqc.report/1) as canonical JSON data.

    `plan` is the plan.yaml document (`layers: {name: {choice, probability, candidates,
    history}}`, or `name: choice`); every layer needs a choice (PlanError otherwise).
    `firing_rates` (layer name -> rate of spikes at its input) enables the spike-aware
    estimate. `weights` (layer name -> latent float weight, PyTorch layout) gives the
    histograms of a few layers after their chosen quantizer, and before it unless
    `imported_weights` (the model's weights as imported, same layout) are given: then
    "before" shows those. `graph` (the frontend IR) adds the full accounting
    (`hqc.targets.full.full_cost`, key "full"), with the deployed storage and proven
    widths of `deployed` (a `DeployedModel` of this plan) and `accumulator` ("paper" or
    "proven"); `firing_rates_source` says which model the rates were measured on.
    `search` defaults to `SearchInfo.from_plan(plan)`. `created` is copied as is.
    The result holds only JSON types (str keys, lists), so it equals
    `json.loads(render_json(result))`.
    """
    layers = list(layers)
    entries = _plan_entries(plan, layers)
    choices = {name: e["choice"] for name, e in entries.items()}
    cost = model_cost(layers, choices, target, firing_rates)
    search = search or SearchInfo.from_plan(plan)
    full = None
    if graph is not None:
        from hqc.targets.full import full_cost

        full = full_cost(graph, layers, cost, choices, target, deployed, accumulator,  # type: ignore[arg-type]
                         storage_unavailable=None if deployed is not None else "no lowering was given",
                         firing_rates_source=firing_rates_source).to_dict()

    total_pj = cost.total.energy_total_pj
    spike_total_pj = cost.total.spike_energy_total_pj
    rows = []
    for layer, row, base in zip(layers, cost.layers, cost.baseline_layers, strict=True):
        d = row.to_dict()
        e = entries[layer.name]
        d.update(
            weight_shape=list(layer.weight_shape),
            probability=e["probability"],
            candidates=e["candidates"],
            history=e["history"],
            energy_share=_share(row.energy_total_pj, total_pj),
            spike_energy_share=_share(row.spike_energy_total_pj, spike_total_pj),
            fp32=_fp32_part(base),
        )
        rows.append(d)

    groups = []
    for g, t in cost.groups.items():
        d = t.to_dict()
        d.update(
            group=g,
            average_bits=_average_bits(t.storage_bits, t.params),
            energy_share=_share(t.energy_total_pj, total_pj),
            spike_energy_share=_share(t.spike_energy_total_pj, spike_total_pj),
            fp32=cost.baseline_groups[g].to_dict(),
            ratios=dict(cost.group_ratios[g]),
        )
        groups.append(d)

    total = cost.total.to_dict()
    total["average_bits"] = _average_bits(cost.total.storage_bits, cost.total.params)
    base_total = cost.baseline_total.to_dict()
    base_total["average_bits"] = _average_bits(cost.baseline_total.storage_bits,
                                               cost.baseline_total.params)

    doc: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "generator": f"hqc {__version__}",
        "created": created,
        "model": {
            "path": str(model.path),
            "onnx_nodes": int(model.onnx_nodes),
            "ir_nodes": int(model.ir_nodes),
            "input_shape": [int(d) for d in model.input_shape],
            "time_steps": None if model.time_steps is None else int(model.time_steps),
            "input_layout": model.input_layout,
        },
        "target": _target_part(target, cost),
        "estimates": dict(ESTIMATES),
        "spike_aware_available": cost.spike_aware_available,
        "search": {
            "source": search.source,
            "lambda": search.lam,
            "epochs": int(search.epochs),
            "finetune_epochs": int(search.finetune_epochs),
            "seed": search.seed,
            "seconds": search.seconds,
            "plan_file": search.plan_file,
        },
        "accuracy": None if accuracy is None else {
            "split": accuracy.split,
            "samples": int(accuracy.samples),
            "float": _opt_float(accuracy.float_model),
            "fake_quant": _opt_float(accuracy.fake_quant),
            "integer": _opt_float(accuracy.integer),
        },
        "verify": None if verify is None else {
            "reference": verify.reference,
            "samples": int(verify.samples),
            "criterion": verify.criterion,
            "agreement": {str(k): int(v) for k, v in verify.agreement.items()},
        },
        "outputs": dict(DEFAULT_OUTPUTS if outputs is None else outputs),
        "layers": rows,
        "groups": groups,
        "total": total,
        "baseline_fp32": base_total,
        "ratios": dict(cost.ratios),
        "histograms": _histograms(layers, choices, weights, imported_weights),
        "full": full,
        "firing_rates_source": firing_rates_source if cost.spike_aware_available else None,
    }
    return json.loads(render_json(doc))


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


def _share(part: float | None, whole: float | None) -> float | None:
    if part is None or whole is None or whole == 0:
        return None
    return part / whole


def _average_bits(storage_bits: int, params: int) -> float | None:
    """Params-weighted mean weight width: sum(params_l * b_l) / sum(params_l)."""
    return None if params == 0 else storage_bits / params


def _fp32_part(base: Any) -> dict[str, Any]:
    return {
        "storage_bits": base.storage_bits,
        "energy_compute_pj": base.energy_compute_pj,
        "energy_memory_pj": base.energy_memory_pj,
        "energy_total_pj": base.energy_total_pj,
        "spike_energy_compute_pj": base.spike_energy_compute_pj,
        "spike_energy_total_pj": base.spike_energy_total_pj,
    }


def _target_part(target: Target, cost: ModelCost) -> dict[str, Any]:
    table = []
    for fmt in sorted(target.ops):
        for op in sorted(target.ops[fmt]):
            for bits, entry in sorted(target.ops[fmt][op].items()):
                table.append({
                    "key": f"{fmt}.{op}.{bits}",
                    "energy_pj": entry.value * target.pj_per_unit,
                    "source": entry.source,
                    "note": entry.note,
                })
    memory = []
    for level in sorted(target.memory):
        m = target.memory[level]
        memory.append({
            "level": level,
            "energy_pj": m.value * target.pj_per_unit,
            "bits": m.bits,
            "energy_pj_per_bit": target.memory_energy_pj_per_bit(level),
            "source": m.source,
            "note": m.note,
        })
    return {
        "name": target.name,
        "technology": target.technology,
        "description": target.description,
        "sources": dict(target.sources),
        "table": table,
        "memory": memory,
        "derive": dict(target.derive),
        "derived": list(cost.derived),
        "accumulator_bits": cost.accumulator_bits,
    }


def _plan_entries(plan: Mapping[str, Any], layers: Sequence[LayerInfo]) -> dict[str, dict[str, Any]]:
    """Per layer: choice name, probability, candidates and history, checked for shape."""
    raw = plan.get("layers") if isinstance(plan, Mapping) else None
    if not isinstance(raw, Mapping):
        raise PlanError("plan:layers: expected a mapping layer name -> {choice: ...}")
    names = [layer.name for layer in layers]
    unknown = [k for k in raw if k not in set(names)]
    if unknown:
        raise PlanError(f"plan:layers: names layers not in the model: {', '.join(map(str, unknown))}")
    missing = [n for n in names if n not in raw]
    if missing:
        raise PlanError(f"plan:layers: no choice for layers: {', '.join(missing)}")
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        e = raw[name]
        key = f"plan:layers.{name}"
        if not isinstance(e, Mapping):
            e = {"choice": e}
        if "choice" not in e:
            raise PlanError(f"{key}.choice: missing required key")
        choice = _parse(e["choice"], f"{key}.choice")
        cands = e.get("candidates")
        if cands is not None:
            if not isinstance(cands, Sequence) or isinstance(cands, str) or not cands:
                raise PlanError(f"{key}.candidates: expected a non-empty list of quantizer names")
            cands = [_parse(c, f"{key}.candidates[{i}]") for i, c in enumerate(cands)]
            if choice not in cands:
                raise PlanError(f"{key}.choice: {choice} is not one of the candidates "
                                f"({', '.join(cands)})")
        prob = e.get("probability")
        if prob is not None:
            prob = _prob(prob, f"{key}.probability")
        hist = e.get("history")
        if hist is not None and len(hist) > 0:
            if cands is None:
                raise PlanError(f"{key}.history: a history needs the list of candidates")
            if not isinstance(hist, Sequence) or isinstance(hist, str):
                raise PlanError(f"{key}.history: expected a list of per-epoch rows")
            rows = []
            for i, row in enumerate(hist):
                if (not isinstance(row, Sequence) or isinstance(row, str)
                        or len(row) != len(cands)):
                    raise PlanError(f"{key}.history[{i}]: expected {len(cands)} probabilities "
                                    f"(one per candidate), got {row!r}")
                rows.append([_prob(p, f"{key}.history[{i}]") for p in row])
            hist = rows
        else:
            hist = None
        out[name] = {"choice": choice, "candidates": cands, "probability": prob, "history": hist}
    return out


def _parse(value: Any, key: str) -> str:
    try:
        return parse_choice(value).name
    except PlanError as e:
        raise PlanError(f"{key}: {e}") from None


def _prob(p: Any, key: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise PlanError(f"{key}: expected a probability in [0, 1], got {p!r}")
    return float(p)


# ------------------------------------------------------------------------- histograms


def _histogram_picks(layers: Sequence[LayerInfo], weights: Mapping[str, np.ndarray]) -> list[_HistPick]:
    """The first tokenizer conv, the first attention and MLP layers, and the head."""
    have = [layer for layer in layers if layer.name in weights]
    picks: list[_HistPick] = []

    def first(role: str, pred: Any) -> None:
        for layer in have:
            if pred(layer) and all(p.layer.name != layer.name for p in picks):
                picks.append(_HistPick(role, layer))
                return

    first("first tokenizer conv", lambda x: x.group == "tokenizer" and x.kind.startswith("conv"))
    if not any(p.role == "first tokenizer conv" for p in picks):
        first("first tokenizer layer", lambda x: x.group == "tokenizer")
    first("first attention layer", lambda x: x.group == "attention")
    first("first MLP layer", lambda x: x.group == "mlp")
    heads = [x for x in have if x.group == "head"]
    if heads:
        picks.append(_HistPick("head layer", heads[-1]))
    order = {layer.name: i for i, layer in enumerate(layers)}
    return sorted(picks, key=lambda p: order[p.layer.name])


def _stats(w: np.ndarray) -> dict[str, float]:
    w64 = w.astype(np.float64)
    return {"min": float(w64.min()), "max": float(w64.max()), "mean": float(w64.mean()),
            "std": float(w64.std())}


def _checked_weight(weights: Mapping[str, np.ndarray], layer: LayerInfo, what: str) -> np.ndarray:
    w = np.asarray(weights[layer.name], np.float32)
    if tuple(w.shape) != tuple(layer.weight_shape):
        raise ReportError(f"{what}[{layer.name!r}]: shape {tuple(w.shape)} does not match "
                          f"the layer's weight shape {tuple(layer.weight_shape)}")
    if not np.all(np.isfinite(w)):
        raise ReportError(f"{what}[{layer.name!r}]: holds NaN or infinite values")
    return w


def _histograms(layers: Sequence[LayerInfo], choices: Mapping[str, str],
                weights: Mapping[str, np.ndarray] | None,
                imported: Mapping[str, np.ndarray] | None = None) -> list[dict[str, Any]]:
    """Per picked layer: the imported weights (else the latent ones) before, Q(latent)
    after; the RMSE is the quantization error Q(latent) − latent."""
    if not weights:
        return []
    out = []
    for pick in _histogram_picks(layers, weights):
        layer = pick.layer
        w = _checked_weight(weights, layer, "weights")
        shown = w
        if imported is not None and layer.name in imported:
            shown = _checked_weight(imported, layer, "imported_weights")
        choice = parse_choice(choices[layer.name])
        q = fake_quant_numpy(w, choice)
        lim = float(max(np.abs(shown).max(), np.abs(q).max()))
        lim = lim if lim > 0 else 1.0
        edges = np.linspace(-lim, lim, HISTOGRAM_BINS + 1)
        before, _ = np.histogram(shown.astype(np.float64), bins=edges)
        after, _ = np.histogram(q.astype(np.float64), bins=edges)
        err = (q.astype(np.float64) - w.astype(np.float64))
        rms_w = float(np.sqrt(np.mean(w.astype(np.float64) ** 2)))
        rmse = float(np.sqrt(np.mean(err ** 2)))
        out.append({
            "layer": layer.name,
            "group": layer.group,
            "role": pick.role,
            "choice": choice.name,
            "edges": [float(x) for x in edges],
            "before": [int(c) for c in before],
            "before_weights": "imported" if shown is not w else "latent",
            "after": [int(c) for c in after],
            "stats_before": _stats(shown),
            "stats_after": {**_stats(q), "distinct_values": int(np.unique(q).size)},
            "rmse": rmse,
            "relative_rmse": None if rms_w == 0 else rmse / rms_w,
        })
    return out


# ------------------------------------------------------------------------- JSON I/O


def render_json(report: Mapping[str, Any]) -> str:
    """Canonical JSON text: sorted keys, indent 2, UTF-8 characters kept, final newline."""
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def render(report: Mapping[str, Any], fmt: str) -> str:
    """The text of one report file: fmt is json, md or html."""
    if fmt == "json":
        return render_json(report)
    if fmt == "md":
        return render_markdown(report)
    if fmt == "html":
        from hqc.report_html import render_html

        return render_html(report)
    raise ValueError(f"unknown report format {fmt!r}")


def write_report(directory: str | Path, report: Mapping[str, Any]) -> dict[str, Path]:
    """Write report.json, report.md and report.html into `directory` (each atomically).

    md and html are rendered from the JSON text as written, so `hqc report DIR` gives
    the same bytes. Returns {format: path}.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    text = render_json(report)
    canonical = json.loads(text)
    _validate(canonical, REPORT_FILES["json"])
    written = {}
    for fmt, name in REPORT_FILES.items():
        body = text if fmt == "json" else render(canonical, fmt)
        written[fmt] = write_text_atomic(d / name, body)
    return written


def report_path(location: str | Path) -> Path:
    """DIR -> DIR/report.json; a file path is returned as is."""
    p = Path(location)
    return p / REPORT_FILES["json"] if p.is_dir() else p


def load_report(path: str | Path) -> dict[str, Any]:
    """Read and validate a report.json (a directory means DIR/report.json).

    Errors are `ReportError("<file>: ...")` or `ReportError("<file>:<key.path>: ...")`.
    """
    p = report_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{p}: no such report file (run hqc compile first)") from None
    except IsADirectoryError:
        raise ReportError(f"{p}: is a directory, not a report file") from None
    except OSError as e:
        raise ReportError(f"{p}: cannot read report ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise ReportError(f"{p}: not UTF-8 text") from None
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise ReportError(f"{p}: not valid JSON at line {e.lineno} column {e.colno} "
                          f"({e.msg})") from None
    except ValueError as e:
        raise ReportError(f"{p}: {e}") from None
    _validate(doc, str(p))
    return doc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a report (numbers must be finite)")


# ------------------------------------------------------------------------- schema

# A spec is a type name ("str", "int", "num", "bool", "any"; "?" suffix: may be null),
# a dict {key: spec} of required keys, ("list", spec) or ("map", spec).
_COST = {"storage_bits": "int", "energy_compute_pj": "num", "energy_memory_pj": "num",
         "energy_total_pj": "num", "spike_energy_compute_pj": "num?",
         "spike_energy_total_pj": "num?"}
_TOTALS = {"layers": "int", "macs": "int", "params": "int", **_COST}
_STATS = {"min": "num", "max": "num", "mean": "num", "std": "num"}
_RATIOS = {k: "num?" for k in ("energy_total_pj", "energy_compute_pj", "energy_memory_pj",
                               "storage_bits", "spike_energy_total_pj",
                               "spike_energy_compute_pj")}

SCHEMA_SPEC: dict[str, Any] = {
    "schema": "str",
    "generator": "str",
    "created": "str?",
    "model": {"path": "str", "onnx_nodes": "int", "ir_nodes": "int",
              "input_shape": ("list", "int"), "time_steps": "int?", "input_layout": "str?"},
    "target": {
        "name": "str", "technology": "str", "description": "str",
        "sources": ("map", "str"),
        "table": ("list", {"key": "str", "energy_pj": "num", "source": "str", "note": "str?"}),
        "memory": ("list", {"level": "str", "energy_pj": "num", "bits": "int",
                            "energy_pj_per_bit": "num", "source": "str", "note": "str?"}),
        "derive": ("map", "str"), "derived": ("list", "str"), "accumulator_bits": "int",
    },
    "estimates": {"paper": "str", "spike_aware": "str"},
    "spike_aware_available": "bool",
    "search": {"source": "str", "lambda": "num?", "epochs": "int", "finetune_epochs": "int",
               "seed": "int?", "seconds": "num?", "plan_file": "str?"},
    "accuracy": ({"split": "str", "samples": "int", "float": "num?", "fake_quant": "num?",
                  "integer": "num?"}, "?"),
    "verify": ({"reference": "str", "samples": "int", "criterion": "str",
                "agreement": ("map", "int")}, "?"),
    "outputs": ("map", "str"),
    "layers": ("list", {
        "name": "str", "group": "str", "kind": "str", "input_kind": "str",
        "weight_shape": ("list", "int"), "params": "int", "macs": "int",
        "choice": "str", "bits": "int", "probability": "num?",
        "candidates": (("list", "str"), "?"), "history": (("list", ("list", "num")), "?"),
        "firing_rate": "num?", "spike_model": "str", "derived": ("list", "str"),
        "energy_share": "num?", "spike_energy_share": "num?",
        **_COST, "fp32": _COST,
    }),
    "groups": ("list", {"group": "str", **_TOTALS, "average_bits": "num?",
                        "energy_share": "num?", "spike_energy_share": "num?",
                        "fp32": _TOTALS, "ratios": _RATIOS}),
    "total": {**_TOTALS, "average_bits": "num?"},
    "baseline_fp32": {**_TOTALS, "average_bits": "num?"},
    "ratios": _RATIOS,
    "histograms": ("list", {
        "layer": "str", "group": "str", "role": "str", "choice": "str",
        "edges": ("list", "num"), "before": ("list", "int"), "after": ("list", "int"),
        "stats_before": _STATS, "stats_after": {**_STATS, "distinct_values": "int"},
        "rmse": "num", "relative_rmse": "num?",
    }),
}

#: The full accounting (hqc.targets.full.FullCost.to_dict()); optional: reports written
#: before it existed have no "full" key, reports without a graph have null.
FULL_SPEC: dict[str, Any] = {
    "accumulator": "str", "accumulator_bits": ("map", "int"),
    "by_kind": ("map", {"sites": "int", "count": "int", "energy_pj": "num", "fp32_energy_pj": "num"}),
    "ops": ("list", {"kind": "str", "node": "str", "count": "int", "operands": "str", "bits": "int",
                     "ops": "str", "energy_pj": "num", "fp32_ops": "str", "fp32_energy_pj": "num",
                     "derived": ("list", "str")}),
    "weights_energy_pj": "num", "weights_spike_energy_pj": "num?", "non_weight_energy_pj": "num",
    "energy_total_pj": "num", "spike_energy_total_pj": "num?", "fp32_weights_energy_pj": "num",
    "fp32_non_weight_energy_pj": "num", "fp32_energy_total_pj": "num",
    "fp32_spike_energy_total_pj": "num?", "ratios": ("map", "num?"),
    "storage": ({"origin": "str", "bytes_by_category": ("map", "int"), "total_bytes": "int",
                 "weights_only_bytes": "int", "arrays": "int"}, "?"),
    "storage_unavailable": "str?", "firing_rates_source": "str?", "derived": ("list", "str"),
    "description": "str",
}

#: Keys a report may lack (older reports); checked when present.
OPTIONAL_SPEC: dict[str, Any] = {"full": (FULL_SPEC, "?"), "firing_rates_source": "str?"}

_TYPE_NAMES = {"str": "a string", "int": "an integer", "num": "a number", "bool": "true or false",
               "list": "a list", "map": "an object", "dict": "an object"}


def _validate(doc: Any, origin: str) -> None:
    if not isinstance(doc, dict):
        raise ReportError(f"{origin}: expected a JSON object at the top level")
    if "schema" not in doc:
        raise ReportError(f"{origin}:schema: missing required key (expected {REPORT_SCHEMA!r})")
    if doc["schema"] != REPORT_SCHEMA:
        raise ReportError(f"{origin}:schema: unsupported schema {doc['schema']!r}; "
                          f"expected {REPORT_SCHEMA!r}")
    _check(doc, SCHEMA_SPEC, origin, "")
    for key, spec in OPTIONAL_SPEC.items():
        if key in doc:
            _check(doc[key], spec, origin, key)
    for i, h in enumerate(doc["histograms"]):
        if h.get("before_weights", "latent") not in ("imported", "latent"):
            raise ReportError(f"{origin}:histograms[{i}].before_weights: expected 'imported' or 'latent'")
    _check_consistency(doc, origin)


def _key(path: str, k: str | int) -> str:
    if isinstance(k, int):
        return f"{path}[{k}]"
    return f"{path}.{k}" if path else k


def _check(value: Any, spec: Any, origin: str, path: str) -> None:
    where = f"{origin}:{path}" if path else origin
    if isinstance(spec, tuple) and len(spec) == 2 and spec[1] == "?":
        if value is not None:
            _check(value, spec[0], origin, path)
        return
    if isinstance(spec, str):
        name, nullable = spec.rstrip("?"), spec.endswith("?")
        if value is None and nullable:
            return
        ok = {
            "str": isinstance(value, str),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "num": isinstance(value, (int, float)) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "any": True,
        }[name]
        if not ok:
            raise ReportError(f"{where}: expected {_TYPE_NAMES[name]}"
                              f"{' or null' if nullable else ''}, got {_short(value)}")
        return
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise ReportError(f"{where}: expected an object, got {_short(value)}")
        for k, sub in spec.items():
            if k not in value:
                raise ReportError(f"{origin}:{_key(path, k)}: missing required key")
            _check(value[k], sub, origin, _key(path, k))
        return
    kind, sub = spec
    if kind == "list":
        if not isinstance(value, list):
            raise ReportError(f"{where}: expected a list, got {_short(value)}")
        for i, item in enumerate(value):
            _check(item, sub, origin, _key(path, i))
    else:
        if not isinstance(value, dict):
            raise ReportError(f"{where}: expected an object, got {_short(value)}")
        for k, item in value.items():
            _check(item, sub, origin, _key(path, k))


def _check_consistency(doc: dict[str, Any], origin: str) -> None:
    """What the renderers rely on beyond types."""
    if not doc["layers"]:
        raise ReportError(f"{origin}:layers: expected at least one layer")
    known = {g["group"] for g in doc["groups"]}
    for i, row in enumerate(doc["layers"]):
        if row["group"] not in known:
            raise ReportError(f"{origin}:layers[{i}].group: {row['group']!r} has no entry in groups")
        cands, hist = row["candidates"], row["history"]
        if hist is not None:
            if cands is None:
                raise ReportError(f"{origin}:layers[{i}].history: present without candidates")
            for j, h in enumerate(hist):
                if len(h) != len(cands):
                    raise ReportError(f"{origin}:layers[{i}].history[{j}]: expected "
                                      f"{len(cands)} values (one per candidate), got {len(h)}")
    for i, h in enumerate(doc["histograms"]):
        n = len(h["edges"]) - 1
        if n < 1 or len(h["before"]) != n or len(h["after"]) != n:
            raise ReportError(f"{origin}:histograms[{i}]: expected len(before) == len(after) "
                              f"== len(edges) - 1 >= 1")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= 40 else text[:37] + "..."


# ------------------------------------------------------------------------- formatting


def format_energy(energy_pj: float | None) -> str:
    """'12.3 µJ' for an energy in pJ (pJ, nJ, µJ, mJ, J); 'n/a' for None."""
    if energy_pj is None:
        return "n/a"
    for unit, scale in (("J", 1e12), ("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if abs(energy_pj) >= scale:
            return f"{energy_pj / scale:.3g} {unit}"
    return f"{energy_pj:.3g} pJ"


def format_bits(bits: float | None) -> str:
    """'36.9 kB' for a storage size given in bits (decimal units: B, kB, MB, GB)."""
    return "n/a" if bits is None else format_bytes(bits / 8)


def format_bytes(size: float) -> str:
    """'36.9 kB' for a size in bytes (decimal units, so log-scale ticks are round)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(size) >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:.3g} B"


def format_seconds(seconds: float | None) -> str:
    """'42.1 s', '12 min 5 s' or '1 h 30 min'."""
    if seconds is None:
        return "n/a"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_count(n: float) -> str:
    """'1.23M' for a count."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:g}"


def format_ratio(ratio: float | None) -> str:
    """'0.036× (27.8× less)' for plan / fp32."""
    if ratio is None:
        return "n/a"
    if ratio == 0:
        return "0×"
    if ratio < 1:
        return f"{ratio:.3g}× ({1 / ratio:.3g}× less)"
    return f"{ratio:.3g}×"


def format_pct(frac: float | None, digits: int = 1) -> str:
    """'12.3 %' for a fraction."""
    return "n/a" if frac is None else f"{100 * frac:.{digits}f} %"


def format_accuracy(acc: float | None) -> str:
    return "n/a" if acc is None else f"{100 * acc:.2f} %"


def model_title(report: Mapping[str, Any]) -> str:
    """The model's file name without directories."""
    path = str(report["model"]["path"])
    return re.split(r"[\\/]", path)[-1] or path


# ------------------------------------------------------------------------- markdown

_EIGHTHS = " ▏▎▍▌▋▊▉█"
_SPARK = "▁▂▃▄▅▆▇█"
_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|~&$])")
_UNDERSCORES = re.compile(r"_+")


def _md_text(text: Any) -> str:
    """Inline markdown text: control characters replaced, markup characters escaped.

    `_` is escaped only next to a non-alphanumeric character: inside a word it cannot
    start or end emphasis, and `block.0.mlp.fc1_linear` stays readable in a terminal.
    """
    s = "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in str(text))
    s = _MD_SPECIAL.sub(r"\\\1", s)

    def underscores(m: re.Match[str]) -> str:
        before = s[m.start() - 1] if m.start() > 0 else " "
        after = s[m.end()] if m.end() < len(s) else " "
        inside = before.isalnum() and after.isalnum()
        return m.group(0) if inside else "\\_" * len(m.group(0))

    return _UNDERSCORES.sub(underscores, s)


def _plain(text: Any, width: int | None = None) -> str:
    """Text for a code block: printable characters only, cut to `width`."""
    s = "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in str(text))
    s = s.replace("`", "'")
    if width is not None and len(s) > width:
        s = s[: width - 1] + "…"
    return s


def text_bar(frac: float, width: int) -> str:
    """A unicode bar of `frac` (0..1) of `width` cells, in eighths of a cell."""
    frac = min(max(frac, 0.0), 1.0)
    eighths = round(frac * width * 8)
    full, rest = divmod(eighths, 8)
    bar = "█" * full + (_EIGHTHS[rest] if rest else "")
    return bar.ljust(width)


def sparkline(values: Sequence[float], lo: float = 0.0, hi: float = 1.0) -> str:
    """▁▂▃… for values in [lo, hi]."""
    span = (hi - lo) or 1.0
    out = []
    for v in values:
        k = round((min(max(v, lo), hi) - lo) / span * (len(_SPARK) - 1))
        out.append(_SPARK[k])
    return "".join(out)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    widths = [max(w, 3) for w in widths]

    def line(cells: Sequence[str]) -> str:
        out = [c.rjust(widths[i]) if i in right else c.ljust(widths[i])
               for i, c in enumerate(cells)]
        return "| " + " | ".join(out) + " |"

    sep = ["-" * (w - 1) + ":" if i in right else "-" * w for i, w in enumerate(widths)]
    return [line(header), "| " + " | ".join(sep) + " |", *[line(r) for r in rows]]


def _verify_lines(report: Mapping[str, Any]) -> list[str]:
    v = report["verify"]
    if v is None:
        return ["Not run."]
    parts = [f"{_md_text(k)} {n}/{v['samples']}" for k, n in sorted(v["agreement"].items())]
    return [f"Compared with the {_md_text(v['reference'])} on {v['samples']} samples "
            f"({_md_text(v['criterion'])}): " + ", ".join(parts) + "."]


def summary_lines(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs of the summary, shared by markdown and HTML."""
    t, b, r = report["total"], report["baseline_fp32"], report["ratios"]
    acc = report["accuracy"]
    out = []
    if acc is not None:
        out.append(("accuracy",
                    f"{format_accuracy(acc['float'])} float → {format_accuracy(acc['fake_quant'])} "
                    f"fake-quant → {format_accuracy(acc['integer'])} deployed integer "
                    f"({acc['split']}, {acc['samples']} samples)"))
    else:
        out.append(("accuracy", "not measured"))
    out.append(("energy, paper model",
                f"{format_energy(t['energy_total_pj'])} per inference vs "
                f"{format_energy(b['energy_total_pj'])} fp32 = "
                f"{format_ratio(r['energy_total_pj'])}"))
    if report["spike_aware_available"]:
        out.append(("energy, spike-aware estimate",
                    f"{format_energy(t['spike_energy_total_pj'])} vs "
                    f"{format_energy(b['spike_energy_total_pj'])} fp32 = "
                    f"{format_ratio(r['spike_energy_total_pj'])}, from measured firing rates"))
    else:
        out.append(("energy, spike-aware estimate", "unavailable (no firing rates measured)"))
    full = report.get("full")
    if full is not None:
        out.append(("energy, full accounting",
                    f"{format_energy(full['energy_total_pj'])} vs "
                    f"{format_energy(full['fp32_energy_total_pj'])} fp32 = "
                    f"{format_ratio(full['ratios']['energy_total_pj'])} (weight layers + attention "
                    f"MatMuls, LIF updates, residual adds; {full['accumulator']} accumulators)"))
    out.append(("weight storage",
                f"{format_bits(t['storage_bits'])} vs {format_bits(b['storage_bits'])} fp32 = "
                f"{format_ratio(r['storage_bits'])}"))
    if full is not None and full["storage"] is not None:
        st = full["storage"]
        out.append(("storage as deployed",
                    f"{format_bytes(st['total_bytes'])} of C constants (weights "
                    f"{format_bytes(st['bytes_by_category']['weights'])}; weights only at their "
                    f"code width {format_bytes(st['weights_only_bytes'])})"))
    avg = t["average_bits"]
    out.append(("average weight bits",
                "n/a" if avg is None else f"{avg:.3g} (params-weighted; fp32 = 32)"))
    s = report["search"]
    if s["source"] == "search":
        lam = "n/a" if s["lambda"] is None else f"{s['lambda']:g}"
        secs = "" if s["seconds"] is None else f", {format_seconds(s['seconds'])}"
        seed = "" if s["seed"] is None else f", seed {s['seed']}"
        out.append(("plan", f"searched: λ {lam}, {s['epochs']} search epochs + "
                            f"{s['finetune_epochs']} fine-tune epochs{seed}{secs}"))
    else:
        src = f" ({s['plan_file']})" if s["plan_file"] else ""
        secs = "" if s["seconds"] is None else f", {format_seconds(s['seconds'])}"
        out.append(("plan", f"given by the user{src}; {s['finetune_epochs']} fine-tune "
                            f"epochs{secs}"))
    tg = report["target"]
    out.append(("target", f"{tg['name']} ({tg['technology']})"))
    return out


def full_rows(full: Mapping[str, Any]) -> list[list[str]]:
    """Rows (part, sites, count, energy, fp32 energy) of the full accounting, shared by
    markdown and HTML; the last row is the total."""
    rows = [["weight layers (paper model)" if full["accumulator"] == "paper"
             else "weight layers (proven accumulators)", "", "",
             format_energy(full["weights_energy_pj"]), format_energy(full["fp32_weights_energy_pj"])]]
    for kind, k in full["by_kind"].items():
        rows.append([kind.replace("_", " "), str(k["sites"]), format_count(k["count"]),
                     format_energy(k["energy_pj"]), format_energy(k["fp32_energy_pj"])])
    rows.append(["total", "", "", format_energy(full["energy_total_pj"]),
                 format_energy(full["fp32_energy_total_pj"])])
    return rows


def storage_text(full: Mapping[str, Any]) -> str:
    """One line on the deployed storage (or why it is unavailable)."""
    st = full["storage"]
    if st is None:
        return f"unavailable ({full['storage_unavailable']})"
    parts = ", ".join(f"{c.replace('_', ' ')} {format_bytes(n)}"
                      for c, n in st["bytes_by_category"].items() if n)
    return (f"{format_bytes(st['total_bytes'])} in {st['arrays']} C constant arrays ({parts}); "
            f"the weights alone at their code width: {format_bytes(st['weights_only_bytes'])}")


def _full_lines(report: Mapping[str, Any]) -> list[str]:
    full = report.get("full")
    if full is None:
        return []
    L = ["## Full accounting", "",
         "Beside the paper model (the headline), the operations it leaves out, priced from "
         "the same table, per inference of one sample; the fp32 baseline prices the same "
         "operations in fp32. Accumulators: "
         + ("the paper's 32 bits." if full["accumulator"] == "paper"
            else "the lowering's proven bounds."), ""]
    rows = full_rows(full)
    rows[-1] = [f"**{rows[-1][0]}**", *rows[-1][1:]]
    L += _md_table(["part", "sites", "count", "energy plan", "energy fp32"], rows, {1, 2, 3, 4})
    L.append("")
    L.append(f"Ratio plan / fp32: {format_ratio(full['ratios']['energy_total_pj'])}"
             + ("" if full["spike_energy_total_pj"] is None else
                f"; spike-aware (weight layers spike-aware, other operations dense): "
                f"{format_energy(full['spike_energy_total_pj'])} vs "
                f"{format_energy(full['fp32_spike_energy_total_pj'])} fp32 = "
                f"{format_ratio(full['ratios']['spike_energy_total_pj'])}") + ".")
    if full["firing_rates_source"]:
        L.append(f"Firing rates measured on the {_md_text(full['firing_rates_source'])}.")
    L += ["", f"Storage as deployed: {_md_text(storage_text(full))}.", ""]
    return L


def render_markdown(report: Mapping[str, Any]) -> str:
    """report.md: summary, plan and group tables, text charts, target and sources."""
    L: list[str] = []
    rows = report["layers"]
    spike = report["spike_aware_available"]
    m = report["model"]
    L.append(f"# hqc report: {_md_text(model_title(report))}")
    L.append("")
    meta = (f"Model `{_plain(m['path'])}` ({m['onnx_nodes']} ONNX nodes → {m['ir_nodes']} IR "
            f"nodes, input {'×'.join(map(str, m['input_shape']))}"
            + (f", T = {m['time_steps']}" if m["time_steps"] is not None else "") + "). "
            f"Schema {report['schema']}, {_md_text(report['generator'])}"
            + (f", {_md_text(report['created'])}" if report["created"] else "") + ".")
    L += [meta, ""]

    L += ["## Summary", ""]
    for k, v in summary_lines(report):
        L.append(f"- **{k}**: {_md_text(v)}")
    L += ["", "Two energy figures, per inference of one sample: the **paper model** (the "
          "search's hardware loss and the main figure) and the **spike-aware estimate** "
          "(binary-spike inputs cost an add only where a spike is present, from measured "
          "firing rates). See *How to read* below.", ""]

    # ---- plan table
    L += ["## Plan", ""]
    header = ["layer", "group", "quantizer", "p", "energy (paper)", "% of total",
              "spike-aware", "storage", "fp32 energy", "firing rate"]
    body = []
    for r in rows:
        body.append([
            _md_text(r["name"]), r["group"], r["choice"],
            "—" if r["probability"] is None else f"{r['probability']:.3f}",
            format_energy(r["energy_total_pj"]), format_pct(r["energy_share"]),
            format_energy(r["spike_energy_total_pj"]), format_bits(r["storage_bits"]),
            format_energy(r["fp32"]["energy_total_pj"]),
            "—" if r["firing_rate"] is None else f"{r['firing_rate']:.3f}",
        ])
    t, b, ratios = report["total"], report["baseline_fp32"], report["ratios"]
    body.append(["**total**", "", "", "", format_energy(t["energy_total_pj"]), "100.0 %",
                 format_energy(t["spike_energy_total_pj"]), format_bits(t["storage_bits"]),
                 format_energy(b["energy_total_pj"]), ""])
    L += _md_table(header, body, {3, 4, 5, 6, 7, 8, 9})
    L += ["", "p: the selection probability softmax(α) of the chosen quantizer at the end of "
          "the search (— for a user plan). Firing rate: fraction of the layer's input "
          "positions holding a spike.", ""]

    # ---- groups
    L += ["## Groups", ""]
    header = ["group", "layers", "params", "MACs", "energy fp32", "energy plan", "ratio",
              "spike-aware plan", "storage fp32", "storage plan", "avg bits"]
    body = []
    for g in report["groups"]:
        body.append([
            g["group"], str(g["layers"]), format_count(g["params"]), format_count(g["macs"]),
            format_energy(g["fp32"]["energy_total_pj"]), format_energy(g["energy_total_pj"]),
            format_ratio(g["ratios"]["energy_total_pj"]),
            format_energy(g["spike_energy_total_pj"]),
            format_bits(g["fp32"]["storage_bits"]), format_bits(g["storage_bits"]),
            "n/a" if g["average_bits"] is None else f"{g['average_bits']:.3g}",
        ])
    body.append(["**total**", str(t["layers"]), format_count(t["params"]),
                 format_count(t["macs"]), format_energy(b["energy_total_pj"]),
                 format_energy(t["energy_total_pj"]), format_ratio(ratios["energy_total_pj"]),
                 format_energy(t["spike_energy_total_pj"]), format_bits(b["storage_bits"]),
                 format_bits(t["storage_bits"]),
                 "n/a" if t["average_bits"] is None else f"{t['average_bits']:.3g}"])
    L += _md_table(header, body, set(range(1, 11)))
    L.append("")
    L += _full_lines(report)

    # ---- where the energy goes
    L += ["## Where the energy goes", ""]
    L += ["Share of the plan's energy per inference, paper model"
          + (" (spike-aware estimate in the second column)" if spike else "") + ":", ""]
    width = 30
    name_w = min(max(len(_plain(r["name"])) for r in rows), 32)
    L.append("```text")
    for g in report["groups"]:
        line = (f"{_plain(g['group']).ljust(name_w)}  {text_bar(g['energy_share'] or 0, width)} "
                f"{format_pct(g['energy_share']).rjust(7)}")
        if spike:
            line += f"   {text_bar(g['spike_energy_share'] or 0, 15)} {format_pct(g['spike_energy_share']).rjust(7)}"
        L.append(line.rstrip())
    L.append("")
    for r in rows:
        line = (f"{_plain(r['name'], 32).ljust(name_w)}  {text_bar(r['energy_share'] or 0, width)} "
                f"{format_pct(r['energy_share']).rjust(7)}")
        if spike:
            line += f"   {text_bar(r['spike_energy_share'] or 0, 15)} {format_pct(r['spike_energy_share']).rjust(7)}"
        L.append(line.rstrip())
    L.append("```")
    L.append("")
    L += ["fp32 vs plan per group, paper model (bars relative to the largest fp32 group; "
          "░ fp32, █ plan):", ""]
    L.append("```text")
    gmax = max(g["fp32"]["energy_total_pj"] for g in report["groups"]) or 1.0
    for g in report["groups"]:
        f32 = g["fp32"]["energy_total_pj"]
        L.append(f"{_plain(g['group']).ljust(10)} fp32 {text_bar(f32 / gmax, 40).replace('█', '░')} "
                 f"{format_energy(f32)}")
        L.append(f"{''.ljust(10)} plan {text_bar(g['energy_total_pj'] / gmax, 40)} "
                 f"{format_energy(g['energy_total_pj'])}")
    L.append("```")
    L.append("")

    # ---- search evolution
    L += ["## Search evolution", ""]
    if any(r["history"] for r in rows):
        L += ["Selection probability of the finally chosen quantizer over the search epochs "
              "(▁ = 0, █ = 1), its first and last value, and the candidate that led after "
              "the first epoch:", ""]
        L.append("```text")
        for r in rows:
            h = r["history"]
            if not h:
                L.append(f"{_plain(r['name'], 32).ljust(name_w)}  {r['choice']:<5}  (no history)")
                continue
            k = r["candidates"].index(r["choice"])
            series = [row[k] for row in h]
            first = r["candidates"][max(range(len(h[0])), key=lambda i: h[0][i])]
            L.append(f"{_plain(r['name'], 32).ljust(name_w)}  {r['choice']:<5}  "
                     f"{sparkline(series)}  {series[0]:.2f} → {series[-1]:.2f}"
                     f"  (epoch 1: {first})")
        L.append("```")
    else:
        L.append("No search history: the plan was given by the user.")
    L.append("")

    # ---- histograms
    L += ["## Weight histograms", ""]
    if report["histograms"]:
        L += ["Counts per bin (same bins before and after quantization; height ∝ "
              "log(1 + count)):", ""]
        L.append("```text")
        for h in report["histograms"]:
            top = math.log1p(max(max(h["before"]), max(h["after"]), 1))
            b_line = sparkline([math.log1p(c) for c in h["before"]], 0.0, top)
            a_line = sparkline([math.log1p(c) for c in h["after"]], 0.0, top)
            L.append(f"{_plain(h['layer'], 40)} ({h['role']}), {h['choice']}, weights in "
                     f"[{h['edges'][0]:.3g}, {h['edges'][-1]:.3g}]")
            label = "imported fp32" if h.get("before_weights") == "imported" else "latent fp32"
            L.append(f"  {label:<15} {b_line}")
            L.append(f"  after {h['choice']:<9} {a_line}  "
                     f"{h['stats_after']['distinct_values']} distinct values, relative RMSE "
                     + ("n/a" if h["relative_rmse"] is None else f"{h['relative_rmse']:.3f}"))
        L.append("```")
    else:
        L.append("No weights were given to the report.")
    L.append("")

    # ---- verify, target, files
    L += ["## Verification", ""]
    L += _verify_lines(report)
    L.append("")
    tg = report["target"]
    L += ["## Target and sources", ""]
    L.append(f"**{_md_text(tg['name'])}**: {_md_text(tg['technology'])}. "
             f"{_md_text(tg['description'])}".rstrip())
    L.append("")
    L.append(f"Accumulator: int{tg['accumulator_bits']} add. Memory: "
             + "; ".join(f"{mm['level']} {mm['energy_pj']:g} pJ per {mm['bits']}-bit access "
                         f"({mm['energy_pj_per_bit']:g} pJ/bit) [{_md_text(mm['source'])}]"
                         for mm in tg["memory"]) + ".")
    L.append("")
    body = [[e["key"], f"{e['energy_pj']:g}", _md_text(e["source"])] for e in tg["table"]]
    L += _md_table(["operation", "pJ", "source"], body, {1})
    L.append("")
    if tg["derived"]:
        L.append("Derived (not listed in the table) and used: "
                 + ", ".join(_md_text(d) for d in tg["derived"]) + ".")
        L.append("")
    for key, cite in sorted(tg["sources"].items()):
        L.append(f"- **{_md_text(key)}**: {_md_text(cite)}")
    L.append("")
    L += ["## How to read", ""]
    L.append(f"- **Paper model**: {_md_text(report['estimates']['paper'])}.")
    L.append(f"- **Spike-aware estimate**: {_md_text(report['estimates']['spike_aware'])}.")
    L.append("- Energies are per inference of one sample, all T time steps included; "
             "storage counts weights only (biases excluded).")
    L.append("")
    L += ["## Files", ""]
    for role, name in sorted(report["outputs"].items()):
        L.append(f"- {_md_text(role)}: `{_plain(name)}`")
    L.append("")
    return "\n".join(L)


__all__ = [
    "DEFAULT_OUTPUTS",
    "ESTIMATES",
    "HISTOGRAM_BINS",
    "REPORT_FILES",
    "REPORT_SCHEMA",
    "SCHEMA_SPEC",
    "AccuracyInfo",
    "ModelInfo",
    "ReportError",
    "SearchInfo",
    "VerifyInfo",
    "build_report",
    "format_bits",
    "format_bytes",
    "format_energy",
    "format_ratio",
    "format_seconds",
    "load_report",
    "render",
    "render_json",
    "render_markdown",
    "report_path",
    "summary_lines",
    "write_report",
]
