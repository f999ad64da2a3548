"""The JSON documents `--json` prints, one builder per command (schemas in docs/cli.md).

    compile  → hqc.compile/1    search → hqc.search/1     lower   → hqc.lowering/1 (lowering.json)
    verify   → hqc.verify/1     cost   → hqc.cost/1       inspect → hqc.inspect/1 (hqc.inspection)
    targets list → hqc.targets/1                          targets show → hqc.target/1

Every document is a JSON object whose first key `schema` names it; a key is only ever
added within a schema version, never renamed or removed. The human output of each
command prints figures of the same document, so the two always agree. Nothing here
imports torch: `hqc targets list --json` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

COMPILE_SCHEMA = "hqc.compile/1"
SEARCH_SCHEMA = "hqc.search/1"
VERIFY_SCHEMA = "hqc.verify/1"
COST_SCHEMA = "hqc.cost/1"
TARGETS_SCHEMA = "hqc.targets/1"
TARGET_SCHEMA = "hqc.target/1"


def choice_counts(choices: Iterable[str]) -> dict[str, int]:
    """How many layers got each quantizer, by name, sorted by name."""
    counts: dict[str, int] = {}
    for c in choices:
        counts[c] = counts.get(c, 0) + 1
    return dict(sorted(counts.items()))


def search_document(result: Any) -> dict[str, Any]:
    """`hqc search --json`: where the plan went, its accuracy and energy, the choices."""
    doc = result.document
    layers = {name: entry["choice"] for name, entry in doc["layers"].items()}
    return {
        "schema": SEARCH_SCHEMA,
        "out": str(result.out_dir),
        "plan": str(result.plan_path),
        "qat_model": str(result.qat_model_path),
        "target": doc["target"],
        "accuracy": {
            "split": doc["accuracy"]["split"],
            "float": doc["accuracy"]["float"],
            "fake_quant": doc["accuracy"]["fake_quant"],
        },
        "energy_ratio": result.energy_ratio,
        "choices": choice_counts(layers.values()),
        "layers": layers,
    }


def verify_document(result: Any) -> dict[str, Any]:
    """`hqc verify --json` and verify.json: agreement per backend and the accuracies."""
    return {"schema": VERIFY_SCHEMA, **result.to_dict()}


def cost_document(model: str, plan: str, result: Any) -> dict[str, Any]:
    """`hqc cost --json`: the model cost (energies in pJ, storage in bits) under a plan."""
    return {"schema": COST_SCHEMA, "model": model, "plan": plan, **result.to_dict()}


def targets_document(infos: Iterable[Any]) -> dict[str, Any]:
    """`hqc targets list --json`: the tables found by name."""
    return {
        "schema": TARGETS_SCHEMA,
        "targets": [
            {"name": i.name, "origin": i.origin, "location": i.location, "shadowed": i.shadowed}
            for i in infos
        ],
    }


def target_document(target: Any, table: Mapping[str, Any], mac_energy_pj: Mapping[str, float]) -> dict[str, Any]:
    """`hqc targets show --json`: the validated table (as `--yaml` prints it) and the
    energy per MAC of every default choice."""
    return {
        "schema": TARGET_SCHEMA,
        "name": target.name,
        "origin": target.origin,
        "table": dict(table),
        "mac_energy_pj": dict(mac_energy_pj),
    }


def compile_document(result: Any) -> dict[str, Any]:
    """`hqc compile --json`: the run's headline figures; report.json has the details."""
    s = result.summary
    rep = s.get("report")
    acc = (rep.get("accuracy") if rep else None) or {}
    doc: dict[str, Any] = {
        "schema": COMPILE_SCHEMA,
        "model": s["model"],
        "target": s["target"],
        "out": str(result.out_dir),
        "stopped_after": result.stopped_after,
        "seconds": s.get("seconds"),
        "search_seconds": s.get("search_seconds"),
        "accuracy": {
            "split": acc.get("split"),
            "samples": acc.get("samples"),
            "float": s.get("float_accuracy"),
            "fake_quant": s.get("fake_quant_accuracy"),
            "integer": s.get("integer_accuracy"),
        },
        "energy": None,
        "storage": None,
        "choices": None,
        "verify": None,
        "outputs": None,
    }
    if rep is not None:
        r, tot, base = rep["ratios"], rep["total"], rep["baseline_fp32"]
        doc["energy"] = {
            "total_pj": tot["energy_total_pj"],
            "fp32_total_pj": base["energy_total_pj"],
            "ratio": r["energy_total_pj"],
            "spike_aware_total_pj": tot.get("spike_energy_total_pj"),
            "spike_aware_ratio": r.get("spike_energy_total_pj"),
        }
        doc["storage"] = {
            "bits": tot["storage_bits"],
            "fp32_bits": base["storage_bits"],
            "ratio": r["storage_bits"],
            "average_bits": tot.get("average_bits"),
        }
        doc["choices"] = choice_counts(layer["choice"] for layer in rep["layers"])
        doc["outputs"] = dict(rep.get("outputs") or {})
    v = s.get("verify")
    if v:
        doc["verify"] = {"samples": v["samples"], "agree": dict(v["agree"]), "identical": v["identical"]}
    return doc
