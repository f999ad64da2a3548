"""The Python API (hqc.compile/inspect/cost/lower/verify/load_report) against references:
examples/notebook.py run as a script (one search and one fine-tune epoch) and its figures
checked against onnxruntime on model.int.onnx, the cost model and report.json; inspect
and cost equal the CLI's --json documents; lower + verify reproduce the compile's integer
model; errors are the CLI's one-line messages; `import hqc` stays light."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

import hqc
from hqc.cli import main
from hqc.errors import ConfigError, DataError, HqcError, ModelError
from tests.support import REPO
from tests.support.compiled import int_model_accuracy

NOTEBOOK = REPO / "examples" / "notebook.py"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def nb(tmp_path_factory):
    """examples/notebook.py run as __main__ in a fresh folder: its globals, its folder, its time."""
    import os

    d = tmp_path_factory.mktemp("notebook")
    old = os.getcwd()
    threads = torch.get_num_threads()
    os.chdir(d)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        g = runpy.run_path(str(NOTEBOOK), run_name="__main__")
    finally:
        os.chdir(old)
        torch.set_num_threads(threads)
    g["seconds"], g["cpu_seconds"] = time.perf_counter() - t0, time.process_time() - c0
    g["out"] = d / "build" / "notebook"
    return g


def _cli_json(*args: str) -> dict:
    res = CliRunner().invoke(main, list(map(str, args)))
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _cli_error(*args: str) -> str:
    res = CliRunner().invoke(main, list(map(str, args)))
    assert res.exit_code == 2, res.output
    return res.stderr.strip().removeprefix("error: ")


# ----------------------------------------------------------------------------- notebook


def _torch_accuracy(net: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """The notebook's own SpikingJelly model in eval mode, one sample at a time ([T, 1, …])."""
    from spikingjelly.activation_based import functional

    was = net.training
    net.eval()
    preds = []
    with torch.no_grad():
        for xi in x:
            functional.reset_net(net)
            preds.append(int(net(torch.from_numpy(xi[:, None]).float()).argmax()))
    functional.reset_net(net)
    net.train(was)
    return float(np.mean(np.array(preds) == y))


def test_notebook_integer_accuracy_is_onnxruntime_on_the_int_model(nb):
    """The integer accuracy is onnxruntime's on model.int.onnx; the float accuracy is the
    notebook's torch model's (SpikingJelly, eval mode) on the same split."""
    r, data = nb["result"], nb["data"]
    assert r.out_dir == Path("build/notebook") and r.stopped_after is None
    want = int_model_accuracy(nb["out"], data["x_val"], data["y_val"])
    assert r.integer_accuracy == want
    assert r.float_accuracy == _torch_accuracy(nb["net"], data["x_val"], data["y_val"])
    assert r.samples == len(data["y_val"]) == 96 and r.split == "val"
    assert r.verified == {"onnxruntime": 96, "c": 96}
    verify = json.loads((nb["out"] / "verify.json").read_text())
    assert verify["accuracy_int"] == want and verify["identical"]


def test_notebook_result_is_the_report(nb, monkeypatch):
    r, out = nb["result"], nb["out"]
    monkeypatch.chdir(out.parent.parent)
    rep = json.loads((out / "report.json").read_text())
    assert r.report == rep
    assert (r.float_accuracy, r.fake_quant_accuracy, r.integer_accuracy) == (
        rep["accuracy"]["float"], rep["accuracy"]["fake_quant"], rep["accuracy"]["integer"])
    assert r.energy_pj == rep["total"]["energy_total_pj"]
    assert r.energy_ratio == pytest.approx(r.energy_pj / r.energy_fp32_pj, rel=1e-12)
    assert r.storage_bits == sum(row["params"] * row["bits"] for row in rep["layers"])
    assert r.storage_fp32_bits == 32 * sum(row["params"] for row in rep["layers"])
    assert r.plan == {row["name"]: row["choice"] for row in rep["layers"]} and list(r.plan) == ["conv1", "conv2", "fc"]
    assert nb["again"] == r == hqc.load_report("build/notebook") == hqc.load_report(Path("build/notebook/report.json"))
    assert hqc.load_report(out).to_dict()["report_html"] == str(out / "report.html")
    d = r.to_dict()
    assert "report" not in d and d["int_model"] == "build/notebook/model.int.onnx" and d["kernels"] == "build/notebook/kernels"
    assert json.loads(json.dumps(d)) == d
    assert (out / "kernels" / "Makefile").is_file() and (out / "plan.yaml").is_file()


def test_notebook_energy_is_the_cost_model(nb):
    """The report's energy equals `hqc.cost` of the lowered model under the chosen plan, and
    its spike-aware figure the cost model at the report's firing rates (measured on the
    input model, not on model.qat.onnx)."""
    from hqc.choices import parse_choice
    from hqc.pipeline import run_frontend
    from hqc.targets import load_target, model_cost

    r, out = nb["result"], nb["out"]
    doc = hqc.cost(out / "model.qat.onnx", "cmos45", plan=dict(r.plan))
    assert doc["total"]["energy_total_pj"] == pytest.approx(r.energy_pj, rel=1e-12)
    assert doc["total"]["storage_bits"] == r.storage_bits
    assert doc["ratios"]["energy_total_pj"] == pytest.approx(r.energy_ratio, rel=1e-12)
    layers = run_frontend(out / "model.qat.onnx").layers
    rates = {row["name"]: row["firing_rate"] for row in r.report["layers"] if row["firing_rate"] is not None}
    want = model_cost(layers, {k: parse_choice(v) for k, v in r.plan.items()}, load_target("cmos45"), firing_rates=rates)
    assert r.spike_energy_pj == pytest.approx(want.total.spike_energy_total_pj, rel=1e-12)
    assert r.spike_energy_ratio == pytest.approx(want.ratios["spike_energy_total_pj"], rel=1e-12)


def test_notebook_plot(nb):
    path = nb["plot_path"]
    assert path.parent == Path("build/notebook")
    full = nb["out"] / path.name
    layers = nb["result"].report["layers"]
    if path.suffix == ".svg":  # no matplotlib: the report's chart code
        root = ET.fromstring(full.read_text(encoding="utf-8"))
        bars = [e for e in root.iter("{http://www.w3.org/2000/svg}rect") if e.find("{http://www.w3.org/2000/svg}title") is not None]
        titles = [b.find("{http://www.w3.org/2000/svg}title").text for b in bars]
        from hqc.report import format_energy

        want = [f"{row['name']} · {s}: {format_energy(row['fp32']['energy_total_pj'] if s == 'fp32' else row['energy_total_pj'])}"
                for row in layers for s in ("fp32", "plan")]
        assert titles == want
    else:
        assert full.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_notebook_is_quick(nb):
    """Under a minute of this process's CPU time (wall time depends on the machine's load;
    about 10 s on an idle 2-core machine)."""
    assert nb["cpu_seconds"] < 60, (nb["cpu_seconds"], nb["seconds"])


# ----------------------------------------------------------------------------- inspect, cost


def test_inspect_equals_cli_json(nb):
    model = nb["out"] / "model.qat.onnx"
    got, want = hqc.inspect(model), _cli_json("inspect", model, "--json")
    got.pop("import_seconds"), want.pop("import_seconds")
    assert got == want and [x["name"] for x in got["layers"]] == ["conv1", "conv2", "fc"]


def test_inspect_of_a_module_exports_it(nb):
    got = hqc.inspect(nb["net"], example_input=torch.zeros(4, 1, 2, 32, 32))
    want = hqc.inspect(nb["out"] / "model.qat.onnx")
    for d in (got, want):
        d.pop("import_seconds"), d.pop("model")
    assert got["layers"] == want["layers"] and got["neurons"] == want["neurons"]
    assert got["input"]["shape"] == [4, 1, 2, 32, 32]


def test_cost_equals_cli_json(nb, tmp_path):
    model, plan = nb["out"] / "model.qat.onnx", nb["out"] / "plan.yaml"
    assert hqc.cost(model, "cmos45", all="pot2") == _cli_json("cost", model, "--target", "cmos45", "--all", "pot2", "--json")
    npz = tmp_path / "d.npz"
    np.savez(npz, **nb["data"])
    got = hqc.cost(str(model), "cmos45", plan=str(plan), data=str(npz))
    assert got == _cli_json("cost", model, "--target", "cmos45", "--plan", plan, "--data", npz, "--json")
    assert got["spike_aware_available"]
    got = hqc.cost(model, plan=plan, data=nb["data"], lowering=nb["out"], accumulator="proven")
    want = _cli_json("cost", model, "--target", "cmos45", "--plan", plan, "--data", npz, "--lowering", nb["out"],
                     "--accumulator", "proven", "--json")
    assert got == want | {"plan": str(plan)} and got["full"]["accumulator"] == "proven"


def test_data_as_torch_datasets_equals_arrays(nb):
    from torch.utils.data import TensorDataset

    d = nb["data"]
    val = TensorDataset(torch.from_numpy(d["x_val"]), torch.from_numpy(d["y_val"]))
    train = TensorDataset(torch.from_numpy(d["x"][:8]), torch.from_numpy(d["y"][:8]))
    model = nb["out"] / "model.qat.onnx"
    want = hqc.cost(model, all="uni4", data=d)
    assert hqc.cost(model, all="uni4", data={"train": train, "val": val}) == want
    assert hqc.cost(model, all="uni4", data={"train": (d["x"][:8], d["y"][:8]), "val": val}) == want


@pytest.mark.slow
def test_dynamo_exporter_gives_the_same_layers(nb):
    """exporter="dynamo" (about 10 s for this network): the same layers and neurons."""
    x = torch.zeros(4, 1, 2, 32, 32)
    got, want = hqc.inspect(nb["net"], example_input=x, exporter="dynamo"), hqc.inspect(nb["net"], example_input=x)
    strip = ("name", "onnx_nodes")
    assert [{k: v for k, v in d.items() if k not in strip} for d in got["layers"]] == \
        [{k: v for k, v in d.items() if k not in strip} for d in want["layers"]]
    assert [n["tau"] for n in got["neurons"]] == [n["tau"] for n in want["neurons"]]


# ----------------------------------------------------------------------------- lower, verify


def test_lower_and_verify_reproduce_the_compile(nb, tmp_path):
    out = nb["out"]
    low = hqc.lower(out / "model.qat.onnx", out / "plan.yaml", tmp_path / "low", data=nb["data"])
    assert low.out_dir == tmp_path / "low"
    assert (tmp_path / "low" / "model.int.onnx").read_bytes() == (out / "model.int.onnx").read_bytes()
    v = hqc.verify(tmp_path / "low", nb["data"])
    assert v.identical and v.samples == 96 and v.accuracy_int == nb["result"].integer_accuracy
    npz = tmp_path / "d.npz"
    np.savez(npz, **nb["data"])
    from hqc.results import verify_document

    assert json.loads(json.dumps(verify_document(v))) == _cli_json("verify", tmp_path / "low", "--data", npz, "--json")


def test_verify_of_the_compile_folder_itself(nb):
    """A compile folder names its float model under the temporary name it was written in;
    verify finds the model beside lowering.json (same fingerprint) and repeats verify.json."""
    out = nb["out"]
    doc = json.loads((out / "lowering.json").read_text())
    assert not Path(doc["model"]["path"]).exists()  # the compile's temporary folder is gone
    v = hqc.verify(out, nb["data"])
    saved = json.loads((out / "verify.json").read_text())
    assert v.identical and v.samples == saved["samples"] == 96
    assert v.accuracy_int == saved["accuracy_int"]
    assert v.accuracy_float == pytest.approx(nb["result"].fake_quant_accuracy, abs=1e-9)  # the report's fake-quant


# ----------------------------------------------------------------------------- errors


def test_errors_are_the_cli_messages(tmp_path):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(HqcError) as e:
        hqc.inspect(missing)
    assert str(e.value) == _cli_error("inspect", missing)
    with pytest.raises(HqcError) as e:
        hqc.load_report(tmp_path)
    assert str(e.value) == _cli_error("report", tmp_path)


def test_model_and_data_errors(nb):
    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("no forward here\nsecond line")

    with pytest.raises(ModelError, match=r"^torch.onnx.export \(torchscript\) failed: no forward here$"):
        hqc.inspect(Broken(), example_input=torch.zeros(1))
    with pytest.raises(ConfigError, match="^exporter must be 'torchscript' or 'dynamo', got 'fx'$"):
        hqc.inspect(nb["net"], example_input=torch.zeros(4, 1, 2, 32, 32), exporter="fx")
    with pytest.raises(ConfigError, match="^example_input= is only for a torch nn.Module model"):
        hqc.inspect(nb["out"] / "model.qat.onnx", example_input=torch.zeros(1))
    with pytest.raises(ConfigError, match="^model must be an ONNX path or a torch nn.Module, got int$"):
        hqc.inspect(42)
    with pytest.raises(DataError, match=r"^data\['x'\]: dtype object; expected a numeric array$"):
        hqc.cost(nb["out"] / "model.qat.onnx", all="uni4", data={"x": np.array([None]), "y": np.zeros(1)})
    with pytest.raises(DataError, match=r"^data\['val'\]\[0\]: expected an \(x, y\) pair$"):
        hqc.cost(nb["out"] / "model.qat.onnx", all="uni4", data={"train": (nb["data"]["x"], nb["data"]["y"]),
                                                                  "val": torch.utils.data.TensorDataset(torch.zeros(2, 3))})


def test_compile_bad_input_leaves_no_folder(nb, tmp_path):
    model, out = nb["out"] / "model.qat.onnx", tmp_path / "out"
    with pytest.raises(ConfigError, match=r"hqc.compile: unknown option 'lambda_' \(known: batch_size, device, epochs, "):
        hqc.compile(model, nb["data"], out=out, lambda_=0.1)
    with pytest.raises(ConfigError, match="hqc.compile: epochs must be ≥ 0, got -1"):
        hqc.compile(model, nb["data"], out=out, epochs=-1)
    with pytest.raises(ConfigError, match="pass example_input="):
        hqc.compile(nb["net"], nb["data"], out=out)
    with pytest.raises(DataError, match="data: unknown key 'X'"):
        hqc.compile(model, {"X": 1}, out=out)
    bad = dict(nb["data"], x_val=nb["data"]["x_val"][:, :, :1])
    with pytest.raises(DataError, match=r"data.npz: 'x_val' samples have shape \[4, 1, 32, 32\]; the model expects \[4, 2, 32, 32\]"):
        hqc.compile(model, bad, out=out)
    with pytest.raises(ConfigError, match="give exactly one of plan="):
        hqc.cost(model)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_compile_stop_after(nb, tmp_path):
    events = []
    r = hqc.compile(nb["out"] / "model.qat.onnx", nb["data"], out=tmp_path / "s", stop_after="search",
                    epochs=1, lam=0.1, batch_size=64, progress=lambda kind, info: events.append((kind, info)))
    # one stage event per step of hqc.pipeline.STEPS up to the last one run
    assert [info["stage"] for kind, info in events if kind == "stage"] == [
        "import", "canonicalize", "recognize-neurons", "annotate-layers", "insert-quant-choices", "search"]
    assert r.stopped_after == "search" and r.integer_accuracy is None and r.report is None
    plan = yaml.safe_load((tmp_path / "s" / "plan.yaml").read_text())
    assert r.float_accuracy == pytest.approx(plan["accuracy"]["float"], abs=5e-7)  # plan.yaml: 6 digits
    assert 0 <= r.float_accuracy <= 1 and set(plan["layers"]) == {"conv1", "conv2", "fc"}
    assert "lambda: 0.1" in (tmp_path / "s" / "config.yaml").read_text()


def test_options_are_compile_config():
    from hqc.api import compile_options
    from hqc.config import CompileConfig

    opts = compile_options()
    cfg = CompileConfig()
    assert opts["lam"] is cfg.lambda_ and opts["epochs"] == cfg.epochs and opts["finetune_epochs"] == cfg.finetune_epochs
    assert set(opts) == {"plan", "search_space", "input_layout", "lam", "epochs", "finetune_epochs", "batch_size",
                         "seed", "device", "stop_after", "verify_limit", "split"}


# ----------------------------------------------------------------------------- import


def test_import_hqc_is_light_and_compile_stays_the_function():
    code = ("import sys, hqc; light = not any(m in sys.modules for m in ('torch', 'numpy', 'hqc.api', 'hqc.config'));"
            "import hqc.compile; from hqc.compile import run_compile; import hqc.cli;"
            "print(light, hqc.compile is hqc.api.compile, callable(run_compile))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["True", "True", "True"]
