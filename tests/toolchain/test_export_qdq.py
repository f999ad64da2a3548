"""`hqc export DIR --format qdq`: the weights are the lowered integers with hqc.quant's
units (DequantizeLinear(w, unit) = the fake-quant weight bit for bit), the file is smaller
than model.int.onnx, onnxruntime on it predicts the class of onnxruntime on
model.int.onnx, and every user error is one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from hqc import int_onnx, intref
from hqc.choices import parse_choice
from hqc.errors import ConfigError
from hqc.export_qdq import QDQ_ONNX, agreement, export_qdq, qdq_session
from hqc.lowerdir import lower_model
from hqc.passes.lower_int import weight_transposed
from hqc.pipeline import run_frontend
from hqc.quant import fake_quant_numpy
from hqc.verification import per_sample, to_groups
from tests.support.cli import one_line_error as _one_line_error
from tests.support.cli import run_cli as _run
from tests.support.lowering import MIXED, TINY, events
from tests.support.zoo import example_spikformer, snn_leaky_convnet

STORAGE = {"uni4": "int4", "uni2": "int4", "pot2": "int4", "pot4": "int16", "fp32": "float32"}
MODELS = {
    "spikformer-ts": (example_spikformer, TINY, (24, 2, 2, 16, 16)),  # BT input, TorchScript (opset 17)
    "leaky-convnet-dynamo": (snn_leaky_convnet, dict(reset="zero"), (24, 4, 2, 16, 16)),  # TB, Gemm head
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def lowered(request, zoo_build, tmp_path_factory):
    builder, kwargs, shape = MODELS[request.param]
    zm = zoo_build(builder, kwargs)
    tmp = tmp_path_factory.mktemp("qdq")
    fe = run_frontend(str(zm.onnx_path))
    plan = {layer.name: MIXED[i % 5] for i, layer in enumerate(fe.layers)}
    x = events(shape, seed=7, lam=0.6).astype(np.uint8)
    data = tmp / "events.npz"
    np.savez(data, x=x[:4], y=np.zeros(4, np.int64), x_val=x[4:], y_val=np.arange(len(x) - 4) % 10)
    out = tmp / "low"
    lower_model(zm.onnx_path, plan, out, data=data, frontend=fe)
    return zm, fe, plan, data, out


def test_weights_are_the_lowered_integers_times_the_quant_units(lowered):
    zm, fe, plan, _, d = lowered
    r = export_qdq(d)
    assert r.path == d / QDQ_ONNX
    m = onnx.load(str(r.path))
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    dq = {n.output[0]: n for n in m.graph.node if n.op_type == "DequantizeLinear"}
    g = intref.load_lowered(d / "lowered.onnx")
    ints = {n.attrs["layer"]: np.asarray(n.attrs["w"]) for n in g.nodes() if n.op in ("QConv", "QLinear")}
    assert {x.name: x.storage for x in r.layers} == {k: STORAGE[v] for k, v in plan.items()}
    for layer in fe.layers:
        w = fe.graph.const(layer.weight)
        if plan[layer.name] == "fp32":
            assert layer.weight not in dq and np.array_equal(inits[layer.weight], w)
            continue
        node = dq[layer.weight]
        q, s = inits[node.input[0]], inits[node.input[1]]
        t = weight_transposed(fe.graph, layer)
        axis = next(a.i for a in node.attribute if a.name == "axis")
        assert axis == (1 if t else 0)
        q_torch = q.T if t else q
        assert np.array_equal(q_torch, ints[layer.name])  # the lowered integers
        w_torch = w.T if t else w
        deq = q_torch.astype(np.float32) * s.reshape((-1,) + (1,) * (q.ndim - 1))
        assert np.array_equal(deq, fake_quant_numpy(w_torch, parse_choice(plan[layer.name])))
    assert r.bytes < r.int_onnx_bytes == (d / "model.int.onnx").stat().st_size
    assert r.opset == 21 and m.opset_import[0].version == 21


def test_onnxruntime_predicts_the_integer_models_class(lowered):
    zm, fe, plan, data, d = lowered
    r = export_qdq(d)
    doc = json.loads((d / "lowering.json").read_text())
    x = np.load(data)["x_val"].astype(np.float32)
    groups = to_groups(x, doc["input_layout"], tuple(doc["input"]["shape"]))
    ref = per_sample(int_onnx.run_ort(int_onnx.session(str(d / "model.int.onnx")), groups), len(x))
    sess = qdq_session(r.path)
    name = sess.get_inputs()[0].name
    outs = np.stack([sess.run(None, {name: grp.astype(np.float32)})[0] for grp in groups])
    if doc["logits"].get("mean_over_time"):
        outs = outs.mean(axis=1)
    pred = per_sample(outs, len(x)).argmax(axis=1)
    assert (pred == ref.argmax(axis=1)).mean() >= 0.98
    a = agreement(d, r.path, data)
    assert a.samples == len(x) and a.same_prediction == int((pred == ref.argmax(axis=1)).sum())
    onnx_tensors = {t for n in onnx.load(str(r.path)).graph.node for t in n.output}
    stacked = [nr for nr in doc["neurons"] if nr["tensor"] in onnx_tensors]
    # snnTorch's loop is unrolled per step: only the last neuron's stacked spikes exist
    assert len(stacked) == (1 if zm.name.startswith("snn_leaky") else len(doc["neurons"]))
    assert a.neurons_compared == len(stacked) and a.neurons == len(doc["neurons"])
    assert a.spike_agreement >= 0.999


def test_cli_json_and_errors(lowered, tmp_path):
    zm, fe, plan, data, d = lowered
    code, out, err = _run("export", str(d), "--format", "qdq", "-o", str(tmp_path / "m.onnx"),
                          "--data", str(data), "--limit", "6", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert list(doc)[:2] == ["schema", "format"] and (doc["schema"], doc["format"]) == ("hqc.export/1", "qdq")
    assert doc["path"] == str(tmp_path / "m.onnx") and doc["bytes"] == (tmp_path / "m.onnx").stat().st_size
    assert doc["agreement"]["samples"] == 6 and doc["agreement"]["prediction_agreement"] >= 0.98
    _one_line_error(*_run("export", str(tmp_path / "nope"), "--format", "qdq"), r"no such folder")
    _one_line_error(*_run("export", str(tmp_path), "--format", "qdq"), r"not an hqc lowering folder")
    _one_line_error(*_run("export", str(d), "--format", "qdq", "-o", str(tmp_path / "no" / "m.onnx")),
                    r"no such folder for -o")
    assert not (tmp_path / "no").exists()
    before = sorted(p.name for p in tmp_path.iterdir())
    bad = tmp_path / "bad"
    bad.mkdir()
    doc = json.loads((d / "lowering.json").read_text())
    doc["model"]["fingerprint"] = "0" * 16
    (bad / "lowering.json").write_text(json.dumps(doc))
    _one_line_error(*_run("export", str(bad), "--format", "qdq"), r"changed since it was lowered")
    assert sorted(p.name for p in bad.iterdir()) == ["lowering.json"]
    x = np.load(data)["x_val"].astype(np.float32)
    hot = tmp_path / "data" / "hot.npz"
    hot.parent.mkdir()
    np.savez(hot, x=x[:2], y=np.zeros(2, np.int64), x_val=x + 300, y_val=np.zeros(len(x), np.int64))
    _one_line_error(*_run("export", str(d), "--format", "qdq", "-o", str(tmp_path / "h.onnx"), "--data",
                          str(hot)), r"hot.npz:val: inputs span 300\.\.\d+, outside the lowered input range 0\.\.255")
    doc["model"]["path"] = str(tmp_path / "gone.onnx")
    (bad / "lowering.json").write_text(json.dumps(doc))
    _one_line_error(*_run("export", str(bad), "--format", "qdq"), r"gone.onnx: the lowered model's source is gone")
    code, out, err = _run("export", str(d), "--format", "qdq", "-o", str(bad))  # click's usage error
    assert code == 2 and "is a directory" in err and "Traceback" not in out + err
    with pytest.raises(ConfigError, match=r"bad: is a folder; -o names the output file"):
        export_qdq(d, bad)
    assert sorted(p.name for p in bad.iterdir()) == ["lowering.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before + ["bad", "data"])  # no h.onnx


def test_a_compile_folder_exports_from_its_model_qat(lowered, tmp_path):
    """`hqc compile` lowers DIR/model.qat.onnx from a temporary folder: lowering.json
    records a path that no longer exists, and the export reads the copy in DIR."""
    zm, fe, plan, data, d = lowered
    c = tmp_path / "compiled"
    shutil.copytree(d, c)
    shutil.copyfile(zm.onnx_path, c / "model.qat.onnx")
    for ext in zm.onnx_path.parent.glob(zm.onnx_path.name + ".data"):  # dynamo's external weights
        shutil.copyfile(ext, c / ext.name)
    doc = json.loads((c / "lowering.json").read_text())
    doc["model"]["path"] = str(tmp_path / "gone" / "model.qat.onnx")
    (c / "lowering.json").write_text(json.dumps(doc))
    r = export_qdq(c)
    assert r.source == c / "model.qat.onnx"
    ref = onnx.load(str(export_qdq(d, tmp_path / "from_source.onnx").path))
    assert onnx.load(str(r.path)).graph.SerializeToString() == ref.graph.SerializeToString()
