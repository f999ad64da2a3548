"""The report's full accounting (key "full") and its "before" histograms of the imported
weights: the numbers are hqc.targets.full's, the renderings show them, reports without
the key still load, a malformed one is refused with its key path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hqc.choices import parse_choice
from hqc.lowerdir import lower
from hqc.pipeline import run_frontend
from hqc.report import (
    ModelInfo,
    ReportError,
    build_report,
    format_bytes,
    load_report,
    render,
    write_report,
)
from hqc.targets import load_target, model_cost
from hqc.targets.full import DeployedModel, full_cost
from tests.support import NDIGITS_MODEL as EXAMPLE

CMOS45 = load_target("cmos45")


@pytest.fixture(scope="module")
def built():
    fe = run_frontend(EXAMPLE)
    plan = {layer.name: parse_choice("uni2") for layer in fe.layers}
    deployed = DeployedModel.from_lowering(lower(EXAMPLE, plan))
    rng = np.random.default_rng(0)
    imported = {layer.name: rng.normal(0, 0.2, layer.weight_shape).astype(np.float32) for layer in fe.layers}
    latent = {k: (v * 0.5).astype(np.float32) for k, v in imported.items()}
    rep = build_report(
        model=ModelInfo(path=str(EXAMPLE), onnx_nodes=1, ir_nodes=1, input_shape=(1,), time_steps=4),
        layers=fe.layers, plan={"layers": {k: v.name for k, v in plan.items()}}, target=CMOS45,
        weights=latent, imported_weights=imported, graph=fe.graph, deployed=deployed,
        firing_rates_source=None)
    return fe, plan, deployed, imported, latent, rep


def test_full_is_the_cost_models(built):
    fe, plan, deployed, *_, rep = built
    want = full_cost(fe.graph, fe.layers, model_cost(fe.layers, plan, CMOS45), plan, CMOS45, deployed).to_dict()
    assert rep["full"] == json.loads(json.dumps(want))
    assert rep["full"]["weights_energy_pj"] == rep["total"]["energy_total_pj"]  # headline unchanged
    assert rep["full"]["storage"]["bytes_by_category"]["weights"] == 40036


def test_before_histogram_shows_the_imported_weights(built):
    *_, imported, latent, rep = built
    assert rep["histograms"]
    for h in rep["histograms"]:
        edges = np.asarray(h["edges"])
        assert h["before_weights"] == "imported"
        assert h["before"] == np.histogram(imported[h["layer"]].astype(np.float64), bins=edges)[0].tolist()
        assert h["stats_before"]["std"] == pytest.approx(float(imported[h["layer"]].astype(np.float64).std()))


def test_renderings_show_the_full_accounting(built, tmp_path):
    *_, rep = built
    md, html = render(rep, "md"), render(rep, "html")
    assert "## Full accounting" in md and "| attention matmul" in md and "imported fp32" in md
    st = rep["full"]["storage"]
    assert f"Storage as deployed: {format_bytes(st['total_bytes'])} in {st['arrays']} C constant arrays" in md
    assert '<section id="full">' in html and "thresholds 5.38 kB" in html
    assert "imported fp32 weights, before quantization" in html
    write_report(tmp_path, rep)
    assert load_report(tmp_path) == rep


def test_reports_without_full_load_and_bad_full_is_refused(built, tmp_path):
    *_, rep = built
    old = {k: v for k, v in rep.items() if k not in ("full", "firing_rates_source")}
    for h in old["histograms"]:
        del h["before_weights"]
    (tmp_path / "report.json").write_text(json.dumps(old))
    assert "## Full accounting" not in render(load_report(tmp_path), "md")
    bad = json.loads(json.dumps(rep))
    bad["full"]["by_kind"]["lif"]["count"] = "many"
    (tmp_path / "report.json").write_text(json.dumps(bad))
    with pytest.raises(ReportError, match=r"report.json:full.by_kind.lif.count: expected an integer, got 'many'"):
        load_report(tmp_path)


def test_hqc_cost_and_report_md_print_the_same_totals(built):
    """One formatter (hqc.fmt): `hqc cost` and report.md write the plan's total energy, its
    fp32 baseline and the full accounting's total with the same strings (hand-checked:
    the shipped model, all uni2, cmos45)."""
    import re

    from click.testing import CliRunner

    from hqc.cli import main

    *_, rep = built
    md = render(rep, "md")
    res = CliRunner().invoke(main, ["cost", str(EXAMPLE), "--target", "cmos45", "--all", "uni2"])
    assert res.exit_code == 0, res.output
    paper = re.search(r"^  total +(\S+ \S+) +fp32 +(\S+ \S+) +ratio (.+)$", res.output, re.M)
    full = re.search(r"^  total +(\S+ \S+) +(\S+ \S+)$", res.output, re.M)
    assert paper and full, res.output
    assert paper.groups() == ("15.1 µJ", "460 µJ", "0.0329× (30.4× less)")
    assert f"**energy, paper model**: {paper[1]} per inference vs {paper[2]} fp32 = {paper[3]}" in md
    assert full.groups() == ("15.8 µJ", "483 µJ")
    assert f"**energy, full accounting**: {full[1]} vs {full[2]} fp32" in md
