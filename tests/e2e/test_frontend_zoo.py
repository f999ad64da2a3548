"""Frontend and backend on every zoo model (SpikingJelly, snnTorch, hand-written, the
example Spikformer; both exporters): every Conv/Linear once, every LIF once with its
parameters, and the PyTorch backend equal to onnxruntime on the original ONNX (spike
agreement per LIF ≥ 99.9 %, logits within tolerance) at a batch larger than the export
batch."""

from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from onnx import TensorProto, helper

from hqc.backend import TorchModel
from hqc.cli import main
from hqc.pipeline import run_frontend
from tests.support.helpers import run_ort
from tests.support.zoo import all_models, hqc_lif_node, model_id

MODELS = all_models()
IDS = [model_id(b, k) for b, k in MODELS]
LOGIT_ATOL = 1e-4
SPIKE_AGREEMENT = 0.999


def _data_layout(x: np.ndarray, layout: str) -> np.ndarray:
    """Model-layout input (export batch) → data layout (N, T, ...)."""
    b, t = layout.index("B"), layout.index("T")
    return np.ascontiguousarray(np.moveaxis(x, [b, t], [0, 1]))


def _model_layout(xd: np.ndarray, layout: str) -> np.ndarray:
    b, t = layout.index("B"), layout.index("T")
    return np.ascontiguousarray(np.moveaxis(xd, [0, 1], [b, t]))


def _samples(zm, n: int, seed: int = 0) -> np.ndarray:
    """n data-layout samples: the example input plus seeded variations of it."""
    base = _data_layout(zm.example_input, zm.input_layout)[0]
    rng = np.random.default_rng(seed)
    xs = [base]
    for _ in range(n - 1):
        keep = rng.random(base.shape) < 0.8
        xs.append(np.where(keep, base, rng.permutation(base.reshape(-1)).reshape(base.shape)).astype(np.float32))
    return np.stack(xs).astype(np.float32)


@pytest.mark.parametrize(("builder", "kwargs"), MODELS, ids=IDS)
def test_inspect_lists_every_layer_and_neuron_once(zoo_build, builder, kwargs):
    zm = zoo_build(builder, kwargs)
    res = CliRunner().invoke(main, ["inspect", str(zm.onnx_path), "--json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    got_layers = sorted(x["name"] for x in doc["layers"])
    assert got_layers == sorted(layer.name for layer in zm.layers)
    by_name = {x["name"]: x for x in doc["layers"]}
    for spec in zm.layers:
        assert tuple(by_name[spec.name]["weight_shape"]) == tuple(spec.weight_shape), spec.name
        assert by_name[spec.name]["kind"] == spec.kind
    neurons = doc["neurons"]
    assert len(neurons) == len(zm.neurons)
    want = sorted(
        (n.v_threshold, "hard" if n.v_reset is not None else "subtract", n.comparison) for n in zm.neurons
    )
    got = sorted((x["v_threshold"], x["reset"], x["comparison"]) for x in neurons)
    assert got == want
    for x in neurons:  # tau/beta as the library defines it
        spec = min(zm.neurons, key=lambda n: abs(n.v_threshold - x["v_threshold"]))
        assert math.isclose(x["beta"], spec.beta, rel_tol=1e-5, abs_tol=1e-6)
        if x["reset"] == "hard":
            assert x["v_reset"] == pytest.approx(spec.v_reset)
    names = {x["name"] for x in neurons}
    if zm.dynamo or builder.__name__ != "snn_leaky_convnet":
        assert names == {n.name for n in zm.neurons}


def _spike_tensors(fe, original: onnx.ModelProto) -> dict[str, list[str]]:
    """For each LIF node, the original-model tensors that carry its spikes."""
    names = {v for n in original.graph.node for v in n.output}
    out = {}
    g = fe.graph
    for node in g.nodes():
        if node.op != "LIF":
            continue
        s = node.outputs[0]
        if s in names:
            out[node.name] = [s]
        else:
            out[node.name] = [c.outputs[0] for c in g.consumers(s) if c.op == "Gather" and c.outputs[0] in names]
        assert out[node.name], node.name
    return out


@pytest.mark.parametrize(("builder", "kwargs"), MODELS, ids=IDS)
def test_backend_matches_onnxruntime(zoo_build, builder, kwargs):
    zm = zoo_build(builder, kwargs)
    fe = run_frontend(zm.onnx_path)
    model = TorchModel(fe.graph).eval()
    xd = _samples(zm, 6)
    original = onnx.load(str(zm.onnx_path))
    spikes = _spike_tensors(fe, original)
    extra = sorted({t for ts in spikes.values() for t in ts})
    probe = onnx.load(str(zm.onnx_path))
    out_name = probe.graph.output[0].name
    for t in extra:
        probe.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    ref_logits, ref_spikes = [], {t: [] for t in extra}
    for i in range(len(xd)):
        feeds = {probe.graph.input[0].name: _model_layout(xd[i : i + 1], zm.input_layout)}
        res = run_ort(probe, feeds)
        ref_logits.append(res[0])
        for t, r in zip(extra, res[1:], strict=True):
            ref_spikes[t].append(r)
    ax = model.output_batch_axis[0]
    ref = np.moveaxis(np.concatenate(ref_logits, axis=ax), ax, 0)
    with torch.no_grad():
        logits = model.forward_all(torch.from_numpy(xd))[0].numpy()  # the raw output (per step for SJ models)
        got = [None, *model.forward_all(torch.from_numpy(xd), extra)]
    assert logits.shape == ref.shape
    close = np.isclose(logits, ref, rtol=1e-5, atol=LOGIT_ATOL).all(axis=tuple(range(1, ref.ndim)))
    assert close.mean() >= 5 / 6, f"{out_name}: {np.abs(logits - ref).max()}"
    for lif, ts in spikes.items():
        agree = []
        for t in ts:
            ours = got[1 + extra.index(t)].numpy().reshape(-1)
            theirs = np.stack(ref_spikes[t]).reshape(-1)
            agree.append(ours == theirs)
        rate = float(np.concatenate(agree).mean())
        assert rate >= SPIKE_AGREEMENT, (lif, rate)


def test_hqc_lif_node_is_accepted_as_is(tmp_path):
    zm = hqc_lif_node(tmp_path, v_threshold=0.5, v_reset=None, comparison=">")
    fe = run_frontend(zm.onnx_path)
    assert [n.op for n in fe.graph.nodes()].count("LIF") == 1
    (name, p, _), = fe.neurons
    assert p.v_threshold == 0.5 and p.reset == "subtract" and p.comparison == ">"
    model = TorchModel(fe.graph).eval()
    xd = _data_layout(zm.example_input, zm.input_layout)
    with torch.no_grad():
        y = model(torch.from_numpy(xd)).numpy()
    np.testing.assert_allclose(y, zm.expected_output, rtol=1e-5, atol=LOGIT_ATOL)


def test_backend_trains_with_surrogate_gradient(zoo_build):
    builder, kwargs = next((b, k) for b, k in MODELS if b.__name__ == "example_spikformer")
    zm = zoo_build(builder, kwargs)
    fe = run_frontend(zm.onnx_path)
    model = TorchModel(fe.graph).train()
    xd = torch.from_numpy(_samples(zm, 16))
    loss = model(xd).logsumexp(-1).mean()
    loss.backward()
    grads = {n: model.parameter(n).grad for n in model.weight_names}
    assert all(g is not None for g in grads.values())
    assert sum(float(g.abs().sum() > 0) for g in grads.values()) >= len(grads) - 1
