"""The compile report: one JSON document (schema `hqc.report/1`) and its renderings.

    (model info, layers, plan, target, firing rates, accuracies, search, verify, weights)
        --build_report--> report dict --write_report--> report.json, report.md, report.html
    report.json --load_report (validated)--> report dict --render_*--> the same bytes again

The package: build (the document from a compile's results), schema (its keys, reading and
validating a report.json), markdown, html and svg (the renderings); quantities are written
by hqc.fmt.

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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hqc.fmt import (
    format_accuracy,
    format_bits,
    format_bytes,
    format_count,
    format_energy,
    format_pct,
    format_ratio,
    format_seconds,
)
from hqc.outdir import write_text_atomic
from hqc.report.build import (
    DEFAULT_OUTPUTS,
    ESTIMATES,
    HISTOGRAM_BINS,
    AccuracyInfo,
    ModelInfo,
    SearchInfo,
    VerifyInfo,
    build_report,
)
from hqc.report.markdown import (
    full_rows,
    model_title,
    render_markdown,
    sparkline,
    storage_text,
    summary_lines,
    text_bar,
)
from hqc.report.schema import (
    REPORT_FILES,
    REPORT_SCHEMA,
    SCHEMA_SPEC,
    ReportError,
    load_report,
    render_json,
    report_path,
    validate_report,
)


def render(report: Mapping[str, Any], fmt: str) -> str:
    """The text of one report file: fmt is json, md or html."""
    if fmt == "json":
        return render_json(report)
    if fmt == "md":
        return render_markdown(report)
    if fmt == "html":
        from hqc.report.html import render_html

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
    validate_report(canonical, REPORT_FILES["json"])
    written = {}
    for fmt, name in REPORT_FILES.items():
        body = text if fmt == "json" else render(canonical, fmt)
        written[fmt] = write_text_atomic(d / name, body)
    return written


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
    "format_accuracy",
    "format_bits",
    "format_bytes",
    "format_count",
    "format_energy",
    "format_pct",
    "format_ratio",
    "format_seconds",
    "full_rows",
    "load_report",
    "model_title",
    "render",
    "render_json",
    "render_markdown",
    "report_path",
    "sparkline",
    "storage_text",
    "summary_lines",
    "text_bar",
    "validate_report",
    "write_report",
]
