"""Assembling the report document (hqc.report/1) from what a compile produced.

    (model info, layers, plan, target, firing rates, accuracies, search, verify, weights)
        --build_report--> report dict

Every energy and storage number is the cost model's (`hqc.targets.model_cost`), copied,
never recomputed; the report only adds shares (layer / total) and the params-weighted
average weight width. The document holds no timestamp unless one is passed in, so the
same inputs give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from hqc import __version__
from hqc.choices import parse_choice
from hqc.errors import PlanError
from hqc.layers import LayerInfo
from hqc.plan import resolve_plan
from hqc.quant import fake_quant_numpy
from hqc.report.schema import REPORT_FILES, REPORT_SCHEMA, ReportError, render_json
from hqc.targets import ModelCost, Target, model_cost

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
    scales: Mapping[str, tuple[str, np.ndarray]] | None = None,
    memory: Mapping[str, Any] | None = None,
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
        "histograms": _histograms(layers, choices, weights, imported_weights, scales),
        "full": full,
        "firing_rates_source": firing_rates_source if cost.spike_aware_available else None,
    }
    if memory is not None:  # the C model's RAM and flash (lowering.json `memory`)
        doc["memory"] = dict(memory)
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
    choices = resolve_plan(raw, layers)
    out: dict[str, dict[str, Any]] = {}
    for name, qc in choices.items():
        e = raw[name] if isinstance(raw[name], Mapping) else {}
        key = f"plan:layers.{name}"
        choice = qc.name
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
                imported: Mapping[str, np.ndarray] | None = None,
                scales: Mapping[str, tuple[str, np.ndarray]] | None = None) -> list[dict[str, Any]]:
    """Per picked layer: the imported weights (else the latent ones) before, Q(latent)
    after — with the fine-tune's learned scales where it learned them for the layer's
    choice (`scales`: {layer: (choice, per-channel scales)}, what the lowering uses), else
    the MSE-grid scales; the RMSE is the quantization error Q(latent) − latent."""
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
        learned = (scales or {}).get(layer.name)
        q = fake_quant_numpy(w, choice, learned[1] if learned is not None and learned[0] == choice.name else None)
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
