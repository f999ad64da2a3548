"""`hqc export DIR --format nir`: a conv SNN (snnTorch Leaky, hard reset, both exporters)
becomes Input → Conv2d → LIF → Conv2d → LIF → Flatten → Affine → LIF → Output whose
parameters, read back by nir.read, are the lowered integers; simulated by nirtorch it
gives the integer model's logits; a spiking transformer is one error naming its attention
MatMuls."""

from __future__ import annotations

import json
import re
import sys

import nir
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from hqc import intref
from hqc.cli import main
from hqc.export_nir import DT, agreement, export_nir, simulate
from hqc.intops.neuron import _params
from hqc.lowerdir import lower_model
from hqc.pipeline import run_frontend
from hqc.verification import per_sample, to_groups
from tests.support.lowering import MIXED, TINY, events
from tests.support.zoo import (
    _calibrate_bn,
    _export,
    _sj,
    _spikes,
    example_spikformer,
    sj_lif_convnet,
    snn_leaky_convnet,
    snn_leaky_mem_convnet,
)

CONV_NETS = [dict(reset="zero"), dict(reset="zero", dynamo=False)]


def _run(*args: str):
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.stdout, res.stderr


def _lower(onnx_path, tmp, plan_of, shape):
    fe = run_frontend(str(onnx_path))
    plan = {layer.name: plan_of(i) for i, layer in enumerate(fe.layers)}
    x = events(shape, seed=3, lam=0.5).astype(np.uint8)
    data = tmp / "events.npz"
    np.savez(data, x=x[:4], y=np.zeros(4, np.int64), x_val=x[4:], y_val=np.arange(len(x) - 4) % 10)
    lower_model(onnx_path, plan, tmp / "low", data=data, frontend=fe)
    return tmp / "low", data


@pytest.fixture(scope="module", params=range(len(CONV_NETS)), ids=["dynamo", "ts"])
def conv_net(request, zoo_build, tmp_path_factory):
    zm = zoo_build(snn_leaky_convnet, CONV_NETS[request.param])
    # all five quantizers: fc (the head) fp32 → its integer weights are on the fp32 grid
    d, data = _lower(zm.onnx_path, tmp_path_factory.mktemp("nir"), lambda i: ("uni4", "pot4", "fp32")[i], (44, 4, 2, 16, 16))
    return zm, d, data


def test_graph_read_back_holds_the_lowered_integers(conv_net):
    zm, d, _ = conv_net
    r = export_nir(d)
    g = nir.read(str(r.path))
    low = intref.load_lowered(d / "lowered.onnx")
    layers = {n.attrs["layer"]: n for n in low.nodes() if n.op in ("QConv", "QLinear")}
    lifs = {n.attrs["neuron"]: n for n in low.nodes() if n.op == "LIF"}
    kinds = {name: type(n).__name__ for name, n in g.nodes.items()}
    assert sorted(kinds.values()) == sorted(["Input", "Conv2d", "LIF", "Conv2d", "LIF", "Flatten", "Affine",
                                             "LIF", "Output"])
    assert set(layers) | set(lifs) <= set(g.nodes)
    for name, node in layers.items():
        w = np.asarray(node.attrs["w"])
        assert np.array_equal(np.asarray(g.nodes[name].weight, np.float64), w.astype(np.float64)), name
    conv1 = g.nodes["conv1"]
    assert tuple(conv1.stride) == (1, 1) and tuple(conv1.padding) == (1, 1)
    assert tuple(g.nodes["conv2"].stride) == (2, 2)
    for name, node in lifs.items():
        p = _params(node.attrs)
        n = g.nodes[name]
        meta = n.metadata["hqc"]
        theta = np.broadcast_to(p["theta"][0], n.v_threshold.shape)
        assert np.array_equal(np.asarray(meta["theta"]), theta) and np.array_equal(n.v_threshold, theta - 0.5)
        assert int(meta["decay_mult"]) == p["m"] and int(meta["tau_shift"]) == p["k"]
        assert np.array_equal(np.asarray(meta["bias"]), np.broadcast_to(p["bias"][0], n.v_threshold.shape))
        alpha = 1 - p["m"] / 2 ** p["k"]  # β = 0.9 → m/2^k = round(0.9·2^16)/2^16
        assert np.allclose(n.tau, DT / alpha, rtol=1e-12) and np.all(n.v_reset == 0) and np.all(n.v_leak == 0)
        gain = np.broadcast_to(p["sign"][0], n.r.shape) * 2.0 ** (p["F"] + p["xs"] - p["k"])
        assert np.allclose(n.r * alpha, gain, rtol=1e-12)
        # the layer before the neuron carries its fixed-point bias σ·B·2^−F
        src = [a for a, b in g.edges if b == name][0]
        bias = np.asarray(g.nodes[src].bias)
        want = (p["sign"] * p["bias"] * 2.0 ** -p["F"]).reshape(p["bias"].shape[1], -1)[:, 0]
        assert np.array_equal(bias, want.astype(np.float32)), name
    ro = g.nodes["output"].metadata["hqc"]
    assert ro["sum_over_time"] and (g.metadata["hqc"]["dt"], g.metadata["hqc"]["T"]) == (DT, zm.T)


def test_nirtorch_simulation_gives_the_integer_models_class(conv_net):
    zm, d, data = conv_net
    r = export_nir(d)
    doc = json.loads((d / "lowering.json").read_text())
    x = np.load(data)["x_val"].astype(np.float32)
    groups = to_groups(x, doc["input_layout"], tuple(doc["input"]["shape"]))
    ref = per_sample(intref.run(intref.load_lowered(d / "lowered.onnx"), groups)[0], len(x))
    sim = per_sample(simulate(r.path, groups, doc["input_layout"]), len(x))
    assert (sim.argmax(axis=1) == ref.argmax(axis=1)).mean() >= 0.98
    # spike counts × the readout: the simulated logits are the integer logits on these inputs
    assert np.array_equal(sim, ref.astype(np.float64))
    a = agreement(d, r.path, data)
    assert a.samples == len(x) and a.same_prediction == int((sim.argmax(1) == ref.argmax(1)).sum())


def test_cli_writes_the_nir_file(conv_net, tmp_path):
    zm, d, data = conv_net
    out = tmp_path / "net.nir"
    res = CliRunner().invoke(main, ["export", str(d), "--format", "nir", "-o", str(out), "--data", str(data),
                                    "--limit", "8"])
    assert res.exit_code == 0, res.stderr
    assert "Affine" in res.stdout and "same prediction 8/8" in res.stdout
    assert set(nir.read(str(out)).nodes) == set(nir.read(str(export_nir(d).path)).nodes)


def test_spiking_transformer_is_one_error_naming_the_attention(zoo_build, tmp_path):
    zm = zoo_build(example_spikformer, TINY)
    d, _ = _lower(zm.onnx_path, tmp_path, lambda i: MIXED[i % 5], (6, 2, 2, 16, 16))
    code, out, err = _run("export", str(d), "--format", "nir")
    assert code == 2, (code, out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in out + err
    assert re.match(r"error: export nir: NIR has no matmul or product of two activations; the attention nodes ", lines[0])
    matmuls = [n.name for n in intref.load_lowered(d / "lowered.onnx").nodes() if n.op == "MatMul"]
    assert len(matmuls) == 2 and all(m in lines[0] for m in matmuls)
    assert re.search(r"\(\S*q_lif x \S*k_lif\)", lines[0]), lines[0]  # q·kᵀ, named by its neurons
    assert not (d / "model.nir").exists()


@pytest.mark.parametrize("builder, kwargs, shape, pattern", [
    (sj_lif_convnet, {}, (6, 4, 2, 16, 16), r"error: export nir: node '[^']+' \(MaxPool\): NIR has no max pooling \(SumPool2d and AvgPool2d only\)"),
    (snn_leaky_mem_convnet, dict(reset="zero"), (6, 2, 2, 16, 16),
     r"error: export nir: neuron '\w+': its membrane is read out; a NIR LIF outputs spikes only"),
], ids=["maxpool", "membrane-readout"])
def test_what_nir_cannot_express_is_one_error(zoo_build, tmp_path, builder, kwargs, shape, pattern):
    zm = zoo_build(builder, kwargs)
    d, _ = _lower(zm.onnx_path, tmp_path, lambda i: "uni4", shape)
    code, out, err = _run("export", str(d), "--format", "nir")
    assert code == 2 and "Traceback" not in out + err
    assert re.fullmatch(pattern + "\n", err), err
    assert not (d / "model.nir").exists()


def test_subtractive_reset_is_one_error(zoo_build, tmp_path):
    zm = zoo_build(snn_leaky_convnet, dict(reset="subtract"))
    d, _ = _lower(zm.onnx_path, tmp_path, lambda i: "uni4", (6, 4, 2, 16, 16))
    code, out, err = _run("export", str(d), "--format", "nir")
    assert code == 2 and "Traceback" not in out + err
    assert re.fullmatch(r"error: export nir: neuron 'lif1\w*': a (subtract|lagged) reset; NIR's LIF resets to "
                        r"v_reset only\n", err), err
    assert not (d / "model.nir").exists()


class IFPoolNet(nn.Module):
    """SpikingJelly: conv+BN → IFNode → AvgPool2d → conv+BN → LIFNode τ 2 → Linear, mean over T."""

    def __init__(self) -> None:
        super().__init__()
        _, layer, neuron = _sj()
        self.c1 = layer.SeqToANNContainer(nn.Conv2d(2, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.n1 = neuron.IFNode(v_threshold=1.0, v_reset=0.0, step_mode="m")
        self.p1 = layer.SeqToANNContainer(nn.AvgPool2d(2))
        self.c2 = layer.SeqToANNContainer(nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
        self.n2 = neuron.LIFNode(tau=2.0, v_reset=0.0, step_mode="m")
        self.fc = layer.Linear(16 * 8 * 8, 10, step_mode="m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.n2(self.c2(self.p1(self.n1(self.c1(x)))))
        return self.fc(x.flatten(2)).mean(0)


def test_if_sum_pool_and_a_linear_readout(tmp_path):
    torch.manual_seed(0)
    model = IFPoolNet()
    rng = np.random.default_rng(0)
    _calibrate_bn(model, [_spikes(rng, (4, 8, 2, 16, 16))], 0)
    model.eval()
    path = tmp_path / "ifpool.onnx"
    _export(model, _spikes(rng, (4, 1, 2, 16, 16)), path, dynamo=True)
    d, data = _lower(path, tmp_path, lambda i: ("uni4", "pot2", "uni2")[i],
                     (36, 4, 2, 16, 16))
    r = export_nir(d)
    assert [(n.name, n.nir_type) for n in r.nodes if n.nir_type not in ("Input", "Output")] == [
        ("c1.0", "Conv2d"), ("n1", "IF"), (r.nodes[3].name, "SumPool2d"), ("c2.0", "Conv2d"), ("n2", "LIF"),
        ("fc", "Linear"), ("n2.flatten", "Flatten")]
    g = nir.read(str(r.path))
    pool = g.nodes[r.nodes[3].name]
    assert list(pool.kernel_size) == [2, 2] and list(pool.stride) == [2, 2]
    low = intref.load_lowered(d / "lowered.onnx")
    rq = next(n for n in low.nodes() if n.op == "Requant")
    ro = g.nodes["output"].metadata["hqc"]
    assert np.array_equal(ro["mult"], np.asarray(rq.attrs["mult"]).reshape(-1)) and len(set(ro["mult"])) > 1
    assert np.array_equal(ro["bias"], np.asarray(rq.attrs["bias"]).reshape(-1))
    n1 = next(n for n in low.nodes() if n.op == "LIF" and n.attrs["neuron"] == "n1")
    p = _params(n1.attrs)
    assert p["m"] == 1 << p["k"]  # IF: β̂ = 1
    assert np.allclose(g.nodes["n1"].r * DT, np.broadcast_to(p["sign"][0], g.nodes["n1"].r.shape)
                       * 2.0 ** (p["F"] + p["xs"] - p["k"]), rtol=1e-12)
    doc = json.loads((d / "lowering.json").read_text())
    x = np.load(data)["x_val"].astype(np.float32)
    groups = to_groups(x, doc["input_layout"], tuple(doc["input"]["shape"]))
    ref = per_sample(intref.run(low, groups)[0], len(x))
    sim = per_sample(simulate(r.path, groups, doc["input_layout"]), len(x))
    assert np.array_equal(sim, ref.astype(np.float64))  # exact decay (τ 2, IF): the same integers


def test_without_the_nir_extra_is_one_error(conv_net, monkeypatch, tmp_path):
    zm, d, data = conv_net
    monkeypatch.setitem(sys.modules, "nir", None)  # import nir → ImportError
    code, out, err = _run("export", str(d), "--format", "nir", "-o", str(tmp_path / "x.nir"))
    assert code == 2 and "Traceback" not in out + err
    assert err == "error: hqc export --format nir needs the nir package: pip install 'hqc-snn[nir]'\n"
    assert not (tmp_path / "x.nir").exists()
