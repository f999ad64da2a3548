"""The example Spikformer (model, neuron, export) and the shipped models and data."""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import pytest
import torch

from tests.support import REPO as ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.spikformer import evaluate  # noqa: E402
from examples.spikformer.model import (  # noqa: E402
    MultiStepLIF,
    SigmoidSurrogate,
    Spikformer,
    SpikformerConfig,
)

SHIPPED = [
    (ROOT / "examples/ndigits/spikformer.onnx", ROOT / "examples/ndigits/ndigits.npz"),
    (ROOT / "examples/motion/spikformer.onnx", ROOT / "examples/motion/motion.npz"),
]
TINY = SpikformerConfig(
    T=2,
    in_channels=2,
    img_size=16,
    patch_size=4,
    dim=16,
    heads=2,
    depth=1,
    num_classes=5,
    mlp_ratio=2.0,
)


def _lif_reference(x: np.ndarray, tau: float, v_th: float) -> np.ndarray:
    """SpikingJelly LIFNode, multi-step, decay_input, hard reset to 0, in float64."""
    v = np.zeros_like(x[0])
    out = []
    for xt in x:
        h = v + (xt - v) / tau
        s = (h >= v_th).astype(x.dtype)
        v = h * (1 - s)
        out.append(s)
    return np.stack(out)


@pytest.mark.parametrize("v_th", [1.0, 0.5])
def test_lif_matches_spikingjelly_semantics(v_th):
    x = np.random.default_rng(0).uniform(-1, 3, size=(6, 3, 7))
    got = MultiStepLIF(tau=2.0, v_threshold=v_th)(torch.from_numpy(x)).numpy()
    assert np.array_equal(got, _lif_reference(x, 2.0, v_th))


def test_surrogate_gradient_is_sigmoid_derivative():
    x = torch.linspace(-2, 2, 9, dtype=torch.float64, requires_grad=True)
    SigmoidSurrogate.apply(x, 4.0).sum().backward()
    sg = torch.sigmoid(4.0 * x.detach())
    assert torch.allclose(x.grad, 4.0 * sg * (1 - sg))


def test_model_shapes_and_names():
    model = Spikformer(TINY).eval()
    out = model(torch.zeros(3, TINY.T, 2, 16, 16))
    assert out.shape == (3, TINY.num_classes)
    names = dict(model.named_modules())
    for name in (
        "sps.proj_conv",
        "sps.rpe_conv",
        "blocks.0.attn.q_conv",
        "blocks.0.attn.attn_lif",
        "blocks.0.mlp.fc1_conv",
        "blocks.0.mlp.fc2_lif",
        "head",
    ):
        assert name in names
    assert names["blocks.0.attn.attn_lif"].v_threshold == 0.5


def test_model_learns_through_surrogate():
    torch.manual_seed(0)
    model = Spikformer(TINY)
    x = torch.poisson(torch.full((4, TINY.T, 2, 16, 16), 1.0))
    F = torch.nn.functional
    F.cross_entropy(model(x), torch.arange(4) % TINY.num_classes).backward()
    grad = model.sps.proj_conv.weight.grad
    assert grad is not None and grad.abs().sum() > 0


# The dynamo exporter takes 10-20 s on a busy 2-core machine; the shipped models are dynamo
# exports and are run by the fast tests below.
@pytest.mark.parametrize(
    "dynamo", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["torchscript", "dynamo"]
)
def test_export_runs_in_onnxruntime_like_torch(dynamo, tmp_path):
    from examples.spikformer import export

    torch.manual_seed(0)
    model = Spikformer(TINY).eval()
    path = tmp_path / "m.onnx"
    proto = export.export(model, path, dynamo=dynamo)
    assert not list(tmp_path.glob("*.data")), "export must be a single file"
    ops = {n.op_type for n in proto.graph.node}
    assert {"GreaterOrEqual", "Cast", "Div"} <= ops and not {"Loop", "Scan"} & ops
    assert export.check_against_torch(model, path, n=2) < 1e-4


@pytest.mark.parametrize("onnx_path,npz_path", SHIPPED, ids=["ndigits", "motion"])
def test_shipped_model_and_data_agree(onnx_path, npz_path):
    model = onnx.load(str(onnx_path), load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer), (
        "shipped model must be self-contained"
    )
    (inp,) = model.graph.input
    in_shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    out_shape = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    with np.load(npz_path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"][()]))
        for xk, yk in (("x", "y"), ("x_val", "y_val"), ("x_test", "y_test")):
            x, y = f[xk], f[yk]
            assert x.dtype == np.uint8 and y.dtype == np.int64
            assert list(x.shape[1:]) == in_shape[1:] and len(x) == len(y)
            assert set(np.unique(y)) == set(range(meta["num_classes"]))
    assert in_shape[0] == 1 and out_shape == [1, meta["num_classes"]]
    assert meta["T"] == in_shape[1]


@pytest.mark.parametrize("onnx_path,npz_path", SHIPPED, ids=["ndigits", "motion"])
def test_shipped_model_beats_chance(onnx_path, npz_path):
    x, y = evaluate.load_split(npz_path, "test")
    # A random slice of 64 test samples (fixed seed), so every class is likely present.
    idx = np.random.default_rng(0).permutation(len(y))[:64]
    acc = evaluate.onnx_accuracy(onnx_path, x[idx], y[idx])
    chance = 1.0 / len(np.unique(y))
    assert acc >= 3 * chance, f"{onnx_path.name}: accuracy {acc:.3f} vs chance {chance:.3f}"


def test_shipped_motion_model_reads_direction_from_time():
    # Played backwards (bins reversed, ON/OFF swapped) a motion becomes its opposite; a
    # model that uses the order of the bins must then predict the opposite class.
    onnx_path, npz_path = SHIPPED[1]
    with np.load(npz_path, allow_pickle=False) as f:
        names = json.loads(str(f["meta"][()]))["class_names"]
    opposite = {
        "up": "down",
        "down": "up",
        "left": "right",
        "right": "left",
        "cw": "ccw",
        "ccw": "cw",
    }

    def flip(name: str) -> str:
        parts = name.split("_")
        return "_".join(opposite.get(p, p) for p in parts)

    opp = np.array([names.index(flip(n)) for n in names])
    x, y = evaluate.load_split(npz_path, "test")
    idx = np.random.default_rng(1).permutation(len(y))[:32]
    reversed_x = np.ascontiguousarray(x[idx][:, ::-1, ::-1])
    pred = evaluate.onnx_predict(onnx_path, reversed_x).argmax(1)
    assert (pred == opp[y[idx]]).mean() >= 0.5
