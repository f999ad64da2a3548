"""`--json` on every command that prints results: each document parses, carries its
schema, and its numbers equal the files the run wrote (report.json, plan.yaml,
lowering.json, verify.json), the library's own figures and the human output. Also: one
set of defaults for compile and search, `--config` for search, devices, config.yaml's
versions."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from hqc.choices import parse_choice
from hqc.cli import main
from hqc.cli_compile import summary_lines
from hqc.config import CompileConfig
from hqc.fmt import format_energy
from hqc.pipeline import run_frontend
from hqc.search import SearchConfig
from hqc.targets import load_target, mac_energy_pj, model_cost
from tests.support.data import TINY, make_data
from tests.support.zoo import example_spikformer

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = ["--epochs", "1", "--finetune-epochs", "1", "--batch-size", "16", "--no-progress"]


def _run(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.stderr + res.stdout
    return res.stdout


def _json(*args):
    return json.loads(_run(*args, "--json"))


@pytest.fixture(scope="module")
def tiny(zoo_build):
    return zoo_build(example_spikformer, TINY).onnx_path


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("json")
    return d, make_data(d / "d.npz")


@pytest.fixture(scope="module")
def compiled(tiny, work):
    d, data = work
    out = d / "out"
    return _json("compile", tiny, "--data", data, "-o", out, *FAST), out


def test_compile_json_equals_the_report(compiled):
    doc, out = compiled
    rep = json.loads((out / "report.json").read_text())
    ver = json.loads((out / "verify.json").read_text())
    plan = yaml.safe_load((out / "plan.yaml").read_text())["layers"]
    assert doc["schema"] == "hqc.compile/1" and doc["out"] == str(out) and doc["stopped_after"] is None
    assert doc["energy"] == {
        "total_pj": rep["total"]["energy_total_pj"], "fp32_total_pj": rep["baseline_fp32"]["energy_total_pj"],
        "ratio": rep["ratios"]["energy_total_pj"], "spike_aware_total_pj": rep["total"]["spike_energy_total_pj"],
        "spike_aware_ratio": rep["ratios"]["spike_energy_total_pj"]}
    assert doc["storage"] == {"bits": rep["total"]["storage_bits"], "fp32_bits": rep["baseline_fp32"]["storage_bits"],
                              "ratio": rep["ratios"]["storage_bits"], "average_bits": rep["total"]["average_bits"]}
    acc = rep["accuracy"]
    assert doc["accuracy"] == {"split": acc["split"], "samples": acc["samples"], "float": acc["float"],
                               "fake_quant": acc["fake_quant"], "integer": acc["integer"]}
    assert doc["accuracy"]["integer"] == ver["accuracy_int"] and ver["schema"] == "hqc.verify/1"
    assert doc["verify"] == {"samples": ver["samples"], "agree": ver["agree"], "identical": True}
    counts: dict[str, int] = {}
    for entry in plan.values():
        counts[entry["choice"]] = counts.get(entry["choice"], 0) + 1
    assert doc["choices"] == dict(sorted(counts.items()))
    assert doc["outputs"] == rep["outputs"]


def test_compile_summary_prints_the_json_figures(compiled):
    doc, _ = compiled
    text = "\n".join(summary_lines(doc))
    assert f"energy       {100 * doc['energy']['ratio']:.2f} % of fp32" in text
    assert f"deployed integer {100 * doc['accuracy']['integer']:.2f} %" in text
    assert f"average {doc['storage']['average_bits']:.2f} bits per weight" in text
    assert "plan         " + ", ".join(f"{k} ×{v}" for k, v in doc["choices"].items()) in text


def test_config_yaml_records_versions_and_still_loads(compiled):
    import platform

    import numpy
    import onnx
    import onnxruntime
    import torch

    from hqc import __version__

    _, out = compiled
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["versions"] == {"hqc": __version__, "python": platform.python_version(), "torch": torch.__version__,
                               "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                               "numpy": numpy.__version__}
    loaded = CompileConfig.from_file(out / "config.yaml")
    assert loaded.epochs == 1 and loaded.batch_size == 16  # the record is not an option


def test_config_versions_must_be_a_mapping(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("versions: 3\n")
    from hqc.errors import ConfigError

    with pytest.raises(ConfigError, match=r"c\.yaml:versions: expected a mapping"):
        CompileConfig.from_file(p)


@pytest.fixture(scope="module")
def searched(tiny, work):
    """`hqc search --config`: the file sets the options, the command line wins."""
    d, data = work
    cfg = d / "hqc.yaml"
    cfg.write_text(yaml.safe_dump({"data": str(data), "epochs": 1, "finetune_epochs": 0, "batch_size": 8,
                                   "seed": 5}))
    out = d / "s"
    doc = _json("search", tiny, "--config", cfg, "--batch-size", "16", "-o", out, "--no-progress")
    return doc, out


def test_search_json_equals_plan_yaml(searched):
    doc, out = searched
    plan = yaml.safe_load((out / "plan.yaml").read_text())
    assert doc["schema"] == "hqc.search/1" and doc["plan"] == str(out / "plan.yaml")
    assert doc["layers"] == {k: v["choice"] for k, v in plan["layers"].items()}
    assert doc["accuracy"] == {k: plan["accuracy"][k] for k in ("split", "float", "fake_quant")}
    assert doc["energy_ratio"] == pytest.approx(plan["energy"]["ratio"], abs=1e-6)
    assert sum(doc["choices"].values()) == len(doc["layers"])
    # the config file's options, the command line's batch size
    assert (plan["epochs"], plan["finetune_epochs"], plan["seed"], plan["search"]["batch_size"]) == (1, 0, 5, 16)


def test_search_config_refuses_compile_only_options(tiny, work, tmp_path):
    _, data = work
    cfg = tmp_path / "hqc.yaml"
    cfg.write_text(yaml.safe_dump({"data": str(data), "stop_after": "search"}))
    res = CliRunner().invoke(main, ["search", str(tiny), "--config", str(cfg), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert res.stderr.strip() == f"error: {cfg}:stop_after: an option of hqc compile only, not of hqc search"


def test_search_without_data_is_one_line(tiny, tmp_path):
    res = CliRunner().invoke(main, ["search", str(tiny), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and res.stderr.strip() == "error: no data given (--data D.npz)"


@pytest.fixture(scope="module")
def lowered(tiny, searched, work):
    d, data = work
    _, s = searched
    out = d / "low"
    doc = _json("lower", s / "model.qat.onnx", "--plan", s / "plan.yaml", "-o", out, "--data", data)
    return doc, out


def test_lower_json_is_lowering_json_and_the_table(lowered, searched, work):
    doc, out = lowered
    assert doc == json.loads((out / "lowering.json").read_text())
    assert doc["schema"] == "hqc.lowering/1"
    d, data = work
    _, s = searched
    human = _run("lower", s / "model.qat.onnx", "--plan", s / "plan.yaml", "-o", d / "low2", "--data", data)
    t = doc["totals"]
    assert f"weights  {t['packed_weight_bytes']:,} bytes packed (fp32: {t['fp32_weight_bytes']:,} bytes" in human
    assert t["packed_weight_bytes"] == sum(x["packed_bytes"] for x in doc["layers"])


def test_verify_json_agrees_with_the_human_output(lowered, work):
    _, out = lowered
    _, data = work
    args = ["verify", out, "--data", data, "--limit", "8", "--no-c"]
    doc = _json(*args)
    human = _run(*args)
    assert doc["schema"] == "hqc.verify/1" and doc["samples"] == 8 and doc["identical"] is True
    assert f"numpy reference vs onnxruntime  {doc['agree']['onnxruntime']}/8 identical" in human
    assert f"integer model accuracy       {100 * doc['accuracy_int']:.2f} %" in human


def test_cost_json_equals_the_cost_model(tiny):
    doc = _json("cost", tiny, "--target", "cmos45", "--all", "uni4")
    layers = run_frontend(tiny).layers
    ref = model_cost(layers, {x.name: parse_choice("uni4") for x in layers}, load_target("cmos45"))
    assert doc["schema"] == "hqc.cost/1" and doc["plan"] == "all uni4"
    assert doc["total"]["energy_total_pj"] == pytest.approx(ref.total.energy_total_pj, rel=1e-12)
    assert doc["total"]["storage_bits"] == ref.total.storage_bits
    human = _run("cost", tiny, "--target", "cmos45", "--all", "uni4")
    assert re.search(rf"total\s+{re.escape(format_energy(doc['total']['energy_total_pj']))}\s+fp32", human)


def test_targets_list_json_is_the_table():
    doc = _json("targets", "list")
    human = _run("targets", "list").splitlines()[2:]
    assert doc["schema"] == "hqc.targets/1"
    assert [t["name"] for t in doc["targets"]] == [line.split()[0] for line in human]
    cmos = next(t for t in doc["targets"] if t["name"] == "cmos45")
    assert cmos["origin"] == "builtin" and cmos["location"].endswith("cmos45.yaml") and cmos["shadowed"] is False


def test_targets_show_json_is_the_yaml_and_the_per_mac_table():
    doc = _json("targets", "show", "cmos45")
    assert doc["schema"] == "hqc.target/1" and doc["name"] == "cmos45"
    # the --yaml table, with the bit widths as JSON object keys (strings)
    assert doc["table"] == json.loads(json.dumps(yaml.safe_load(_run("targets", "show", "cmos45", "--yaml"))))
    target = load_target("cmos45")
    human = _run("targets", "show", "cmos45")
    for name, e in doc["mac_energy_pj"].items():
        assert e == mac_energy_pj(parse_choice(name), target)
        assert re.search(rf"^\s+{name}\s+{e:.6g}\s", human, re.M), name


def test_one_set_of_defaults():
    c, s = CompileConfig(), SearchConfig()
    assert (c.epochs, c.finetune_epochs, c.batch_size, c.seed, c.device) == \
        (s.epochs, s.finetune_epochs, s.batch_size, s.seed, s.device)
    from hqc.cli_compile import compile_cmd
    from hqc.cli_search import search

    opts = [{p.name: p for p in cmd.params} for cmd in (compile_cmd, search)]
    shared = set(opts[0]) & set(opts[1])
    assert {"data", "target", "out", "plan", "lam", "epochs", "finetune_epochs", "batch_size", "seed", "device",
            "config_path", "as_json"} <= shared
    for name in shared:
        assert opts[0][name].default == opts[1][name].default, name
        assert opts[0][name].help == opts[1][name].help, name
    assert (opts[0]["epochs"].default, opts[0]["finetune_epochs"].default) == (c.epochs, c.finetune_epochs)
    assert "[default: 6]" in CliRunner().invoke(main, ["search", "--help"]).stdout


@pytest.mark.parametrize(("device", "message"), [
    ("gpu", r"error: options: device must be cpu, cuda or cuda:N \(N = 0, 1, \.\.\.\), got 'gpu'"),
    ("cuda:x", r"error: options: device must be cpu, cuda or cuda:N"),
    ("cuda:99", r"error: device 'cuda:99' requested but torch (has no CUDA device here|sees \d+ CUDA device)"),
])
@pytest.mark.parametrize("cmd", ["search", "compile"])
def test_devices(tiny, work, tmp_path, cmd, device, message):
    _, data = work
    res = CliRunner().invoke(main, [cmd, str(tiny), "--data", str(data), "--device", device,
                                    "-o", str(tmp_path / "o"), "--no-progress"])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(message, lines[0]), lines
    assert not (tmp_path / "o").exists()


def test_cuda_n_is_accepted_in_a_config_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("device: cuda:1\n")
    assert CompileConfig.from_file(p).device == "cuda:1"
    assert np.all([CompileConfig(device=d).validate() is None for d in ("cpu", "cuda", "cuda:0", "cuda:12")])
