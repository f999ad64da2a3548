"""The frontend on models beyond the zoo, through both exporters: an snnTorch output layer
whose membrane is the readout (the LIF node's second output), SpikingJelly's own
MaxFormer (two neurons reading one BatchNorm output), SEW-ResNet, MS-ResNet, spiking VGG,
and SpikingJelly neuron variants (IF, soft reset, nonzero v_reset, tau 3, PLIF).

Each test builds a small seeded torch model here, exports it, runs `run_frontend`, and
checks: one LIF per neuron module the forward pass calls, their parameters, and the
PyTorch backend equal to onnxruntime on the original ONNX (logits; spikes per LIF)."""

from __future__ import annotations

import contextlib
import importlib.util
import math
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from hqc.backend import TorchModel
from hqc.errors import NeuronError, PassError
from hqc.ir import verify
from hqc.lif import LIFParams, lif_numpy
from hqc.onnx_io import from_proto, to_proto
from hqc.passes import run_passes
from hqc.pipeline import FRONTEND, run_frontend
from tests.support import zoo
from tests.support.helpers import FLOAT_ATOL, FLOAT_RTOL, lif_loop_model, run_ort

LOGIT_RTOL = 1e-4
SPIKE_AGREEMENT = 0.999


@dataclass
class Built:
    path: Path
    module: nn.Module
    x: np.ndarray  # example input, model layout [T, B, ...]
    neurons: list[str]  # neuron modules the forward pass calls, call order


def _neuron_modules(model: nn.Module) -> list[nn.Module]:
    import snntorch as snn
    from spikingjelly.activation_based import neuron

    return [m for m in model.modules() if isinstance(m, (neuron.BaseNode, snn.Leaky))]


def _called_neurons(model: nn.Module, x: np.ndarray) -> list[str]:
    names = {id(m): n for n, m in model.named_modules()}
    called: list[str] = []
    hooks = [
        m.register_forward_hook(lambda mod, a, o: called.append(names[id(mod)]))
        for m in _neuron_modules(model)
    ]
    try:
        zoo._run(model, x)
    finally:
        for h in hooks:
            h.remove()
    return list(dict.fromkeys(called))


def _user_surrogate(model: nn.Module) -> None:
    """TorchScript cannot export SJ's custom neuron ops: every SJ neuron gets a surrogate
    SJ does not know, which selects its Torch reference loop (tests/support/zoo.py explains)."""
    from spikingjelly.activation_based import neuron

    for m in model.modules():
        if isinstance(m, neuron.BaseNode):
            m.surrogate_function = zoo.UserSurrogate()


def _finish(model: nn.Module, x: np.ndarray, tmp_path: Path, name: str, dynamo: bool) -> Built:
    model.eval()
    path = tmp_path / f"{name}_{'dynamo' if dynamo else 'ts'}.onnx"
    zoo._export(model, x, path, dynamo)
    return Built(path, model, x, _called_neurons(model, x))


def _sj_calibrated(model: nn.Module, shape: tuple[int, ...], dynamo: bool, seed: int) -> np.ndarray:
    from spikingjelly.activation_based import functional

    functional.set_step_mode(model, "m")
    if not dynamo:
        _user_surrogate(model)
    rng = np.random.default_rng(seed)
    zoo._calibrate_bn(model, [zoo._spikes(rng, (shape[0], 4, *shape[2:]))], seed)
    return zoo._spikes(rng, shape)


@contextlib.contextmanager
def _torchvision_optional() -> Iterator[None]:
    """SJ's sew_resnet and spiking_vgg import torchvision only to download pretrained
    weights; when it is not installed, a stub that refuses downloads stands in while the
    SJ module is imported (sys.modules is restored after)."""
    if importlib.util.find_spec("torchvision") is not None:
        yield
        return

    def refuse(*args, **kwargs):
        raise RuntimeError("tests do not download weights")

    tv = types.ModuleType("torchvision")
    utils = types.ModuleType("torchvision._internally_replaced_utils")
    utils.load_state_dict_from_url = refuse  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "torchvision", tv)
        mp.setitem(sys.modules, "torchvision._internally_replaced_utils", utils)
        yield


# --------------------------------------------------------------------------- models


class ReadoutNet(nn.Module):
    """snnTorch: conv → Leaky → fc → Leaky (output); logits = mean over T of the output
    layer's membrane (`spk, mem = lif_out(fc(x_t), mem)`, `stack(mem_rec).mean(0)`)."""

    def __init__(self, beta: float, reset: str) -> None:
        super().__init__()
        import snntorch as snn

        self.conv = nn.Conv2d(2, 8, 3, stride=2, padding=1)
        self.lif1 = snn.Leaky(beta=beta, reset_mechanism=reset)
        self.fc = nn.Linear(8 * 8 * 8, 10)
        self.lif_out = snn.Leaky(beta=beta, reset_mechanism=reset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif_out.init_leaky()
        mem_rec = []
        for t in range(x.shape[0]):
            spk1, mem1 = self.lif1(self.conv(x[t]), mem1)
            _, mem2 = self.lif_out(self.fc(spk1.flatten(1)), mem2)
            mem_rec.append(mem2)
        return torch.stack(mem_rec).mean(0)


def readout_net(tmp_path: Path, dynamo: bool, beta: float, reset: str, T: int = 4) -> Built:
    torch.manual_seed(0)
    model = ReadoutNet(beta, reset)
    with torch.no_grad():  # both layers fire 5-60 % on the example input
        model.conv.weight.mul_(3.0)
        model.fc.weight.mul_(4.0)
        model.fc.bias.uniform_(0.0, 0.3)
    x = (np.random.default_rng(0).random((T, 1, 2, 16, 16)) < 0.3).astype(np.float32)
    return _finish(model, x, tmp_path, f"readout_{reset}_{beta}", dynamo)


def maxformer(tmp_path: Path, dynamo: bool, T: int = 4) -> Built:
    """SJ 2.0 MaxFormer, CIFAR layout: `_MaxCifarEmbed` feeds one BN output to two LIFs."""
    from spikingjelly.activation_based.model.maxformer import MaxFormer

    torch.manual_seed(0)
    model = MaxFormer(
        T=T, in_channels=2, num_classes=10, embed_dims=64, depths=(1, 1, 1), mlp_ratio=2, cifar=True
    )
    x = _sj_calibrated(model, (T, 1, 2, 32, 32), dynamo, seed=0)
    return _finish(model, x, tmp_path, f"maxformer_cifar_T{T}", dynamo)


def sew_resnet(tmp_path: Path, dynamo: bool, T: int = 2) -> Built:
    from spikingjelly.activation_based import layer, neuron

    with _torchvision_optional():
        from spikingjelly.activation_based.model.sew_resnet import BasicBlock, SEWResNet

    torch.manual_seed(0)
    model = SEWResNet(BasicBlock, [1, 1, 1, 1], num_classes=10, cnf="ADD", spiking_neuron=neuron.LIFNode)
    model.conv1 = layer.Conv2d(2, 64, 3, padding=1, bias=False)
    x = _sj_calibrated(model, (T, 1, 2, 32, 32), dynamo, seed=0)
    return _finish(model, x, tmp_path, "sew_resnet", dynamo)


def ms_resnet(tmp_path: Path, dynamo: bool, T: int = 2) -> Built:
    from spikingjelly.activation_based.model.ms_resnet import MSResNet

    torch.manual_seed(0)
    model = MSResNet(T=T, in_channels=2, num_classes=10, layers=(1, 1, 1), base_channels=16, stem_kernel_size=3, stem_stride=1)
    x = _sj_calibrated(model, (T, 1, 2, 32, 32), dynamo, seed=0)
    return _finish(model, x, tmp_path, "ms_resnet", dynamo)


def spiking_vgg(tmp_path: Path, dynamo: bool, T: int = 2) -> Built:
    from spikingjelly.activation_based import layer, neuron

    with _torchvision_optional():
        from spikingjelly.activation_based.model.spiking_vgg import SpikingVGG

    torch.manual_seed(0)
    model = SpikingVGG(
        [16, "M", 32, "M"], batch_norm=True, num_classes=10, spiking_neuron=neuron.LIFNode
    )
    model.features[0] = layer.Conv2d(2, 16, 3, padding=1)
    model.avgpool = layer.AdaptiveAvgPool2d((2, 2))
    model.classifier[0] = layer.Linear(32 * 2 * 2, 64)
    model.classifier[3] = layer.Linear(64, 64)
    model.classifier[6] = layer.Linear(64, 10)
    x = _sj_calibrated(model, (T, 1, 2, 32, 32), dynamo, seed=0)
    with torch.no_grad():  # the Linear layers' N(0, 0.01) init would never fire
        for i in (0, 3):
            model.classifier[i].weight.normal_(0.0, 0.6)
            model.classifier[i].bias.fill_(0.3)
    return _finish(model, x, tmp_path, "spiking_vgg", dynamo)


class SJVariantNet(nn.Module):
    """Conv+BN → neuron → MaxPool → Conv+BN → neuron → Linear, mean over T."""

    def __init__(self, make_neuron) -> None:
        super().__init__()
        from spikingjelly.activation_based import layer

        self.conv1 = layer.Conv2d(2, 8, 3, padding=1, bias=False)
        self.bn1 = layer.BatchNorm2d(8)
        self.sn1 = make_neuron()
        self.pool = layer.MaxPool2d(2)
        self.conv2 = layer.Conv2d(8, 16, 3, padding=1, bias=False)
        self.bn2 = layer.BatchNorm2d(16)
        self.sn2 = make_neuron()
        self.fc = layer.Linear(16 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.sn1(self.bn1(self.conv1(x))))
        x = self.sn2(self.bn2(self.conv2(x)))
        return self.fc(x.flatten(2)).mean(0)


INF = math.inf
# name: (SJ neuron factory, the LIF attributes the frontend must find: tau, v_threshold,
# v_reset (None: subtractive, reset_by = v_threshold), decay_input), all exact
VARIANTS = {
    "if_hard": (lambda n: n.IFNode(), (INF, 1.0, 0.0, False)),
    "if_soft_thr0.6": (lambda n: n.IFNode(v_threshold=0.6, v_reset=None), (INF, 0.6, None, False)),
    "lif_soft": (lambda n: n.LIFNode(tau=2.0, v_reset=None), (2.0, 1.0, None, True)),
    "lif_vreset": (lambda n: n.LIFNode(tau=2.0, v_reset=-0.25), (2.0, 1.0, -0.25, True)),
    "lif_tau3": (lambda n: n.LIFNode(tau=3.0), (3.0, 1.0, 0.0, True)),
    "lif_tau3_nodecay": (lambda n: n.LIFNode(tau=3.0, decay_input=False), (3.0, 1.0, 0.0, False)),
    "lif_tau3_vreset0.3": (lambda n: n.LIFNode(tau=3.0, v_threshold=0.7, v_reset=0.3), (3.0, 0.7, 0.3, True)),
    "plif": (lambda n: n.ParametricLIFNode(init_tau=2.0), (2.0, 1.0, 0.0, True)),
    "plif_tau3": (lambda n: n.ParametricLIFNode(init_tau=3.0), (3.0, 1.0, 0.0, True)),
}


def sj_variant(tmp_path: Path, dynamo: bool, variant: str, T: int = 4) -> Built:
    from spikingjelly.activation_based import neuron

    torch.manual_seed(0)
    model = SJVariantNet(lambda: VARIANTS[variant][0](neuron))
    x = _sj_calibrated(model, (T, 1, 2, 16, 16), dynamo, seed=1)
    return _finish(model, x, tmp_path, f"sj_{variant}", dynamo)


# --------------------------------------------------------------------------- checks


def _samples(x: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n data-layout (N, T, ...) samples: x ([T, 1, ...]) and seeded variations of it."""
    base = np.ascontiguousarray(np.moveaxis(x, 1, 0))[0]
    rng = np.random.default_rng(seed)
    xs = [base]
    for _ in range(n - 1):
        keep = rng.random(base.shape) < 0.8
        xs.append(np.where(keep, base, rng.permutation(base.reshape(-1)).reshape(base.shape)))
    return np.stack(xs).astype(np.float32)


def _lif_tensors(fe, original: onnx.ModelProto) -> dict[str, tuple[list[str], list[str]]]:
    """Per LIF node: the original-model tensors that carry its spikes and its membrane."""
    names = {v for n in original.graph.node for v in n.output}
    g = fe.graph
    out = {}
    for node in g.nodes():
        if node.op != "LIF":
            continue
        found = []
        for o in node.outputs:
            if o in names:
                found.append([o])
            else:
                found.append([c.outputs[0] for c in g.consumers(o) if c.op == "Gather" and c.outputs[0] in names])
        out[node.name] = (found[0], found[1] if len(found) > 1 else [])
    return out


def _check(b: Built, n_samples: int = 4) -> dict:
    """Frontend + backend against onnxruntime; returns what a test asserts on."""
    fe = run_frontend(b.path)
    lifs = [n for n in fe.graph.nodes() if n.op == "LIF"]
    assert len(lifs) == len(b.neurons), (sorted(n.name for n in lifs), b.neurons)
    model = TorchModel(fe.graph, input_layout="TB").eval()
    xd = _samples(b.x, n_samples)
    original = onnx.load(str(b.path))
    tensors = _lif_tensors(fe, original)
    extra = sorted({t for s, _ in tensors.values() for t in s})
    probe = onnx.load(str(b.path))
    for t in extra:
        probe.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    ref_logits, ref_spikes = [], {t: [] for t in extra}
    for i in range(len(xd)):
        res = run_ort(probe, {probe.graph.input[0].name: np.ascontiguousarray(np.moveaxis(xd[i : i + 1], 0, 1))})
        ref_logits.append(res[0])
        for t, r in zip(extra, res[1:], strict=True):
            ref_spikes[t].append(r)
    ax = model.output_batch_axis[0]  # SJ's ResNets and VGG return per-step logits [T, B, K]
    ref = np.moveaxis(np.concatenate(ref_logits, axis=ax), ax, 0)
    with torch.no_grad():
        logits = model.forward_all(torch.from_numpy(xd))[0].numpy()  # the raw output (per step for SJ models)
        got = model.forward_all(torch.from_numpy(xd), extra) if extra else []
    scale = float(np.abs(ref).max())
    np.testing.assert_allclose(logits, ref, rtol=LOGIT_RTOL, atol=LOGIT_RTOL * scale)
    rates = {}
    for name, (spikes, _) in tensors.items():
        agree = [
            (got[extra.index(t)].numpy().reshape(-1) == np.stack(ref_spikes[t]).reshape(-1)) for t in spikes
        ]
        if agree:
            rates[name] = float(np.concatenate(agree).mean())
            assert rates[name] >= SPIKE_AGREEMENT, (name, rates[name])
    return {"fe": fe, "logits": logits, "ref": ref, "xd": xd, "tensors": tensors, "rates": rates}


def _firing_rates(b: Built) -> dict[str, float]:
    rates: dict[str, list[float]] = {}
    hooks = []
    names = {id(m): n for n, m in b.module.named_modules()}
    for m in _neuron_modules(b.module):
        def fn(mod, a, o):
            spk = o[0] if isinstance(o, tuple) else o
            rates.setdefault(names[id(mod)], []).append(float(spk.float().mean()))
        hooks.append(m.register_forward_hook(fn))
    try:
        zoo._run(b.module, b.x)
    finally:
        for h in hooks:
            h.remove()
    return {k: float(np.mean(v)) for k, v in rates.items()}


# --------------------------------------------------------------------------- task 1


def test_snntorch_subtract_membrane_is_lif_h():
    """snnTorch's `mem_t = beta*mem_{t-1} + x_t - thr*s_{t-1}` is h_t of hqc.lif with
    reset_by = thr/beta (and tau = 1/(1-beta), no input decay)."""
    import snntorch as snn

    beta, thr = 0.9, 1.0
    leaky = snn.Leaky(beta=beta, threshold=thr, reset_mechanism="subtract")
    x = torch.from_numpy(np.random.default_rng(0).normal(0.4, 0.8, size=(16, 64)).astype(np.float64))
    mem = leaky.init_leaky()
    mems, spks = [], []
    with torch.no_grad():
        for t in range(len(x)):
            spk, mem = leaky(x[t], mem)
            mems.append(mem.clone())
            spks.append(spk.clone())
    p = LIFParams(tau=1 / (1 - beta), v_threshold=thr, v_reset=None, decay_input=False, comparison=">", reset_by=thr / beta)
    s, h = lif_numpy(x.numpy(), p, return_membrane=True)
    np.testing.assert_allclose(h, torch.stack(mems).numpy(), rtol=1e-6, atol=1e-6)
    assert (s == torch.stack(spks).numpy()).mean() >= SPIKE_AGREEMENT
    assert 0.05 < s.mean() < 0.6


READOUTS = [  # dynamo exports take seconds each: two of the four cases
    pytest.param(dynamo, reset, beta, id=f"{reset}-{beta}-{'dynamo' if dynamo else 'ts'}")
    for reset, beta in [("subtract", 0.9), ("zero", 0.5), ("subtract", 0.5), ("zero", 0.9)]
    for dynamo in (True, False)
    if not dynamo or (reset, beta) in (("subtract", 0.9), ("zero", 0.5))
]


@pytest.mark.parametrize(("dynamo", "reset", "beta"), READOUTS)
def test_membrane_readout_lifts_to_lif_with_membrane_output(tmp_path, dynamo, reset, beta):
    b = readout_net(tmp_path, dynamo, beta, reset)
    rates = _firing_rates(b)
    assert all(0.05 <= r <= 0.6 for r in rates.values()), rates
    res = _check(b, n_samples=6)
    g = res["fe"].graph
    by_name = {n.name: n for n in g.nodes() if n.op == "LIF"}
    assert len(by_name) == 2 and (not dynamo or set(by_name) == {"lif1", "lif_out"})
    out = next(n for n in by_name.values() if len(n.outputs) == 2)
    hidden = next(n for n in by_name.values() if len(n.outputs) == 1)
    p = LIFParams.from_attrs(out.attrs)
    assert p.comparison == ">" and not p.decay_input and math.isclose(p.beta, beta, rel_tol=1e-6)
    if reset == "zero":
        assert p.v_reset == 0.0
    else:
        assert p.v_reset is None and math.isclose(p.reset_by, 1.0 / beta, rel_tol=1e-6)
    assert g.shape(out.outputs[1]) == g.shape(out.inputs[0])
    assert not g.consumers(out.outputs[0])  # the output layer's spikes are not read
    assert [n for n in g.nodes() if n.op in ("Greater", "GreaterOrEqual")] == []
    assert len(hidden.outputs) == 1
    # the backend also equals the snnTorch module itself
    with torch.no_grad():
        want = np.concatenate([zoo._run(b.module, np.ascontiguousarray(np.moveaxis(x[None], 0, 1))) for x in res["xd"]])
    np.testing.assert_allclose(res["logits"], want, rtol=LOGIT_RTOL, atol=LOGIT_RTOL * float(np.abs(want).max()))


def _loop_with_outputs(extra: list[str], T: int = 4) -> onnx.ModelProto:
    """tests/support/helpers.py's hand-unrolled SJ LIF (h_t = `h{t}`, v_t = `v{t}`) with more
    graph outputs."""
    model = lif_loop_model(T=T, C=3)
    for t in extra:
        model.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, [1, 3]))
    return model


def test_membrane_outputs_of_a_hand_unrolled_lif_become_its_second_output():
    model = _loop_with_outputs(["h0", "h1", "h2", "h3"])
    g, _ = run_passes(from_proto(model), FRONTEND)
    (lif,) = [n for n in g.nodes() if n.op == "LIF"]
    assert len(lif.outputs) == 2 and g.ops() == {"LIF": 1, "Gather": 4, "MatMul": 1, "ReduceMean": 1}
    assert verify(g) == []
    rng = np.random.default_rng(3)
    xs = rng.normal(1.0, 1.0, size=(8, 4, 1, 3)).astype(np.float32)
    want = [np.concatenate(r) for r in zip(*(run_ort(model, {"X": x}) for x in xs), strict=True)]
    m = TorchModel(g, input_layout="TB").eval()
    with torch.no_grad():
        got = m.forward_all(torch.from_numpy(xs.transpose(0, 2, 1, 3).reshape(8, 4, 3)))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a.numpy(), b, rtol=FLOAT_RTOL, atol=FLOAT_ATOL)
    g2, rec = run_passes(g, ["recognize-neurons"])
    assert rec[0]["modified"] is False and g2.ops() == g.ops()
    # an ai.hqc::LIF with two outputs in an input ONNX model is accepted as is
    g3, _ = run_passes(from_proto(to_proto(g)), FRONTEND)
    assert g3.ops() == g.ops()
    with torch.no_grad():
        again = TorchModel(g3, input_layout="TB").eval().forward_all(torch.from_numpy(xs.transpose(0, 2, 1, 3).reshape(8, 4, 3)))
    for a, b in zip(again, got, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_last_membrane_only_is_read_out():
    model = _loop_with_outputs(["h3"])
    g, _ = run_passes(from_proto(model), FRONTEND)
    (lif,) = [n for n in g.nodes() if n.op == "LIF"]
    assert len(lif.outputs) == 2
    (gather,) = g.consumers(lif.outputs[1])
    assert gather.op == "Gather" and int(g.const(gather.inputs[1])) == 3 and gather.outputs == ["h3"]


def test_membrane_after_reset_read_out_is_an_error_naming_it():
    model = _loop_with_outputs(["v1"])
    with pytest.raises((NeuronError, PassError), match=r"output 'v1' is neither a spike nor the membrane.*nodes"):
        run_passes(from_proto(model), FRONTEND)


def test_lif_membrane_output_in_backend_is_h():
    """TorchModel's LIF with two outputs returns hqc.lif's h as the second one."""
    from hqc.backend import lif_torch

    p = LIFParams(tau=3.0, v_threshold=0.5, v_reset=-0.25, decay_input=True, comparison=">=", v_init=-0.25)
    x = np.random.default_rng(1).normal(0.5, 1.0, size=(5, 2, 7))
    s, h = lif_numpy(x, p, return_membrane=True)
    ts, th = lif_torch(torch.from_numpy(x), p, training=False, membrane=True)
    np.testing.assert_array_equal(ts.numpy(), s)
    np.testing.assert_allclose(th.numpy(), h, rtol=1e-12)
    assert np.array_equal(lif_numpy(x, p), s)


# --------------------------------------------------------------------------- task 2


@pytest.mark.parametrize(("dynamo", "T"), [pytest.param(False, 4, id="ts-T4"), pytest.param(True, 2, id="dynamo-T2")])
def test_maxformer_neurons_sharing_one_input_are_split(tmp_path, dynamo, T):
    """The TorchScript exporter's CSE shares the step-0 charge of the two neurons that read
    `patch_embed1.bn`: one component, 4 currents, 8 spike outputs. The dynamo export (it
    failed only with TorchScript) is checked at T = 2 to keep the suite fast."""
    b = maxformer(tmp_path, dynamo, T=T)
    assert {"patch_embed1.branch.0", "patch_embed1.shortcut.0"} <= set(b.neurons)
    res = _check(b)
    names = {n.name for n in res["fe"].graph.nodes() if n.op == "LIF"}
    assert names == set(b.neurons)
    assert all(r >= SPIKE_AGREEMENT for r in res["rates"].values()) and len(res["rates"]) == len(b.neurons)


# --------------------------------------------------------------------------- task 3


@pytest.mark.parametrize(
    "dynamo",
    [pytest.param(True, id="dynamo", marks=pytest.mark.slow), pytest.param(False, id="ts")],
)  # dynamo: 5-15 s of torch.export per model; the zoo covers SJ's dynamo chains
@pytest.mark.parametrize("builder", [sew_resnet, ms_resnet, spiking_vgg])
def test_sj_model_zoo_imports(tmp_path, dynamo, builder):
    b = builder(tmp_path, dynamo)
    res = _check(b)
    assert len(res["rates"]) == len(b.neurons)


DYNAMO_VARIANTS = {"if_soft_thr0.6", "lif_tau3_vreset0.3", "plif_tau3"}  # the rest: -m slow


@pytest.mark.parametrize(
    ("dynamo", "variant"),
    [
        pytest.param(d, v, id=f"{v}-{'dynamo' if d else 'ts'}", marks=[pytest.mark.slow] if d and v not in DYNAMO_VARIANTS else [])
        for v in sorted(VARIANTS)
        for d in (True, False)
    ],
)
def test_sj_neuron_variants_carry_exact_parameters(tmp_path, dynamo, variant):
    b = sj_variant(tmp_path, dynamo, variant)
    res = _check(b)
    tau, v_threshold, v_reset, decay_input = VARIANTS[variant][1]
    for name, p, _ in res["fe"].neurons:
        assert not dynamo or name in b.neurons
        assert (p.tau, p.v_threshold, p.v_reset, p.decay_input, p.comparison) == (
            tau, v_threshold, v_reset, decay_input, ">="
        ), (variant, p)
        assert p.v_init == (v_reset or 0.0)
        assert p.reset_by == (v_threshold if v_reset is None else None)
