"""`hqc lower` and `hqc verify` through CliRunner: the folder they write, agreement of the
three backends with the integer accuracy next to the fake-quant accuracy, and every
user-facing error as one line, exit code 2 and no output folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from hqc.pipeline import run_frontend
from tests.support.cli import one_line_error as _one_line_error
from tests.support.cli import run_cli as _run
from tests.support.lowering import MIXED, TINY, events
from tests.support.zoo import example_spikformer


@pytest.fixture(scope="module")
def setup(zoo_build, tmp_path_factory):
    zm = zoo_build(example_spikformer, TINY)
    tmp = tmp_path_factory.mktemp("lower_cli")
    fe = run_frontend(str(zm.onnx_path))
    plan = tmp / "plan.yaml"
    plan.write_text(yaml.safe_dump({"layers": {layer.name: {"choice": MIXED[i % 5]}
                                               for i, layer in enumerate(fe.layers)}}))
    x = events((30, zm.T, 2, 16, 16), seed=11, lam=0.6).astype(np.uint8)
    y = np.random.default_rng(0).integers(0, 10, 30)
    data = tmp / "events.npz"
    np.savez(data, x=x[:20], y=y[:20], x_val=x[20:], y_val=y[20:])
    return zm, fe, plan, data, tmp


def test_lower_then_verify(setup):
    zm, fe, plan, data, tmp = setup
    out = tmp / "build" / "tiny"
    code, stdout, err = _run("lower", str(zm.onnx_path), "--plan", str(plan), "-o", str(out), "--data", str(data))
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["kernels", "lowered.onnx", "lowering.json", "model.int.onnx"]
    assert sorted(p.name for p in (out / "kernels").iterdir()) == ["Makefile", "hqc_model.c", "hqc_model.h", "main.c"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]
    doc = json.loads((out / "lowering.json").read_text())
    assert doc["schema"] == "hqc.lowering/1"
    assert [r["name"] for r in doc["layers"]] == [layer.name for layer in fe.layers]
    for r in doc["layers"]:
        assert set(r) >= {"quantizer", "bits", "packed_bytes", "fraction_bits"}
    assert doc["totals"]["packed_weight_bytes"] == sum(-(-r["params"] * r["bits"] // 8) for r in doc["layers"])
    assert doc["input"]["check"]["integer_valued"] is True
    assert "integer-valued in" in stdout and "bytes packed" in stdout

    code, stdout, err = _run("verify", str(out), "--data", str(data), "--json")
    assert code == 0, err
    r = json.loads(stdout)
    assert r["samples"] == 10 and r["agree"] == {"onnxruntime": 10, "c": 10} and r["identical"]
    assert abs(r["accuracy_int"] - r["accuracy_float"]) <= 0.1 + 1e-9
    assert r["spike_agreement"] >= 0.999
    code, stdout, err = _run("verify", str(out), "--data", str(data), "--split", "train", "--limit", "7", "--no-c")
    assert code == 0, err
    assert "7/7 identical integer logits" in stdout and "fake-quant float accuracy" in stdout
    assert "vs c" not in stdout


def test_relower_replaces_only_lowering_folders(setup):
    zm, _, plan, _, tmp = setup
    out = tmp / "again"
    assert _run("lower", str(zm.onnx_path), "--plan", str(plan), "-o", str(out))[0] == 0
    assert _run("lower", str(zm.onnx_path), "--plan", str(plan), "-o", str(out))[0] == 0
    other = tmp / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    _one_line_error(*_run("lower", str(zm.onnx_path), "--plan", str(plan), "-o", str(other)),
                    r"precious: exists and is not an hqc lowering folder")
    assert (other / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("layers", "pattern"),
    [
        ({"no.such.layer": "uni4"}, r"plan\.yaml:layers\.no\.such\.layer: no layer of that name in the model"),
        ({"head": "uni16"}, r"plan\.yaml:layers\.head: unknown quantizer 'uni16'"),
        ({"head": {"choice": "int8"}}, r"plan\.yaml:layers\.head\.choice: unknown quantizer 'int8'"),
        ({"head": "pot9"}, r"power-of-two bits must be in 2\.\.5"),
    ],
    ids=["unknown-layer", "uni16", "int8", "pot9"],
)
def test_bad_plan_is_one_line_and_leaves_nothing(setup, layers, pattern):
    zm, fe, _, _, tmp = setup
    full = {layer.name: "uni4" for layer in fe.layers}
    full.update(layers)
    d = tmp / f"bad_{abs(hash(pattern))}"
    d.mkdir()
    plan = d / "plan.yaml"
    plan.write_text(yaml.safe_dump({"layers": full}))
    out = d / "out"
    _one_line_error(*_run("lower", str(zm.onnx_path), "--plan", str(plan), "-o", str(out)), pattern)
    assert sorted(p.name for p in d.iterdir()) == ["plan.yaml"]


def test_non_integer_data_is_refused(setup):
    zm, _, plan, _, tmp = setup
    d = tmp / "frac"
    d.mkdir()
    x = events((4, zm.T, 2, 16, 16), seed=1) + 0.25
    np.savez(d / "frac.npz", x=x, y=np.zeros(4, np.int64))
    _one_line_error(*_run("lower", str(zm.onnx_path), "--plan", str(plan), "-o", str(d / "out"),
                          "--data", str(d / "frac.npz")), r"frac\.npz:train: \d+ input values are not integers")
    assert not (d / "out").exists()


def test_failure_while_writing_leaves_nothing(setup, monkeypatch):
    from hqc import intref

    zm, _, plan, _, tmp = setup
    d = tmp / "crash"
    d.mkdir()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(intref, "save_lowered", boom)
    code, _, err = _run("lower", str(zm.onnx_path), "--plan", str(plan), "-o", str(d / "out"))
    assert code == 2 and "no space left" in err
    assert list(d.iterdir()) == []


def test_verify_errors(setup):
    _, _, _, data, tmp = setup
    empty = tmp / "empty"
    empty.mkdir()
    _one_line_error(*_run("verify", str(empty), "--data", str(data)), r"empty: not an hqc lowering folder")


def test_config_file_gives_the_options_and_the_command_line_wins(setup):
    zm, fe, plan, data, tmp = setup
    flags, conf, over = tmp / "cfg_flags", tmp / "cfg_file", tmp / "cfg_over"
    code, _, err = _run("lower", str(zm.onnx_path), "--plan", str(plan), "-o", str(flags), "--data", str(data),
                        "--logit-bits", "12")
    assert code == 0, err
    cfg = tmp / "lower.yaml"
    cfg.write_text(yaml.safe_dump({"plan": str(plan), "data": str(data), "logit-bits": 12, "resolution_bits": 16}))
    code, _, err = _run("lower", str(zm.onnx_path), "--config", str(cfg), "-o", str(conf))
    assert code == 0, err
    assert (conf / "model.int.onnx").read_bytes() == (flags / "model.int.onnx").read_bytes()
    code, _, err = _run("lower", str(zm.onnx_path), "--config", str(cfg), "-o", str(over), "--logit-bits", "10")
    assert code == 0, err
    assert json.loads((over / "lowering.json").read_text())["options"]["logit_bits"] == 10
    vcfg = tmp / "verify.yaml"
    vcfg.write_text(yaml.safe_dump({"data": str(data), "limit": 4, "no_float": True}))
    code, out, err = _run("verify", str(conf), "--config", str(vcfg), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["samples"] == 4 and doc["accuracy_float"] is None and doc["identical"]


@pytest.mark.parametrize("text, pattern", [
    ("plann: x\n", r"cfg\.yaml:plann: unknown option of hqc lower \(known: data, input_layout, logit_bits, out, plan, resolution_bits\)"),
    ("plan: [\n", r"cfg\.yaml: not valid YAML at line 2, column 1"),
    ("- plan\n", r"cfg\.yaml: expected a mapping of options"),
])
def test_bad_config_file_is_one_line(setup, tmp_path, text, pattern):
    zm = setup[0]
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(text)
    _one_line_error(*_run("lower", str(zm.onnx_path), "--config", str(cfg), "-o", str(tmp_path / "o")), pattern)
    assert not (tmp_path / "o").exists()
