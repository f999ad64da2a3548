"""`hqc compile` end to end on a tiny model: one complete folder whose report agrees with
the cost model and the verification; --stop-after; --config round trip; bad input leaves
no folder; SIGINT leaves no folder and a second run succeeds."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml
from click.testing import CliRunner

from hqc.choices import parse_choice
from hqc.cli import main
from hqc.pipeline import run_frontend
from hqc.targets import layer_cost, load_target
from tests.support.compiled import check_compile_folder
from tests.support.data import TINY, make_data
from tests.support.zoo import example_spikformer

FAST = ["--epochs", "1", "--finetune-epochs", "1", "--batch-size", "16", "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(zoo_build):
    return zoo_build(example_spikformer, TINY)


@pytest.fixture
def data(tmp_path):
    return make_data(tmp_path / "d.npz")


def _compile(*args):
    return CliRunner().invoke(main, ["compile", *map(str, args)])


@pytest.fixture(scope="module")
def compiled(tiny, tmp_path_factory):
    """One compile shared by the module, on one torch thread like the tests that compare
    their own runs with it (a module fixture is set up before `one_torch_thread`)."""
    import torch

    d = tmp_path_factory.mktemp("compiled")
    data = make_data(d / "d.npz")
    out = d / "out"
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = _compile(tiny.onnx_path, "--data", data, "--target", "cmos45", "-o", out, *FAST)
    finally:
        torch.set_num_threads(n)
    assert res.exit_code == 0, res.stderr + res.stdout
    return out, res.stdout, data


def _same_result(a, b) -> None:
    """Two compile folders of the same model, data, seed and options: the same plan (choices
    and α histories), accuracies, energy and storage."""
    pa, pb = (yaml.safe_load((d / "plan.yaml").read_text()) for d in (a, b))
    assert pa["layers"] == pb["layers"] and pa["accuracy"] == pb["accuracy"] and pa["energy"] == pb["energy"]
    ra, rb = (json.loads((d / "report.json").read_text()) for d in (a, b))
    for key in ("accuracy", "total", "ratios", "baseline_fp32", "memory"):
        assert ra[key] == rb[key], key


def test_folder_is_complete(compiled):
    out, stdout, _ = compiled
    names = sorted(p.name for p in out.iterdir())
    for want in ("plan.yaml", "model.qat.onnx", "model.int.onnx", "kernels", "report.json", "report.md",
                 "report.html", "config.yaml", "compile.log", "verify.json", "lowering.json"):
        assert want in names, names
    assert not [n for n in os.listdir(out.parent) if n.startswith(".out.")]
    assert "accuracy" in stdout and "energy" in stdout and str(out) in stdout


def test_report_numbers_are_recomputed(compiled, tiny):
    """report.json's integer accuracy = onnxruntime on model.int.onnx over the val split,
    its energy and storage = `hqc cost` on plan.yaml, its storage = lowering.json's packed
    weight bytes, its choices = plan.yaml's = the lowering's (tests/support/compiled.py)."""
    out, stdout, data = compiled
    rep = check_compile_folder(out, tiny.onnx_path, data)
    # the summary prints the same figures (hqc.fmt's percentages of the report's numbers)
    acc = rep["accuracy"]
    assert f"deployed integer {100 * acc['integer']:.2f} %" in stdout, stdout
    assert f"fake-quant {100 * acc['fake_quant']:.2f} %" in stdout, stdout
    assert re.search(rf"energy\s+{100 * rep['ratios']['energy_total_pj']:.2f} % of fp32", stdout), stdout


def test_report_agrees_with_cost_model_and_verification(compiled, tiny):
    out, _, _ = compiled
    rep = json.loads((out / "report.json").read_text())
    layers = {layer.name: layer for layer in run_frontend(tiny.onnx_path).layers}
    target = load_target("cmos45")
    plan = yaml.safe_load((out / "plan.yaml").read_text())["layers"]
    assert {row["name"] for row in rep["layers"]} == set(layers)
    for row in rep["layers"]:
        assert row["choice"] == plan[row["name"]]["choice"]
        want = layer_cost(layers[row["name"]], parse_choice(row["choice"]), target)
        assert row["energy_total_pj"] == pytest.approx(want.energy_total_pj, rel=1e-12)
        assert row["storage_bits"] == want.storage_bits
    total = sum(row["energy_total_pj"] for row in rep["layers"])
    assert rep["total"]["energy_total_pj"] == pytest.approx(total, rel=1e-12)
    assert rep["ratios"]["energy_total_pj"] == pytest.approx(total / rep["baseline_fp32"]["energy_total_pj"], rel=1e-12)
    verify = json.loads((out / "verify.json").read_text())
    assert verify["identical"] is True
    assert rep["accuracy"]["integer"] == pytest.approx(verify["accuracy_int"])
    assert rep["accuracy"]["samples"] == verify["samples"]


def test_report_histograms_are_of_the_lowered_weights(compiled, tiny):
    """The compile's report shows weight histograms: before, the imported weights; after,
    the quantized fine-tuned weights it lowered, with the learned scales."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from hqc.passes.annotate_layers import weight_transposed
    from hqc.quant import SCALES_FILE, fake_quant_numpy, load_scales

    out, _, _ = compiled
    scales = load_scales(out / SCALES_FILE)  # what the lowering used (lowering.json names it)
    rep = json.loads((out / "report.json").read_text())
    assert rep["histograms"], "the report has no weight histograms"
    qat = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(out / "model.qat.onnx")).graph.initializer}
    imported = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(tiny.onnx_path)).graph.initializer}
    fe = run_frontend(out / "model.qat.onnx")
    layers = {layer.name: layer for layer in fe.layers}
    for h in rep["histograms"]:
        layer = layers[h["layer"]]
        w = qat[layer.weight]
        w = w.T if weight_transposed(fe.graph, layer) else w
        w0 = imported[layer.weight]
        w0 = w0.T if weight_transposed(fe.graph, layer) else w0
        assert not np.array_equal(w0, w)  # fine-tuned: the two differ
        edges = np.asarray(h["edges"])
        assert h["before_weights"] == "imported"
        assert h["before"] == np.histogram(w0.astype(np.float64), bins=edges)[0].tolist()
        learned = scales.get(layer.name)
        if h["choice"] == "fp32":
            assert learned is None
        else:  # the fine-tune learned this layer's scales for its choice
            assert learned is not None and learned[0] == h["choice"], (h["layer"], h["choice"], learned)
        q = fake_quant_numpy(w.astype(np.float32), parse_choice(h["choice"]), None if learned is None else learned[1])
        assert h["after"] == np.histogram(q.astype(np.float64), bins=edges)[0].tolist()


def test_report_full_accounting_of_the_deployed_model(compiled):
    """report.json's full accounting: deployed storage = the C constants of kernels/, rates
    from the integer model, headline unchanged."""
    from hqc.targets.full import c_constants

    out, _, _ = compiled
    rep = json.loads((out / "report.json").read_text())
    full = rep["full"]
    consts = c_constants((out / "kernels" / "hqc_model.c").read_text())
    assert full["storage"]["total_bytes"] == sum(c.bytes for c in consts)
    low = json.loads((out / "lowering.json").read_text())
    assert full["storage"]["bytes_by_category"]["weights"] == low["totals"]["packed_weight_bytes"]
    assert full["weights_energy_pj"] == rep["total"]["energy_total_pj"]
    assert full["energy_total_pj"] > rep["total"]["energy_total_pj"]
    assert rep["firing_rates_source"].startswith("deployed integer model")
    assert "## Full accounting" in (out / "report.md").read_text()


def test_config_file_round_trips_and_reproduces_options(compiled, tiny, tmp_path):
    out, _, data = compiled
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["epochs"] == 1 and cfg["finetune_epochs"] == 1 and cfg["target"] == "cmos45"
    cfg["out"] = str(tmp_path / "again")
    cfg["stop_after"] = "annotate-layers"
    p = tmp_path / "hqc.yaml"
    p.write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(main, ["compile", "--config", str(p), "--no-progress"])
    assert res.exit_code == 0, res.stderr
    assert sorted(x.name for x in (tmp_path / "again").iterdir()) == ["compile.log", "config.yaml", "inspect.json"]
    again = yaml.safe_load((tmp_path / "again" / "config.yaml").read_text())
    assert again == cfg


def test_stop_after_search_writes_plan_only(compiled, tiny, data, tmp_path):
    """The search's plan is the full compile's (same data, seed and options): every layer's
    choice and α history; nothing of the later steps is written."""
    out = tmp_path / "s"
    res = _compile(tiny.onnx_path, "--data", data, "-o", out, *FAST, "--stop-after", "search")
    assert res.exit_code == 0, res.stderr
    names = sorted(x.name for x in out.iterdir())
    assert "plan.yaml" in names and "model.int.onnx" not in names and "report.json" not in names
    full = yaml.safe_load((compiled[0] / "plan.yaml").read_text())
    plan = yaml.safe_load((out / "plan.yaml").read_text())
    assert plan["layers"] == full["layers"]
    assert plan["accuracy"]["float"] == full["accuracy"]["float"]
    assert plan["energy"] == full["energy"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "nochip"], r"unknown target 'nochip'|nochip"),
        (["--lambda", "-1"], r"lambda must be ≥ 0"),
        (["--plan", "PLAN"], r"no layer of that name"),
        (["--data", "BADDATA"], r"samples have shape"),
        (["--config", "BADCFG"], r"unknown option"),
    ],
)
def test_bad_input_one_line_no_folder(tiny, data, tmp_path, args, message):
    plan = tmp_path / "plan.yaml"
    plan.write_text("layers:\n  not_a_layer: uni4\n")
    bad = tmp_path / "bad.npz"
    import numpy as np

    np.savez(bad, x=np.zeros((4, 3, 2, 16, 16), np.float32), y=np.zeros(4, np.int64))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochz: 1\n")
    args = [str(plan) if a == "PLAN" else str(bad) if a == "BADDATA" else str(cfg) if a == "BADCFG" else a for a in args]
    base = [str(tiny.onnx_path)] + (["--data", str(data)] if "--data" not in args else [])
    out = tmp_path / "out"
    res = _compile(*base, *args, "-o", out, *FAST)
    assert res.exit_code == 2, res.stderr + res.stdout
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".out.")]


def _sigint_default() -> None:
    # A test run started in the background by a non-interactive shell (CI, `pytest &`)
    # inherits SIGINT ignored, and Python keeps an ignored SIGINT ignored: the child would
    # never see the Ctrl-C this test sends. A user's Ctrl-C reaches a foreground process.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_leaves_no_folder_and_a_second_run_succeeds(sig, compiled, tiny, data, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "hqc.cli", "compile", str(tiny.onnx_path), "--data", str(data), "-o", str(out),
           "--epochs", "2000", "--finetune-epochs", "1", "--batch-size", "16", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
                            preexec_fn=_sigint_default)
    deadline = time.time() + 240
    started = False
    while time.time() < deadline and not started:  # wait until the search is training
        for n in os.listdir(tmp_path):
            log = tmp_path / n / "compile.log"
            if n.startswith(".out.tmp-") and log.exists() and "search epoch" in log.read_text():
                started = True
        time.sleep(0.2)
    assert started, "the run did not reach the search"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err  # README "Exit codes": interrupted
    assert err.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in err
    assert not out.exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".out.")]
    res = _compile(tiny.onnx_path, "--data", data, "-o", out, *FAST)
    assert res.exit_code == 0, res.stderr
    _same_result(out, compiled[0])  # the interrupted run left nothing that changes a result



def test_report_carries_the_c_models_memory(compiled):
    """report.json's `memory` is lowering.json's (the header's arena and constants, `size` of
    the built test binary), and report.md prints it."""
    out, _, _ = compiled
    rep = json.loads((out / "report.json").read_text())
    low = json.loads((out / "lowering.json").read_text())
    assert rep["memory"] == low["memory"]
    header = (out / "kernels" / "hqc_model.h").read_text()
    macro = {k: int(v) for k, v in re.findall(r"#define (HQC_\w+) (\d+)", header)}
    assert rep["memory"]["arena_bytes"] == macro["HQC_ARENA_BYTES"]
    assert rep["memory"]["constant_bytes"] == macro["HQC_CONST_BYTES"]
    assert rep["memory"]["peak_live_bytes"] <= rep["memory"]["arena_bytes"]
    assert rep["memory"]["static_ram_bytes"] >= rep["memory"]["arena_bytes"]  # the test binary holds the arena
    md = (out / "report.md").read_text()
    assert "**C model memory**: arena " in md and "static RAM of the test binary" in md
