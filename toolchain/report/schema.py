"""The report document's schema (hqc.report/1): its files, reading and validating
a report.json, and its canonical JSON text.

    report.json --load_report (validated)--> report dict --render_json--> the same text

The schema is documented field by field in docs/report.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hqc.errors import HqcError

REPORT_SCHEMA = "hqc.report/1"

#: The files `write_report` writes, by `hqc report --format` name.
REPORT_FILES: dict[str, str] = {"json": "report.json", "md": "report.md", "html": "report.html"}


class ReportError(HqcError):
    """A report file is missing, not JSON, or does not follow schema hqc.report/1."""


def render_json(report: Mapping[str, Any]) -> str:
    """Canonical JSON text: sorted keys, indent 2, UTF-8 characters kept, final newline."""
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def report_path(location: str | Path) -> Path:
    """DIR -> DIR/report.json; a file path is returned as is."""
    p = Path(location)
    return p / REPORT_FILES["json"] if p.is_dir() else p


def load_report(path: str | Path) -> dict[str, Any]:
    """Read and validate a report.json (a directory means DIR/report.json).

    Errors are `ReportError("<file>: ...")` or `ReportError("<file>:<key.path>: ...")`.
    """
    from hqc.yamlio import read_text

    p = report_path(path)
    text = read_text(p, ReportError, "report", " (run hqc compile first)")
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise ReportError(f"{p}: not valid JSON at line {e.lineno} column {e.colno} "
                          f"({e.msg})") from None
    except ValueError as e:
        raise ReportError(f"{p}: {e}") from None
    validate_report(doc, str(p))
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
# the C model's memory (lowering.json `memory`, docs/lowering.md); more keys may be present
MEMORY_SPEC: dict[str, Any] = {"arena_bytes": "int", "peak_live_bytes": "int", "constant_bytes": "int",
                               "stack_bytes_estimate": "int", "static_ram_bytes": "int?", "flash_bytes": "int?"}
OPTIONAL_SPEC: dict[str, Any] = {"full": (FULL_SPEC, "?"), "firing_rates_source": "str?",
                                 "memory": (MEMORY_SPEC, "?")}

_TYPE_NAMES = {"str": "a string", "int": "an integer", "num": "a number", "bool": "true or false",
               "list": "a list", "map": "an object", "dict": "an object"}


def validate_report(doc: Any, origin: str) -> None:
    """A report document against SCHEMA_SPEC and the consistency the renderers rely on;
    ReportError("<origin>:<key.path>: ...") on the first mismatch."""
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
