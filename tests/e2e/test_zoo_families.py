"""The model families of the zoo (``tests.support.zoo.family_models()``) export, run and fire.

Each entry is a library's own zoo class (SpikingJelly's transformers and CNNs, snnTorch
Leaky nets with membrane readout) at small widths, exported with both exporters; built
once per session by the ``zoo_build`` fixture. Checked here: onnxruntime reproduces the
torch output, every neuron fires on 5-60 % of its elements on the example input, and the
ground truth (``layers``, ``neurons``) describes the torch module and the export.
"""

from __future__ import annotations

import time

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from tests.support import zoo
from tests.support.helpers import run_ort

MODELS = zoo.family_models()
IDS = [zoo.model_id(b, kw) for b, kw in MODELS]

# Tolerance on outputs, relative to the output scale (max |output|, at least 1). A membrane
# within float rounding of a threshold flips a spike between torch and onnxruntime; allow
# at most this fraction of outputs to differ by more than the tolerance.
OUTPUT_ATOL = 1e-4
MAX_FLIP_FRACTION = 0.05
WEIGHT_OPS = ("Conv", "Gemm", "MatMul")
SPIKE_MISMATCH = 1e-3


@pytest.fixture(scope="module", autouse=True)
def _report_file_time(request: pytest.FixtureRequest):
    """Print this file's wall time (builds included) at its end, past output capture."""
    t0 = time.perf_counter()
    yield
    line = f"{__name__}: {len(MODELS)} family models, {time.perf_counter() - t0:.1f} s"
    plugins = request.config.pluginmanager
    reporter = plugins.get_plugin("terminalreporter")
    capture = plugins.get_plugin("capturemanager")
    if reporter is None or capture is None:  # pragma: no cover - plugins disabled
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(line)


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Initializers, Constant outputs, and Identity aliases of either (TorchScript dedup)."""
    g = model.graph
    vals = {i.name: onnx.numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    vals[n.output[0]] = onnx.numpy_helper.to_array(a.t)
        elif n.op_type == "Identity" and n.input[0] in vals:
            vals[n.output[0]] = vals[n.input[0]]
    return vals


def _weight_modules_called(module: nn.Module, x: np.ndarray) -> list[tuple[str, int]]:
    """(name, calls) of every Conv1d/Conv2d/Linear the forward pass calls, first-call order."""
    calls: dict[str, int] = {}
    handles = []
    for name, m in module.named_modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):

            def hook(mod, args, out, name=name):
                calls[name] = calls.get(name, 0) + 1

            handles.append(m.register_forward_hook(hook))
    try:
        zoo._run(module, x)
    finally:
        for h in handles:
            h.remove()
    return list(calls.items())


def _is_neuron_module(m: nn.Module) -> bool:
    """Any spiking neuron of either library, known to the zoo's parameter functions or not."""
    from spikingjelly.activation_based import neuron

    if isinstance(m, neuron.BaseNode):
        return True
    import snntorch

    return isinstance(m, snntorch.SpikingNeuron)


@pytest.mark.parametrize(("builder", "kwargs"), MODELS, ids=IDS)
def test_onnxruntime_reproduces_torch(zoo_build, builder, kwargs):
    zm = zoo_build(builder, kwargs)
    onnx.checker.check_model(str(zm.onnx_path))
    (got,) = run_ort(zm.onnx_path, {_input_name(zm): zm.example_input})[:1]
    ref = zm.expected_output
    assert got.shape == ref.shape
    assert ref.ndim == len(zm.output_layout)
    scale = max(1.0, float(np.abs(ref).max()))
    bad = np.abs(got - ref) > OUTPUT_ATOL * scale
    assert bad.mean() <= MAX_FLIP_FRACTION, (
        f"{bad.sum()} of {bad.size} outputs differ; max |diff| {np.abs(got - ref).max():.3g}"
        f" (scale {scale:.3g})"
    )


def _input_name(zm: zoo.ZooModel) -> str:
    (inp,) = onnx.load(str(zm.onnx_path), load_external_data=False).graph.input
    return inp.name


@pytest.mark.parametrize(("builder", "kwargs"), MODELS, ids=IDS)
def test_every_neuron_fires_in_range(zoo_build, builder, kwargs):
    """5-60 % on the example input, as recorded and as measured again here."""
    zm = zoo_build(builder, kwargs)
    lo, hi = zoo.FIRING_RANGE
    io = zoo.neuron_io(zm)
    assert set(io) == {n.name for n in zm.neurons}
    for n in zm.neurons:
        assert lo <= n.firing_rate <= hi, (n.name, n.firing_rate)
        assert float(io[n.name][1].mean()) == pytest.approx(n.firing_rate), n.name


@pytest.mark.parametrize(("builder", "kwargs"), MODELS, ids=IDS)
def test_layers_are_the_weight_modules_called(zoo_build, builder, kwargs):
    zm = zoo_build(builder, kwargs)
    called = _weight_modules_called(zm.module, zm.example_input)
    assert [(s.name, s.calls) for s in zm.layers] == called
    modules = dict(zm.module.named_modules())
    for s in zm.layers:
        m = modules[s.name]
        assert s.weight_shape == tuple(m.weight.shape), s.name
        assert s.bias == (m.bias is not None), s.name
        assert s.kind == zoo._layer_kind(m), s.name
        assert s.calls in (1, zm.T), s.name


@pytest.mark.parametrize(("builder", "kwargs"), MODELS, ids=IDS)
def test_layers_match_the_export(zoo_build, builder, kwargs):
    """One constant weight per layer, in ``calls`` Conv/Gemm/MatMul nodes."""
    zm = zoo_build(builder, kwargs)
    model = onnx.load(str(zm.onnx_path))
    consts = _constants(model)
    weight_nodes = [n for n in model.graph.node if n.op_type in WEIGHT_OPS and n.input[1] in consts]
    assert len(weight_nodes) == sum(s.calls for s in zm.layers)
    assert len({n.input[1] for n in weight_nodes}) == len(zm.layers)
    shapes = sorted(tuple(consts[n.input[1]].shape) for n in weight_nodes)
    expected = []
    for s in zm.layers:
        alt = s.weight_shape[::-1] if s.kind == "linear" else s.weight_shape
        expected += [alt if alt in shapes else s.weight_shape] * s.calls
    assert sorted(expected) == shapes


@pytest.mark.parametrize(("builder", "kwargs"), MODELS, ids=IDS)
def test_neurons_are_every_spiking_module(zoo_build, builder, kwargs):
    """Every neuron module is in ``neurons`` with its module's threshold, and NeuronSpec
    reproduces its spikes from its recorded input."""
    zm = zoo_build(builder, kwargs)
    modules = dict(zm.module.named_modules())
    called = {n for n, m in modules.items() if _is_neuron_module(m)}
    assert {n.name for n in zm.neurons} == called
    io = zoo.neuron_io(zm)
    for n in zm.neurons:
        thr = modules[n.name].threshold if n.library == "snntorch" else modules[n.name].v_threshold
        assert n.v_threshold == float(thr), n.name
        assert n.T == zm.T
        assert abs(n.beta - (1.0 - 1.0 / n.tau)) < 1e-6, n.name
        assert (n.v_reset is None) == (n.reset == "subtract"), n.name
        x_seq, spikes = io[n.name]
        assert x_seq.shape[0] == zm.T
        assert (n.simulate(x_seq) != spikes).mean() <= SPIKE_MISMATCH, n.name


def test_calibration_records_every_neuron(zoo_build):
    builder, kwargs = MODELS[0]
    zm = zoo_build(builder, kwargs)
    assert set(zm.calibration) == {n.name for n in zm.neurons}


def test_neuron_kinds_are_recorded(zoo_build):
    """SEW-ResNet runs IFNode, SpikingVGG ParametricLIFNode (with its trained tau)."""
    sew = zoo_build(zoo.sj_sew_resnet, dict(dynamo=True))
    assert {n.kind for n in sew.neurons} == {"if"}
    assert all(n.tau == float("inf") and n.beta == 1.0 for n in sew.neurons)
    vgg = zoo_build(zoo.sj_spiking_vgg, dict(dynamo=True))
    assert {n.kind for n in vgg.neurons} == {"plif"}
    modules = dict(vgg.module.named_modules())
    for n in vgg.neurons:
        q = float(torch.sigmoid(modules[n.name].w.detach()))
        assert n.tau == pytest.approx(1.0 / q) and 1.5 <= n.tau <= 3.0


def test_family_model_ids_are_unique():
    assert len(set(IDS)) == len(IDS)
    assert not set(IDS) & {zoo.model_id(b, kw) for b, kw in zoo.all_models()}
