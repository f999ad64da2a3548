"""The model zoo exports, checks and runs, and its ground truth describes the models.

Every (builder, kwargs) of ``tests.support.zoo.all_models()`` is exported once per session (the
``zoo_build`` fixture); the checks here are what the frontend tests rely on.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from tests.support import zoo

MODELS = zoo.all_models()
IDS = [zoo.model_id(b, kw) for b, kw in MODELS]

# Threshold flips (a membrane within float rounding of v_threshold) may change a few
# outputs between torch and onnxruntime; allow at most this fraction of outputs to differ.
LOGIT_ATOL = 1e-4
MAX_FLIP_FRACTION = 0.01
WEIGHT_OPS = ("Conv", "Gemm", "MatMul")


def _build(zoo_build, builder, kwargs) -> zoo.ZooModel:
    return zoo_build(builder, kwargs)


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Initializers, Constant outputs, and Identity aliases of either (TorchScript dedup)."""
    g = model.graph
    vals = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    vals[n.output[0]] = numpy_helper.to_array(a.t)
        elif n.op_type == "Identity" and n.input[0] in vals:
            vals[n.output[0]] = vals[n.input[0]]
    return vals


def _run_ort(zm: zoo.ZooModel) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(zm.onnx_path), so, providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    return sess.run(None, {inp.name: zm.example_input})[0]


@pytest.mark.parametrize(("builder", "kwargs"), MODELS, ids=IDS)
def test_exports_checks_and_matches_torch(zoo_build, builder, kwargs):
    zm = _build(zoo_build, builder, kwargs)
    onnx.checker.check_model(str(zm.onnx_path), full_check=True)
    model = onnx.load(str(zm.onnx_path))
    opset = {o.domain: o.version for o in model.opset_import}[""]
    if zm.dynamo:
        assert opset >= 18
    else:
        assert opset == zoo.TORCHSCRIPT_OPSET
    assert not any(n.op_type in ("Loop", "Scan") for n in model.graph.node)

    (inp,) = model.graph.input
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == list(zm.example_input.shape)
    assert zm.example_input.dtype == np.float32
    assert zm.example_input.shape[zm.time_axis] == zm.T
    assert zm.example_input.shape[zm.batch_axis] == 1

    y = _run_ort(zm)
    ref = zm.expected_output
    assert y.shape == ref.shape
    assert ref.ndim == len(zm.output_layout)
    assert ref.shape[zm.output_layout.index("B")] == 1
    bad = ~np.isclose(y, ref, atol=LOGIT_ATOL, rtol=LOGIT_ATOL)
    assert bad.mean() <= MAX_FLIP_FRACTION, f"max |diff| {np.abs(y - ref).max()}"


@pytest.mark.parametrize(("builder", "kwargs"), MODELS, ids=IDS)
def test_layers_match_the_export(zoo_build, builder, kwargs):
    """Each ground-truth layer is one weight; T-unrolled layers share it across T nodes."""
    zm = _build(zoo_build, builder, kwargs)
    model = onnx.load(str(zm.onnx_path))
    consts = _constants(model)
    weight_nodes = [n for n in model.graph.node if n.op_type in WEIGHT_OPS and n.input[1] in consts]
    assert len(weight_nodes) == sum(layer.calls for layer in zm.layers)
    assert len({n.input[1] for n in weight_nodes}) == len(zm.layers)
    modules = dict(zm.module.named_modules())
    for layer in zm.layers:
        m = modules[layer.name]
        assert tuple(m.weight.shape) == layer.weight_shape
        assert layer.calls in (1, zm.T)
    shapes = sorted(tuple(consts[n.input[1]].shape) for n in weight_nodes)
    expected = []
    for layer in zm.layers:
        s = layer.weight_shape
        # A Linear exported as MatMul holds the transposed weight.
        alt = s[::-1] if layer.kind == "linear" else s
        expected += [alt if alt in shapes else s] * layer.calls
    assert sorted(expected) == shapes


@pytest.mark.parametrize(("builder", "kwargs"), MODELS, ids=IDS)
def test_neurons_match_the_export(zoo_build, builder, kwargs):
    """Every neuron fires, and the compare op is the one its comparison names."""
    zm = _build(zoo_build, builder, kwargs)
    assert zm.neurons
    for n in zm.neurons:
        assert n.T == zm.T
        assert 0.0 < n.firing_rate < 1.0, n
        assert abs(n.beta - (1.0 - 1.0 / n.tau)) < 1e-6
        assert (n.v_reset is None) == (n.reset == "subtract")
    ops = [n.op_type for n in onnx.load(str(zm.onnx_path), load_external_data=False).graph.node]
    cmp = {n.comparison for n in zm.neurons}
    assert len(cmp) == 1
    want, other = ("GreaterOrEqual", "Greater") if cmp == {">="} else ("Greater", "GreaterOrEqual")
    assert other not in ops
    assert ops.count(want) >= zm.T * len(zm.neurons)


@pytest.mark.parametrize(("builder", "kwargs"), MODELS, ids=IDS)
def test_neuron_spec_reproduces_each_neuron(zoo_build, builder, kwargs):
    """NeuronSpec.simulate on the recorded input gives the module's spikes."""
    zm = _build(zoo_build, builder, kwargs)
    io = zoo.neuron_io(zm)
    for n in zm.neurons:
        x_seq, spikes = io[n.name]
        assert x_seq.shape[0] == zm.T
        assert (n.simulate(x_seq) != spikes).mean() <= 1e-3, n.name


def test_snntorch_reset_is_after_the_decay(zoo_build):
    """With SpikingJelly's reset timing, the snnTorch subtract model's spikes differ."""
    zm = zoo_build(zoo.snn_leaky_convnet, dict(dynamo=True, reset="subtract"))
    io = zoo.neuron_io(zm)
    n = zm.neurons[0]
    x_seq, spikes = io[n.name]
    assert n.reset_after_decay
    assert (n.simulate(x_seq) == spikes).all()
    other = dataclasses.replace(n, reset_after_decay=False)
    assert (other.simulate(x_seq) != spikes).any()


def test_sj_default_and_user_surrogate_export_the_same_chain(zoo_build):
    a = zoo_build(zoo.sj_lif_convnet, dict(dynamo=True, v_threshold=1.0))
    b = zoo_build(zoo.sj_lif_convnet, dict(dynamo=True, v_threshold=0.5, surrogate="user"))
    assert a.kwargs["surrogate"] == "default" and b.kwargs["surrogate"] == "user"
    ops_a = [n.op_type for n in onnx.load(str(a.onnx_path), load_external_data=False).graph.node]
    ops_b = [n.op_type for n in onnx.load(str(b.onnx_path), load_external_data=False).graph.node]
    assert ops_a == ops_b


def test_sj_default_surrogate_needs_dynamo(tmp_path):
    with pytest.raises(ValueError, match="only the dynamo exporter"):
        zoo.sj_lif_convnet(tmp_path, dynamo=False, surrogate="default")


def test_hqc_lif_node(zoo_dir):
    zm = zoo.hqc_lif_node(zoo_dir)
    onnx.checker.check_model(str(zm.onnx_path))
    model = onnx.load(str(zm.onnx_path))
    (lif,) = [n for n in model.graph.node if n.op_type == "LIF"]
    assert lif.domain == zoo.HQC_DOMAIN
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in lif.attribute}
    (spec,) = zm.neurons
    assert attrs["tau"] == pytest.approx(spec.tau)
    assert attrs["v_threshold"] == pytest.approx(spec.v_threshold)
    assert attrs["v_reset"] == pytest.approx(spec.v_reset)
    assert attrs["decay_input"] == int(spec.decay_input)
    assert attrs["comparison"].decode() == spec.comparison
    assert attrs["time_axis"] == 0
    assert not zm.runnable
    assert 0.0 < spec.firing_rate < 1.0
    assert zm.expected_output.shape == (1, 10)
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime has no ai.hqc::LIF kernel
        _run_ort(zm)


def test_hqc_lif_node_subtract_reset_has_no_v_reset(tmp_path):
    zm = zoo.hqc_lif_node(tmp_path, v_reset=None, comparison=">")
    (lif,) = [n for n in onnx.load(str(zm.onnx_path)).graph.node if n.op_type == "LIF"]
    names = {a.name for a in lif.attribute}
    assert "v_reset" not in names
    assert zm.neurons[0].reset == "subtract"


def test_model_ids_are_unique():
    assert len(set(IDS)) == len(IDS)
