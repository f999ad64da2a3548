"""Shared helpers of the lowering tests (no tests here): plans, event inputs, the
fake-quant float model's spikes, and a model with unfolded BatchNorm forms."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hqc.choices import QuantChoice, parse_choice
from hqc.lowerdir import fake_quant_model
from hqc.passes.lower_int import LoweredModel, lower_graph
from hqc.pipeline import Frontend, run_frontend
from tests.support.data import TINY  # noqa: F401  (re-exported: the lowering tests' tiny model)
from tests.support.zoo import load_example_spikformer

MIXED = ("fp32", "uni4", "uni2", "pot4", "pot2")
SPIKE_AGREEMENT = 0.999


def mixed_plan(layers, offset: int = 0) -> dict[str, QuantChoice]:
    """Every layer a choice, cycling through all five quantizers."""
    return {layer.name: parse_choice(MIXED[(i + offset) % len(MIXED)]) for i, layer in enumerate(layers)}


def events(shape: tuple[int, ...], seed: int = 0, lam: float = 0.5) -> np.ndarray:
    """Integer event counts (float32), as the shipped data holds."""
    return np.random.default_rng(seed).poisson(lam, size=shape).astype(np.float32)


def groups_of(x: np.ndarray, fe: Frontend) -> np.ndarray:
    from hqc.layout import detect_layout
    from hqc.verification import to_groups

    layout = fe.graph.meta.get("input_layout") or detect_layout(fe.graph)
    return to_groups(x, layout, tuple(fe.graph.shape(fe.graph.inputs[0])))


def lower_zoo(zm, plan_offset: int = 0, **kw) -> tuple[Frontend, dict[str, QuantChoice], LoweredModel]:
    fe = run_frontend(str(zm.onnx_path))
    plan = mixed_plan(fe.layers, plan_offset)
    return fe, plan, lower_graph(fe.graph, fe.layers, plan, **kw)


def compare_with_float(fe: Frontend, plan, lm: LoweredModel, x: np.ndarray) -> dict[str, float]:
    """Spike agreement per LIF and logits of the integer reference vs the fake-quant model."""
    from hqc import intref

    model = fake_quant_model(fe.graph, fe.layers, plan)
    names = list(lm.tensor_map)
    with torch.no_grad():
        outs = model.forward_all(torch.from_numpy(x), names=[fe.graph.outputs[0]] + names)
    g = groups_of(x, fe)
    ints = intref.run(lm.graph, g, names=[lm.graph.outputs[0]] + [lm.tensor_map[n] for n in names])
    same = total = 0
    per = {}
    for n, fo, io_ in zip(names, outs[1:], ints[1:], strict=True):
        fo = fo.numpy()
        assert fo.shape == io_.shape
        per[n] = float((fo == io_).mean())
        same += int((fo == io_).sum())
        total += fo.size
    z = model.scores(outs[0], grouped=True).numpy().reshape(ints[0].shape)
    logits = ints[0] * lm.logits["scale"]
    return {
        "spikes": same / total,
        "min_layer": min(per.values()),
        "argmax": float((z.argmax(-1) == ints[0].argmax(-1)).mean()),
        "logit_err": float(np.abs(z - logits).max() / max(1e-12, np.abs(z).max())),
    }


# --------------------------------------------------------------------------- BN forms
class BNForms(nn.Module):
    """Linear + BatchNorm1d (MatMul → Add → Transpose → BatchNormalization → Transpose),
    Conv + BatchNorm2d, negative and zero γ, a residual of tensors with scales 1 and 0.5."""

    def __init__(self) -> None:
        super().__init__()
        mod = load_example_spikformer()
        self.fc = nn.Linear(8, 6)
        self.bn = nn.BatchNorm1d(6)
        self.lif = mod.MultiStepLIF()
        self.conv = nn.Conv2d(6, 4, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.lif2 = mod.MultiStepLIF(v_threshold=0.75)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, T, N, 8]
        x = x.permute(1, 0, 2, 3)
        T, B, N, _ = x.shape
        y = self.fc(x.flatten(0, 1))
        y = self.bn(y.transpose(-1, -2)).transpose(-1, -2)
        y = self.lif(y.reshape(T, B, N, 6))
        z = self.conv(y.flatten(0, 1).permute(0, 2, 1).unsqueeze(-1))
        z = self.lif2(self.bn2(z).reshape(T, B, 4, N, 1))
        z = z + 0.5 * z
        return self.head(z.mean((0, 3, 4)))


def bn_forms_onnx(tmp: Path, dynamo: bool, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    m = BNForms().eval()
    with torch.no_grad():
        m.fc.weight.mul_(4.0)
        m.conv.weight.mul_(3.0)
        for bn in (m.bn, m.bn2):
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(0.2, 0.8)
        m.bn.weight[1] = -1.5  # negative γ: the channel's comparison flips
        m.bn.bias[1] = 1.2
        m.bn2.weight[2] = -0.8
        m.bn2.bias[2] = 1.0
        m.bn.weight[3] = 0.0  # γ = 0: the channel ignores its input
        m.bn.bias[3] = 1.1
    x = torch.from_numpy(events((1, 2, 5, 8), seed=seed, lam=1.0))
    path = tmp / f"bn_forms_{'dynamo' if dynamo else 'ts'}.onnx"
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(m, (x,), str(path), dynamo=True, verbose=False)
        else:
            torch.onnx.export(m, (x,), str(path), dynamo=False, opset_version=17)
    return path


# --------------------------------------------------------------------------- back ends
def backends_agree(graph, x_groups: np.ndarray, tmp: Path, c: bool = True) -> np.ndarray:
    """Run a lowered graph on stacked model inputs (G, *input shape) in the numpy
    reference, onnxruntime (model.int.onnx) and the compiled C kernels; assert that the
    three give identical integer outputs; return the reference's (G, *output shape)."""
    from hqc import ckernels, int_onnx, intref

    ref = intref.run(graph, x_groups)[0]
    got = int_onnx.run_ort(int_onnx.session(int_onnx.to_int_onnx(graph)), x_groups)
    assert got.dtype == np.int64 and np.array_equal(got, ref), "onnxruntime differs from the numpy reference"
    if c:
        d = Path(tmp) / "kernels"
        ckernels.write_kernels(graph, d)
        out = ckernels.run_binary(ckernels.build(d), x_groups, int(np.prod(ref.shape[1:])))
        assert np.array_equal(out, ref.reshape(len(ref), -1)), "the C kernels differ from the numpy reference"
    return ref


def export_onnx(model: nn.Module, x: np.ndarray, path: Path, dynamo: bool) -> Path:
    """Export a torch model with either exporter (TorchScript at opset 17), quietly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        xt = torch.from_numpy(np.ascontiguousarray(x))
        if dynamo:
            torch.onnx.export(model, (xt,), str(path), dynamo=True, verbose=False)
        else:
            torch.onnx.export(model, (xt,), str(path), dynamo=False, opset_version=17)
    return path
