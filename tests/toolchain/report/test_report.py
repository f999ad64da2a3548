"""The compile report: numbers are the cost model's, sums and ratios hold, the renderings
are self-contained, escaped and byte-stable, and `hqc report` re-renders them exactly."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from click.testing import CliRunner

from hqc.cli import main
from hqc.errors import PlanError
from hqc.layers import LayerInfo
from hqc.report import (
    HISTOGRAM_BINS,
    REPORT_FILES,
    REPORT_SCHEMA,
    AccuracyInfo,
    ModelInfo,
    ReportError,
    SearchInfo,
    VerifyInfo,
    build_report,
    load_report,
    render_json,
    write_report,
)
from hqc.targets import layer_cost, load_target

CMOS45 = load_target("cmos45")
T = 2
HOSTILE = "<script>alert(1)</script>"


def _linear(name: str, group: str, d_in: int, d_out: int, tokens: int = 4,
            input_kind: str = "spikes") -> LayerInfo:
    return LayerInfo(name=name, kind="linear", group=group, weight_shape=(d_out, d_in),
                     params=d_in * d_out, macs=T * tokens * d_in * d_out, input_kind=input_kind)


def make_layers(v_name: str = "blocks.0.attn.v") -> list[LayerInfo]:
    """A tokenizer conv, q/k/v/proj, fc1/fc2 and a head (T = 2, 4 tokens, dim 8)."""
    conv = LayerInfo(name="patch_embed.proj_conv", kind="conv2d", group="tokenizer",
                     weight_shape=(8, 2, 3, 3), params=144, macs=T * 4 * 4 * 2 * 8 * 9,
                     input_kind="real")
    return [
        conv,
        _linear("blocks.0.attn.q", "attention", 8, 8),
        _linear("blocks.0.attn.k", "attention", 8, 8),
        _linear(v_name, "attention", 8, 8),
        _linear("blocks.0.attn.proj", "attention", 8, 8),
        _linear("blocks.0.mlp.fc1", "mlp", 8, 16),
        _linear("blocks.0.mlp.fc2", "mlp", 16, 8, input_kind="integers"),
        _linear("head", "head", 8, 3, tokens=1, input_kind="real"),
    ]


CHOICES = ["uni4", "pot4", "pot2", "uni2", "uni4", "pot2", "uni2", "fp32"]
CANDS = ["fp32", "uni4", "uni2", "pot4", "pot2"]


def make_plan(layers: list[LayerInfo], epochs: int = 3) -> dict:
    out = {}
    for i, (layer, choice) in enumerate(zip(layers, CHOICES, strict=True)):
        k = CANDS.index(choice)
        hist = []
        for e in range(epochs):
            p = [1.0 + 0.1 * ((i + j) % 3) for j in range(5)]
            p[k] += e + 1
            hist.append([round(x / sum(p), 6) for x in p])
        out[layer.name] = {"choice": choice, "probability": hist[-1][k], "candidates": CANDS,
                           "history": hist}
    return {"lambda": 0.3, "seed": 7, "epochs": epochs, "finetune_epochs": 2,
            "search": {"seconds": 12.5}, "layers": out}


def make_rates(layers: list[LayerInfo]) -> dict[str, float]:
    return {layer.name: 0.05 + 0.03 * i for i, layer in enumerate(layers)
            if layer.input_kind == "spikes"}


def make_weights(layers: list[LayerInfo]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {layer.name: rng.normal(0, 0.1, layer.weight_shape).astype(np.float32)
            for layer in layers}


def make_report(layers: list[LayerInfo] | None = None, *, with_rates: bool = True,
                with_weights: bool = True, **kw) -> dict:
    layers = layers or make_layers()
    args = dict(
        model=ModelInfo(path="models/tiny.onnx", onnx_nodes=120, ir_nodes=30,
                        input_shape=(2, 1, 2, 4, 4), time_steps=T, input_layout="TBCHW"),
        layers=layers,
        plan=make_plan(layers),
        target=CMOS45,
        firing_rates=make_rates(layers) if with_rates else None,
        accuracy=AccuracyInfo(split="val", samples=64, float_model=0.9, fake_quant=0.875,
                              integer=0.875),
        verify=VerifyInfo(reference="numpy integer reference", samples=64,
                          agreement={"onnxruntime": 64, "c": 63}),
        weights=make_weights(layers) if with_weights else None,
    )
    args.update(kw)
    return build_report(**args)


@pytest.fixture(scope="module")
def report() -> dict:
    return make_report()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, report: dict):
    d = tmp_path_factory.mktemp("report")
    write_report(d, report)
    return d


# ---------------------------------------------------------------------------- numbers


def test_json_parses_and_declares_schema(written):
    doc = json.loads((written / "report.json").read_text(encoding="utf-8"))
    assert doc["schema"] == REPORT_SCHEMA == "hqc.report/1"
    assert [r["name"] for r in doc["layers"]] == [x.name for x in make_layers()]
    assert [g["group"] for g in doc["groups"]] == ["tokenizer", "attention", "mlp", "head"]


def test_layer_numbers_are_the_cost_models(written):
    doc = json.loads((written / "report.json").read_text(encoding="utf-8"))
    rates = make_rates(make_layers())
    for layer, row in zip(make_layers(), doc["layers"], strict=True):
        c = layer_cost(layer, row["choice"], CMOS45, rates.get(layer.name))
        f = layer_cost(layer, "fp32", CMOS45, rates.get(layer.name))
        for key in ("energy_compute_pj", "energy_memory_pj", "energy_total_pj",
                    "spike_energy_compute_pj", "spike_energy_total_pj", "storage_bits"):
            assert row[key] == getattr(c, key), (layer.name, key)
            assert row["fp32"][key] == getattr(f, key), (layer.name, key)
        assert row["firing_rate"] == rates.get(layer.name)
        assert (row["params"], row["macs"], row["bits"]) == (layer.params, layer.macs, c.bits)
        assert row["weight_shape"] == list(layer.weight_shape)
    assert [r["choice"] for r in doc["layers"]] == CHOICES


@pytest.mark.parametrize("key", ["energy_total_pj", "energy_compute_pj", "energy_memory_pj",
                                 "spike_energy_total_pj", "spike_energy_compute_pj",
                                 "storage_bits"])
def test_layers_and_groups_sum_to_totals(written, key):
    doc = json.loads((written / "report.json").read_text(encoding="utf-8"))
    rows, groups = doc["layers"], doc["groups"]
    total, base = doc["total"][key], doc["baseline_fp32"][key]
    assert math.fsum(r[key] for r in rows) == pytest.approx(total, rel=1e-12)
    assert math.fsum(g[key] for g in groups) == pytest.approx(total, rel=1e-12)
    assert math.fsum(r["fp32"][key] for r in rows) == pytest.approx(base, rel=1e-12)
    for g in groups:
        members = [r for r in rows if r["group"] == g["group"]]
        assert math.fsum(r[key] for r in members) == pytest.approx(g[key], rel=1e-12)
        assert math.fsum(r["fp32"][key] for r in members) == pytest.approx(g["fp32"][key],
                                                                          rel=1e-12)
        assert g["ratios"][key] == pytest.approx(g[key] / g["fp32"][key], rel=1e-12)
    assert doc["ratios"][key] == pytest.approx(total / base, rel=1e-12)


def test_shares_sum_to_one(report):
    assert math.fsum(r["energy_share"] for r in report["layers"]) == pytest.approx(1.0)
    assert math.fsum(g["energy_share"] for g in report["groups"]) == pytest.approx(1.0)
    assert math.fsum(r["spike_energy_share"] for r in report["layers"]) == pytest.approx(1.0)
    for r in report["layers"]:
        assert r["energy_share"] == r["energy_total_pj"] / report["total"]["energy_total_pj"]


def test_average_bits_by_hand(report):
    # params x bits: conv 144x4, q 64x4, k 64x2, v 64x2, proj 64x4, fc1 128x2, fc2 128x2,
    # head 24x32 = 576 + 256 + 128 + 128 + 256 + 256 + 256 + 768 = 2624 bits over 680 params.
    assert report["total"]["params"] == 680
    assert report["total"]["storage_bits"] == 2624
    assert report["total"]["average_bits"] == pytest.approx(2624 / 680)
    assert report["baseline_fp32"]["average_bits"] == 32.0
    by_group = {g["group"]: g["average_bits"] for g in report["groups"]}
    assert by_group == pytest.approx({"tokenizer": 4.0, "attention": 768 / 256,
                                      "mlp": 2.0, "head": 32.0})


def test_plan_search_and_target_are_copied(report):
    plan = make_plan(make_layers())
    for r in report["layers"]:
        e = plan["layers"][r["name"]]
        assert r["probability"] == e["probability"]
        assert r["candidates"] == CANDS
        assert r["history"] == e["history"]
    assert report["search"] == {"source": "search", "lambda": 0.3, "epochs": 3,
                                "finetune_epochs": 2, "seed": 7, "seconds": 12.5,
                                "plan_file": None}
    tg = report["target"]
    assert (tg["name"], tg["technology"]) == ("cmos45", CMOS45.technology)
    assert set(tg["sources"]) == {"horowitz2014", "you2023shiftaddvit"}
    assert {e["source"] for e in tg["table"]} <= set(tg["sources"])
    assert "int.mult.2 (quadratic from 8 bits)" in tg["derived"]
    assert report["accuracy"] == {"split": "val", "samples": 64, "float": 0.9,
                                  "fake_quant": 0.875, "integer": 0.875}
    assert report["verify"]["agreement"] == {"onnxruntime": 64, "c": 63}
    assert report["created"] is None


def test_user_plan_has_no_history():
    layers = make_layers()
    plan = {"layers": {x.name: c for x, c in zip(layers, CHOICES, strict=True)}}
    doc = make_report(layers, plan=plan, search=SearchInfo.from_plan(plan, plan_file="p.yaml"))
    assert doc["search"]["source"] == "user" and doc["search"]["plan_file"] == "p.yaml"
    assert all(r["history"] is None and r["probability"] is None for r in doc["layers"])
    from hqc.report import render_markdown
    from hqc.report.html import render_html

    assert "the plan was given by the user" in render_markdown(doc)
    assert "the plan was given by the user" in render_html(doc)


def test_histograms_before_and_after(report):
    hs = report["histograms"]
    assert [(h["layer"], h["role"]) for h in hs] == [
        ("patch_embed.proj_conv", "first tokenizer conv"),
        ("blocks.0.attn.q", "first attention layer"),
        ("blocks.0.mlp.fc1", "first MLP layer"),
        ("head", "head layer"),
    ]
    params = {x.name: x.params for x in make_layers()}
    for h in hs:
        assert len(h["edges"]) == HISTOGRAM_BINS + 1
        assert sum(h["before"]) == sum(h["after"]) == params[h["layer"]]
        assert h["choice"] == CHOICES[[x.name for x in make_layers()].index(h["layer"])]
    head = hs[-1]  # fp32: unchanged
    assert head["before"] == head["after"] and head["rmse"] == 0.0
    q = hs[1]  # pot4: at most 2 * 8 magnitudes per channel, 8 channels
    assert q["stats_after"]["distinct_values"] <= 2 * 8 * 8 and q["rmse"] > 0


def test_spike_aware_unavailable_without_rates():
    doc = make_report(with_rates=False, with_weights=False)
    assert doc["spike_aware_available"] is False
    assert doc["total"]["spike_energy_total_pj"] is None
    assert doc["ratios"]["spike_energy_total_pj"] is None
    assert doc["histograms"] == []
    from hqc.report import render_markdown
    from hqc.report.html import render_html

    assert "unavailable (no firing rates measured)" in render_markdown(doc)
    html = render_html(doc)
    assert "unavailable: no firing rates were measured" in html
    assert "No weights were given to the report." in html


def test_byte_stable(tmp_path, report):
    again = make_report()
    assert render_json(again) == render_json(report)
    write_report(tmp_path / "a", report)
    write_report(tmp_path / "b", again)
    for name in REPORT_FILES.values():
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_load_report_round_trip(written, report):
    assert load_report(written) == report
    assert load_report(written / "report.json") == report


# ---------------------------------------------------------------------------- html / md

CHART_KINDS = ("energy-per-group", "storage-per-group", "energy-share", "energy-split",
               "energy-per-layer", "storage-per-layer", "evolution", "histograms")


def test_html_has_every_chart_and_is_self_contained(written):
    html = (written / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    for kind in CHART_KINDS:
        assert re.search(rf'<svg class="chart" data-chart="{kind}"[^>]*>', html), kind
    assert html.count("<svg") == len(CHART_KINDS)
    assert html.count('class="legend"') == len(CHART_KINDS)  # a legend on every chart
    assert not re.search(r"https?://", html)
    assert not re.search(r"<(script|link|img|iframe)\b|\bsrc=|@import|url\(", html)
    for axis in ("energy per inference (log scale)", "weight storage (log scale)",
                 "search epoch", "probability", "weight value (float)", "count (log scale)"):
        assert axis in html


def test_html_and_md_escape_layer_names():
    layers = make_layers(v_name=HOSTILE)
    doc = make_report(layers)
    from hqc.report import render_markdown
    from hqc.report.html import render_html

    html = render_html(doc)
    assert HOSTILE not in html and "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    md = render_markdown(doc)
    # Outside code blocks (which markdown shows verbatim) the name is escaped.
    prose = re.sub(r"```text\n.*?```", "", md, flags=re.S)
    assert HOSTILE not in prose
    assert r"\<script\>alert(1)\</script\>" in prose


def test_markdown_sections(written):
    md = (written / "report.md").read_text(encoding="utf-8")
    for heading in ("## Summary", "## Plan", "## Groups", "## Where the energy goes",
                    "## Search evolution", "## Weight histograms", "## Target and sources",
                    "## How to read"):
        assert heading in md
    assert "90.00 % float → 87.50 % fake-quant → 87.50 % deployed integer" in md
    assert "**energy, paper model**" in md and "**energy, spike-aware estimate**" in md
    assert "horowitz2014" in md and "█" in md


# ---------------------------------------------------------------------------- CLI


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_cli_rerenders_byte_equal(written, fmt):
    res = CliRunner().invoke(main, ["report", str(written), "--format", fmt])
    assert res.exit_code == 0, res.stderr
    assert res.stdout_bytes == (written / REPORT_FILES[fmt]).read_bytes()


def test_cli_default_is_markdown(written):
    res = CliRunner().invoke(main, ["report", str(written)])
    assert res.exit_code == 0
    assert res.stdout_bytes == (written / "report.md").read_bytes()


def _one_line_error(args: list[str], pattern: str) -> None:
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, (res.exit_code, res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in res.stderr
    assert re.search(pattern, lines[0]), lines[0]


def test_cli_missing_report(tmp_path):
    _one_line_error(["report", str(tmp_path)], r"report\.json: no such report file")
    _one_line_error(["report", str(tmp_path / "nowhere")], r"nowhere: no such report file")


def _broken(tmp_path, written, edit) -> str:
    doc = json.loads((written / "report.json").read_text(encoding="utf-8"))
    text = edit(doc)
    (tmp_path / "report.json").write_text(text if isinstance(text, str) else json.dumps(doc),
                                          encoding="utf-8")
    return str(tmp_path)


def test_cli_broken_json(tmp_path, written):
    d = _broken(tmp_path, written, lambda doc: '{"schema": "hqc.report/1", ')
    _one_line_error(["report", d], r"report\.json: not valid JSON at line 1 column \d+")


def test_cli_wrong_schema(tmp_path, written):
    d = _broken(tmp_path, written, lambda doc: doc.update(schema="hqc.report/9"))
    _one_line_error(["report", d],
                    r"report\.json:schema: unsupported schema 'hqc\.report/9'; expected 'hqc\.report/1'")


def test_cli_missing_key(tmp_path, written):
    d = _broken(tmp_path, written, lambda doc: doc["layers"][2].pop("energy_total_pj"))
    _one_line_error(["report", d], r"report\.json:layers\[2\]\.energy_total_pj: missing required key")


def test_cli_wrong_type(tmp_path, written):
    d = _broken(tmp_path, written, lambda doc: doc["total"].update(energy_total_pj="a lot"))
    _one_line_error(["report", d], r"report\.json:total\.energy_total_pj: expected a number, got 'a lot'")


def test_cli_nan_rejected(tmp_path, written):
    d = _broken(tmp_path, written,
                lambda doc: render_json(doc).replace('"rmse": 0.0', '"rmse": NaN', 1))
    _one_line_error(["report", d], r"report\.json: NaN is not allowed in a report")


def test_load_report_history_mismatch(tmp_path, written):
    d = _broken(tmp_path, written, lambda doc: doc["layers"][1]["history"][0].pop())
    with pytest.raises(ReportError, match=r"layers\[1\]\.history\[0\]: expected 5 values"):
        load_report(d)


# ---------------------------------------------------------------------------- plan errors


def test_plan_history_row_of_wrong_length():
    layers = make_layers()
    plan = make_plan(layers)
    plan["layers"]["blocks.0.attn.k"]["history"][1] = [0.5, 0.5]
    with pytest.raises(PlanError, match=r"plan:layers\.blocks\.0\.attn\.k\.history\[1\]: "
                                        r"expected 5 probabilities"):
        make_report(layers, plan=plan)


def test_plan_choice_not_a_candidate():
    layers = make_layers()
    plan = make_plan(layers)
    plan["layers"]["head"]["candidates"] = ["uni4", "uni2"]
    plan["layers"]["head"]["history"] = None
    with pytest.raises(PlanError, match=r"plan:layers\.head\.choice: fp32 is not one of"):
        make_report(layers, plan=plan)


def test_plan_missing_layer():
    layers = make_layers()
    plan = make_plan(layers)
    del plan["layers"]["head"]
    with pytest.raises(PlanError, match=r"plan:layers: no choice for layers: head"):
        make_report(layers, plan=plan)


def test_weight_shape_mismatch():
    layers = make_layers()
    weights = make_weights(layers)
    weights["head"] = np.zeros((8, 3), np.float32)
    with pytest.raises(ReportError, match=r"weights\['head'\]: shape \(8, 3\) does not match"):
        make_report(layers, weights=weights)
