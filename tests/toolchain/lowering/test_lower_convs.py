"""Grouped and depthwise convolution, Conv1d, W·x, average pooling and max-pooling of a
tensor with a negative scale: numpy reference = onnxruntime = C exactly on hand-built
lowered graphs (hypothesis over shapes, strides, pads, dilations and groups; every
quantizer; spike and integer inputs; checked against torch's float64 ops on small
integers), and on real SpikingJelly exports (both exporters) against the fake-quant
float model; the lowering's error messages."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from hqc import intref
from hqc.choices import parse_choice
from hqc.errors import ModelError
from hqc.intops import INT_DOMAIN, OPS, check_lowered
from hqc.intref import load_lowered, save_lowered
from hqc.ir import Graph, Value
from hqc.layers import LayerInfo
from hqc.lowering.weights import layer_codes, packed_bytes, qattrs
from hqc.passes.lower_int import lower_graph
from hqc.pipeline import run_frontend
from tests.support.lowering import (
    MIXED,
    SPIKE_AGREEMENT,
    backends_agree,
    compare_with_float,
    events,
    export_onnx,
    groups_of,
    mixed_plan,
)

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                reason="gcc and make are needed")

KERNEL = re.compile(r"// hqc-kernel begin (\S+) (\S+)[^\n]*\n(.*?)// hqc-kernel end", re.S)


# --------------------------------------------------------------------------- harnesses
def _one_op(op: str, attrs: dict, in_shape: tuple[int, ...], in_range: tuple[int, int]) -> Graph:
    """A lowered graph x → op → y (output shape from the reference, bound from the op)."""
    g = Graph("h", 17)
    g.inputs = ["x"]
    g.values["x"] = Value(tuple(in_shape), "int64")
    g.meta["bounds"] = {"x": tuple(in_range)}
    node = g.add_node(op, ["x"], ["y"], attrs, name="y", domain=INT_DOMAIN)
    OPS[op].check(node)
    (bound,) = OPS[op].bounds(node, [tuple(in_range)], g)
    y = OPS[op].ref(node, [np.zeros((1,) + tuple(in_shape), np.int64)], "auto")
    g.values["y"] = Value(tuple(y.shape[1:]), "int64")
    g.outputs = ["y"]
    g.meta["bounds"]["y"] = bound
    check_lowered(g)
    return g


def _weights(rng: np.random.Generator, wshape: tuple[int, ...], quant: str, in_range: tuple[int, int]):
    w = rng.normal(size=wshape).astype(np.float32)
    w.reshape(-1)[rng.integers(0, w.size)] = 0.0
    lc = layer_codes(w, parse_choice(quant), max(abs(in_range[0]), abs(in_range[1])))
    info = LayerInfo("L", "conv2d" if len(wshape) == 4 else "linear", "other", wshape, w.size, 0, "spikes")
    return lc, qattrs(info, lc)


def _inputs(rng: np.random.Generator, shape: tuple[int, ...], in_range: tuple[int, int], n: int = 4) -> np.ndarray:
    """n inputs (n, *shape) in the range, sparse to dense (the event-driven paths)."""
    lo, hi = in_range
    xs = []
    for density in np.linspace(0.1, 1.0, n):
        v = rng.integers(lo, hi + 1, shape)
        xs.append(np.where(rng.random(shape) < density, v, 0))
    return np.stack(xs).astype(np.int64)


def _check_c(tmp: Path, quant: str) -> None:
    """The kernel of the layer: no float unless fp32, no `*` in power-of-two layers."""
    src = (tmp / "kernels" / "hqc_model.c").read_text()
    (body,) = [b for name, _, b in KERNEL.findall(src) if name == "L"]
    if quant != "fp32":
        assert not re.search(r"\b(float|double)\b", body)
    if quant.startswith("pot"):
        assert "*" not in body, [ln for ln in body.splitlines() if "*" in ln]


def _agree_and_check(g: Graph, x: np.ndarray, quant: str) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="hqc-convs-") as tmp:
        ref = backends_agree(g, x, Path(tmp))
        _check_c(Path(tmp), quant)
    return ref


def _torch_conv(x: np.ndarray, w: np.ndarray, nd: int, strides, pads, dil, group: int) -> np.ndarray:
    """Independent reference: torch's float64 convolution of small integers (exact)."""
    xt = torch.from_numpy(x.astype(np.float64))
    width = [p for i in reversed(range(nd)) for p in (pads[i], pads[i + nd])]
    xt = F.pad(xt, width)
    fn = F.conv1d if nd == 1 else F.conv2d
    y = fn(xt, torch.from_numpy(w.astype(np.float64)), stride=strides, dilation=dil, groups=group)
    return y.numpy().astype(np.int64)


@st.composite
def grouped_convs(draw):
    nd = draw(st.sampled_from([1, 2]))
    depthwise = draw(st.booleans())
    group = draw(st.integers(2, 4))
    cg = 1 if depthwise else draw(st.integers(1, 3))
    og = draw(st.integers(1, 3))
    k = [draw(st.sampled_from([1, 2, 3, 5, 7] if depthwise else [1, 2, 3])) for _ in range(nd)]
    strides = [draw(st.integers(1, 3)) for _ in range(nd)]
    dil = [draw(st.integers(1, 2)) for _ in range(nd)]
    pads = [draw(st.integers(0, k[i % nd] + 1)) for i in range(2 * nd)]
    sp = [draw(st.integers(1, 9)) for _ in range(nd)]
    for i in range(nd):
        assume(sp[i] + pads[i] + pads[i + nd] >= (k[i] - 1) * dil[i] + 1)
    batch = draw(st.integers(1, 2))
    in_range = draw(st.sampled_from([(0, 1), (-3, 6), (0, 4)]))
    return dict(nd=nd, group=group, cg=cg, og=og, k=k, strides=strides, dil=dil, pads=pads,
                in_shape=(batch, group * cg) + tuple(sp), in_range=in_range, seed=draw(st.integers(0, 2**16)))


@pytest.mark.parametrize("quant", MIXED)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=grouped_convs())
def test_grouped_conv_backends_agree(quant, spec):
    """QConv group=G: the reference equals torch's grouped convolution of the integer
    codes, onnxruntime and C equal the reference, the packed bytes are params·bits/8."""
    rng = np.random.default_rng(spec["seed"])
    nd, group = spec["nd"], spec["group"]
    wshape = (group * spec["og"], spec["cg"]) + tuple(spec["k"])
    lc, attrs = _weights(rng, wshape, quant, spec["in_range"])
    attrs.update(nd=nd, strides=spec["strides"], pads=spec["pads"], dilations=spec["dil"], group=group)
    g = _one_op("QConv", attrs, spec["in_shape"], spec["in_range"])
    x = _inputs(rng, spec["in_shape"], spec["in_range"])
    ref = _agree_and_check(g, x, quant)
    expect = _torch_conv(x.reshape((-1,) + spec["in_shape"][1:]), lc.w_int, nd, spec["strides"], spec["pads"],
                         spec["dil"], group)
    assert np.array_equal(ref.reshape(expect.shape), expect)
    if quant != "fp32":
        from hqc.ckernels import emit_kernels

        (wb,) = emit_kernels(g).weight_bytes
        assert wb["bytes"] == packed_bytes(lc.w_int.size, lc.choice.bits) == -(-lc.w_int.size * lc.choice.bits // 8)


@pytest.mark.parametrize("quant", MIXED)
@pytest.mark.parametrize(("in_shape", "in_range"), [((2, 3, 7, 5), (0, 1)), ((1, 7, 4), (-4, 5))],
                         ids=["spikes-4d", "integers-3d"])
def test_weight_left_linear_backends_agree(quant, in_shape, in_range):
    """QLinear weight_left=1: y[..., o, n] = Σ_k w[o, k] x[..., k, n] (= W @ x in numpy)."""
    rng = np.random.default_rng(len(in_shape) * 7 + MIXED.index(quant))
    k = in_shape[-2]
    lc, attrs = _weights(rng, (6, k), quant, in_range)
    attrs["weight_left"] = 1
    g = _one_op("QLinear", attrs, in_shape, in_range)
    assert tuple(g.shape("y")) == in_shape[:-2] + (6, in_shape[-1])
    x = _inputs(rng, in_shape, in_range)
    ref = _agree_and_check(g, x, quant)
    assert np.array_equal(ref, np.matmul(lc.w_int, x))


@pytest.mark.parametrize(
    ("in_shape", "kernel", "strides", "pads", "in_range", "exclude_pad"),
    [
        ((2, 3, 6, 7), [2, 2], [2, 2], [0, 0, 0, 0], (0, 1), False),
        ((1, 2, 5, 6), [3, 3], [1, 1], [1, 1, 1, 1], (0, 1), True),
        ((1, 2, 7, 6), [3, 2], [2, 1], [1, 0, 2, 1], (-3, 7), True),
        ((2, 3, 9), [3], [2], [1, 1], (0, 5), False),
        ((1, 2, 8), [5], [1], [2, 2], (0, 1), True),
    ],
    ids=["2x2-s2-spikes", "3x3-p1-exclude-pad", "uneven-integers-exclude-pad", "1d-p1-integers", "1d-k5-exclude-pad"],
)
def test_sumpool_backends_agree(tmp_path, in_shape, kernel, strides, pads, in_range, exclude_pad):
    """SumPool: the window sums (zero padding) times mult = L/nᵥ(p) equal torch's average
    pool (count_include_pad=False) times L; without mult, the sum over the window."""
    from hqc.intops.pool import valid_counts

    nd = len(kernel)
    attrs = {"kernel_shape": kernel, "strides": strides, "pads": pads}
    cnt = valid_counts(in_shape[2:], kernel, strides, pads)
    lcm = int(np.lcm.reduce(np.unique(cnt)))
    if exclude_pad:
        attrs["mult"] = (lcm // cnt).astype(np.int64)
    g = _one_op("SumPool", attrs, in_shape, in_range)
    rng = np.random.default_rng(sum(in_shape))
    x = _inputs(rng, in_shape, in_range)
    ref = backends_agree(g, x, tmp_path)
    xt = torch.from_numpy(x.reshape((-1,) + in_shape[1:]).astype(np.float64))
    xt = F.pad(xt, [p for i in reversed(range(nd)) for p in (pads[i], pads[i + nd])])
    fn = F.avg_pool1d if nd == 1 else F.avg_pool2d
    if exclude_pad:  # the mean over the valid elements, times L
        ones = F.pad(torch.ones((1, 1) + in_shape[2:], dtype=torch.float64),
                     [p for i in reversed(range(nd)) for p in (pads[i], pads[i + nd])])
        n_valid = fn(ones, kernel, strides) * int(np.prod(kernel))
        expect = fn(xt, kernel, strides) * int(np.prod(kernel)) / n_valid * lcm
    else:
        expect = fn(xt, kernel, strides) * int(np.prod(kernel))
    assert np.array_equal(ref.reshape(expect.shape), np.rint(expect.numpy()).astype(np.int64))
    lo, hi = g.meta["bounds"]["y"]
    assert lo <= ref.min() and ref.max() <= hi


@pytest.mark.parametrize(
    ("in_shape", "kernel", "strides", "pads", "in_range", "sign"),
    [
        ((2, 4, 7, 6), [3, 3], [2, 2], [1, 1, 1, 1], (0, 1), [-1, 1, -1, 1]),
        ((1, 3, 6, 7), [2, 3], [1, 2], [0, 2, 1, 0], (-5, 9), [-1, -1, 1]),
        ((2, 3, 9), [3], [2], [1, 1], (-2, 6), [1, -1, -1]),
    ],
    ids=["3x3-s2-p1-spikes", "uneven-integers", "1d-integers"],
)
def test_maxpool_sign_backends_agree(tmp_path, in_shape, kernel, strides, pads, in_range, sign):
    """MaxPool sign: max over the window where sign = 1, min where sign = −1 (padding
    never wins), = torch's max-pool of sign·x times sign."""
    nd = len(kernel)
    attrs = {"kernel_shape": kernel, "strides": strides, "pads": pads, "sign": np.array(sign, np.int64)}
    g = _one_op("MaxPool", attrs, in_shape, in_range)
    rng = np.random.default_rng(sum(in_shape) + 1)
    x = _inputs(rng, in_shape, in_range)
    ref = backends_agree(g, x, tmp_path)
    sg = np.array(sign).reshape((1, -1) + (1,) * nd)
    xt = torch.from_numpy((x.reshape((-1,) + in_shape[1:]) * sg).astype(np.float64))
    xt = F.pad(xt, [p for i in reversed(range(nd)) for p in (pads[i], pads[i + nd])], value=-np.inf)
    fn = F.max_pool1d if nd == 1 else F.max_pool2d
    expect = fn(xt, kernel, strides).numpy().astype(np.int64) * sg
    assert np.array_equal(ref.reshape(expect.shape), expect)


def test_op_contract_errors():
    """The ops' own checks: groups that do not divide the channels, signs and multipliers
    out of their sets, inputs that do not match the weights."""
    rng = np.random.default_rng(0)
    _, attrs = _weights(rng, (4, 2, 3, 3), "uni4", (0, 1))
    conv = dict(attrs, nd=2, strides=[1, 1], pads=[0] * 4, dilations=[1, 1])
    with pytest.raises(ModelError, match=r"QConv node 'y': group 3 does not divide the 4 output channels"):
        _one_op("QConv", dict(conv, group=3), (1, 6, 5, 5), (0, 1))
    with pytest.raises(ModelError, match=r"QConv node 'y': 6 input channels, but weights \[4, 2, 3, 3\] with group 2"):
        _one_op("QConv", dict(conv, group=2), (1, 6, 5, 5), (0, 1))
    _, lin = _weights(rng, (3, 5), "pot2", (0, 1))
    with pytest.raises(ModelError, match=r"QLinear node 'y': input \[2, 4, 6\] does not have 5 features on axis -2"):
        _one_op("QLinear", dict(lin, weight_left=1), (2, 4, 6), (0, 1))
    pool = {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0] * 4}
    with pytest.raises(ModelError, match=r"MaxPool node 'y': sign must hold one -1 or 1 per channel"):
        _one_op("MaxPool", dict(pool, sign=np.array([1, 0])), (1, 2, 4, 4), (0, 1))
    with pytest.raises(ModelError, match=r"MaxPool node 'y': 3 signs for 2 channels"):
        _one_op("MaxPool", dict(pool, sign=np.array([1, -1, 1])), (1, 2, 4, 4), (0, 1))
    with pytest.raises(ModelError, match=r"SumPool node 'y': mult must hold positive integers"):
        _one_op("SumPool", dict(pool, mult=np.zeros((2, 2), np.int64)), (1, 2, 4, 4), (0, 1))
    with pytest.raises(ModelError, match=r"SumPool node 'y': mult of shape \[3\] for outputs \[2, 2\]"):
        _one_op("SumPool", dict(pool, mult=np.ones(3, np.int64)), (1, 2, 4, 4), (0, 1))


# --------------------------------------------------------------------------- frontend rules
def _pool_model(tmp: Path, node: onnx.NodeProto, pre: str, in_shape=(1, 2, 5, 5), const=None) -> Path:
    """x → Conv 1×1 (identity weights: the weight layer the frontend needs) → pre (Mul or
    Add by `const`) → the pool node → y, as an ONNX file."""
    c = in_shape[1]
    inits = [numpy_helper.from_array(np.eye(c, dtype=np.float32).reshape(c, c, 1, 1), "w")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["z"], name="conv")]
    src = "z"
    if pre:
        inits.append(numpy_helper.from_array(np.asarray(const, np.float32), "c"))
        nodes.append(helper.make_node(pre, ["z", "c"], ["h"], name="pre"))
        src = "h"
    node.input[0] = src
    node.name = "pool"
    nodes.append(node)
    g = helper.make_graph(nodes, "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp / f"{node.op_type}_{len(list(tmp.iterdir()))}.onnx"
    onnx.save(m, str(path))
    return path


def _lower_file(path: Path):
    fe = run_frontend(str(path))
    plan = {layer.name: parse_choice("fp32") for layer in fe.layers}  # identity weights: exact
    return fe, lower_graph(fe.graph, fe.layers, plan, input_range=(0, 5))


def test_pool_rules_against_onnxruntime(tmp_path):
    """MaxPool after a per-channel negative scale, AveragePool with count_include_pad=0 and
    padding (an offset b ≠ 0): the integer logits times their scale equal onnxruntime on
    the float model, and the three back ends agree."""
    import onnxruntime as ort

    cases = [
        (helper.make_node("MaxPool", ["h"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
         "Mul", np.array([-0.75, 1.5], np.float32).reshape(1, 2, 1, 1)),
        (helper.make_node("AveragePool", ["h"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                          count_include_pad=0), "Add", np.array([0.25, -1.0], np.float32).reshape(1, 2, 1, 1)),
        (helper.make_node("AveragePool", ["h"], ["y"], kernel_shape=[2, 3], strides=[1, 2], pads=[1, 0, 0, 2],
                          count_include_pad=1), "Mul", np.float32(-0.5)),
    ]
    rng = np.random.default_rng(3)
    for node, pre, const in cases:
        path = _pool_model(tmp_path, node, pre, const=const)
        fe, lm = _lower_file(path)
        ops = lm.graph.ops()
        assert ("SumPool" in ops) == (node.op_type == "AveragePool")
        if node.op_type == "MaxPool":
            (mp,) = [n for n in lm.graph.nodes() if n.op == "MaxPool"]
            assert list(mp.attrs["sign"]) == [-1, 1]
        x = rng.integers(0, 6, (6, 1, 2, 5, 5)).astype(np.int64)
        ref = backends_agree(lm.graph, x, tmp_path / f"k{len(list(tmp_path.iterdir()))}")
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        want = np.stack([sess.run(None, {"x": xi.astype(np.float32)})[0] for xi in x])
        np.testing.assert_allclose(ref * lm.logits["scale"], want, rtol=0, atol=2e-4 * np.abs(want).max())


def test_weight_layer_on_scaled_offset_input_against_onnxruntime(tmp_path):
    """Conv → (×a_c, +b_c per channel) → grouped 3×3 Conv with padding: the second conv's
    input is put on one scale (a ratio of 2: exact) and its offset goes through the
    layer, Q(W) ⊛ b, smaller at the borders (zero padding): real logits = onnxruntime."""
    import onnxruntime as ort

    rng = np.random.default_rng(4)
    w1 = np.eye(4, dtype=np.float32).reshape(4, 4, 1, 1)
    w2 = rng.normal(size=(4, 2, 3, 3)).astype(np.float32)
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
             numpy_helper.from_array(np.array([0.75, 1.5, -0.75, 3.0], np.float32).reshape(1, 4, 1, 1), "a"),
             numpy_helper.from_array(np.array([0.5, -1.0, 0.25, 2.0], np.float32).reshape(1, 4, 1, 1), "b")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["z"], name="conv1"),
             helper.make_node("Mul", ["z", "a"], ["za"], name="mul"),
             helper.make_node("Add", ["za", "b"], ["zb"], name="add"),
             helper.make_node("Conv", ["zb", "w2"], ["y"], name="conv2", pads=[1, 1, 1, 1], group=2)]
    g = helper.make_graph(nodes, "offset", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / "offset.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    fe, lm = _lower_file(path)
    assert [n.attrs.get("group", 1) for n in lm.graph.nodes() if n.op == "QConv"] == [1, 2]
    x = rng.integers(0, 6, (5, 1, 4, 5, 6)).astype(np.int64)
    ref = backends_agree(lm.graph, x, tmp_path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = np.stack([sess.run(None, {"x": xi.astype(np.float32)})[0] for xi in x])
    np.testing.assert_allclose(ref * lm.logits["scale"], want, rtol=0, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize(
    ("node", "pre", "const", "pattern"),
    [
        (helper.make_node("AveragePool", ["h"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1),
         "Add", np.float32(0.5),
         r"node '.*' \(AveragePool\): average pool with count_include_pad=1 and padding of a tensor with an offset"),
        (helper.make_node("AveragePool", ["h"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1), "", None,
         r"\(AveragePool\): ceil_mode windows that run past the input are not supported"),
        (helper.make_node("MaxPool", ["h"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1), "", None,
         r"\(MaxPool\): ceil_mode windows that run past the input are not supported"),
        (helper.make_node("MaxPool", ["h"], ["y"], kernel_shape=[2, 2], dilations=[2, 2]), "", None,
         r"\(MaxPool\): dilations are not supported"),
        (helper.make_node("AveragePool", ["h"], ["y"], kernel_shape=[2, 2], auto_pad="SAME_UPPER"), "", None,
         r"\(AveragePool\): auto_pad is not supported"),
        (helper.make_node("MaxPool", ["h"], ["y"], kernel_shape=[2, 2]), "Mul",
         np.linspace(0.5, 2.0, 25, dtype=np.float32).reshape(1, 1, 5, 5),
         r"\(MaxPool\): max-pool of a tensor whose scale varies along a pooled axis"),
        (helper.make_node("MaxPool", ["h"], ["y"], kernel_shape=[2, 2]), "Mul",
         np.array([-1.0, 2.0], np.float32).reshape(2, 1, 1, 1),
         r"\(MaxPool\): max-pool of a tensor with a negative scale that is not per channel"),
    ],
    ids=["avg-include-pad-offset", "avg-ceil", "max-ceil", "max-dilation", "avg-auto-pad", "max-spatial-scale",
         "max-batch-scale"],
)
def test_pool_errors_name_the_node(tmp_path, node, pre, const, pattern):
    in_shape = (2, 2, 5, 5) if const is not None and np.asarray(const).shape[:1] == (2,) else (1, 2, 5, 5)
    path = _pool_model(tmp_path, node, pre, in_shape=in_shape, const=const)
    with pytest.raises(ModelError, match=pattern):
        _lower_file(path)


def test_ceil_mode_without_effect_is_accepted(tmp_path):
    node = helper.make_node("AveragePool", ["h"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    fe, lm = _lower_file(_pool_model(tmp_path, node, "", in_shape=(1, 2, 4, 6)))
    assert "SumPool" in lm.graph.ops()


# --------------------------------------------------------------------------- real exports
def _lif():
    from spikingjelly.activation_based import neuron

    return neuron.LIFNode(tau=2.0, detach_reset=True, step_mode="m")


class DWPoolNet(nn.Module):
    """MaxFormer-like: a depthwise 7×7 and a depthwise 5×5 (channel multiplier 2, stride
    2) with pointwise and grouped (G = 4) convolutions; AvgPool2d with and without
    padding (count_include_pad both ways, after spikes and after a BN); a BN with
    negative γ before a MaxPool (SJ multi-step layers: the BN stays a node); global
    average pooling in the head. Input [T, B, 2, 16, 16]."""

    def __init__(self) -> None:
        super().__init__()
        from spikingjelly.activation_based import layer

        self.stem = layer.SeqToANNContainer(nn.Conv2d(2, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.lif0 = _lif()
        self.avg0 = layer.AvgPool2d(3, 1, 1, step_mode="m")  # count_include_pad=True, spikes (b = 0)
        self.dw7 = layer.SeqToANNContainer(nn.Conv2d(8, 8, 7, padding=3, groups=8), nn.BatchNorm2d(8))
        self.lif1 = _lif()
        self.pw = nn.Sequential(layer.Conv2d(8, 16, 1, step_mode="m"), layer.BatchNorm2d(16, step_mode="m"),
                                layer.MaxPool2d(3, 2, 1, step_mode="m"))
        self.lif2 = _lif()
        self.dw5 = layer.SeqToANNContainer(nn.Conv2d(16, 32, 5, padding=2, groups=16, bias=False),
                                           nn.BatchNorm2d(32), nn.AvgPool2d(2))
        self.lif3 = _lif()
        self.avg3 = layer.AvgPool2d(3, 1, 1, count_include_pad=False, step_mode="m")
        self.gc = layer.SeqToANNContainer(nn.Conv2d(32, 16, 3, padding=1, groups=4), nn.BatchNorm2d(16))
        self.lif4 = _lif()
        self.head = layer.SeqToANNContainer(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avg0(self.lif0(self.stem(x)))
        x = self.lif1(self.dw7(x))
        x = self.lif2(self.pw(x))
        x = self.avg3(self.lif3(self.dw5(x)))
        x = self.lif4(self.gc(x))
        return self.head(x).mean(0)

    def negate_gamma(self) -> None:
        """Every third channel of the BN before the MaxPool gets γ < 0 (so the pool takes
        the min of its accumulator there); the biases are lowered to keep 5–60 % firing."""
        with torch.no_grad():
            bn = self.pw[1]
            bn.weight[::3] *= -1.0
            bn.bias[::3] -= 1.0
            bn.bias -= 0.4


class Conv1dNet(nn.Module):
    """Spikformer-like Conv1d k=1 + BN1d blocks (SeqToANNContainer), a grouped Conv1d k=3,
    a token-mixing layer y = W @ x (+ bias) over the N tokens with a BN1d over the
    tokens, and a Conv1d fed by a BN output (per-channel scale and offset, as MaxFormer's
    attention on its residual stream). Input [T, B, C=6, N=12]."""

    def __init__(self, c: int = 6, n: int = 12) -> None:
        super().__init__()
        from spikingjelly.activation_based import layer

        self.c1 = layer.SeqToANNContainer(nn.Conv1d(c, 16, 1, bias=False), nn.BatchNorm1d(16))
        self.lif1 = _lif()
        self.c2 = layer.SeqToANNContainer(nn.Conv1d(16, 16, 3, padding=1, groups=4), nn.BatchNorm1d(16))
        self.lif2 = _lif()
        self.mix = nn.Parameter(torch.randn(n, n) / n**0.5)
        self.mix_bias = nn.Parameter(0.1 * torch.randn(n, 1))
        self.bn3 = nn.BatchNorm1d(n)
        self.lif3 = _lif()
        self.c4 = layer.SeqToANNContainer(nn.Conv1d(16, 16, 1), nn.BatchNorm1d(16))
        self.lif4 = _lif()
        self.c5 = layer.SeqToANNContainer(nn.Conv1d(16, 16, 1), nn.BatchNorm1d(16), nn.Conv1d(16, 16, 1),
                                          nn.BatchNorm1d(16))
        self.lif5 = _lif()
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lif1(self.c1(x))
        x = self.lif2(self.c2(x))
        T, B, C, N = x.shape
        y = self.mix @ x.transpose(-1, -2).flatten(0, 1) + self.mix_bias  # [T·B, N, C]: W mixes the tokens
        x = self.lif3(self.bn3(y).reshape(T, B, N, C).transpose(-1, -2).contiguous())
        x = self.lif4(self.c4(x))
        x = self.lif5(self.c5(x))
        return self.head(x.mean(-1)).mean(0)

    def negate_gamma(self) -> None:
        return None


MODELS = {"dwpool": (DWPoolNet, (2, 2, 16, 16)), "conv1d": (Conv1dNet, (2, 6, 12))}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Each model built, BN-calibrated on event counts, exported with both exporters."""
    from tests.support.zoo import _calibrate_bn, _reset_state, _set_user_surrogate

    tmp = tmp_path_factory.mktemp("convs")
    out = {}
    for key, (cls, sample) in MODELS.items():
        for dynamo in (False, True):
            torch.manual_seed(0)
            m = cls()
            if not dynamo:
                _set_user_surrogate(m)
            rng = np.random.default_rng(0)
            calib = rng.poisson(0.5, size=(sample[0], 8) + sample[1:]).astype(np.float32)
            _calibrate_bn(m, [calib], 0)
            m.negate_gamma()
            x = rng.poisson(0.5, size=(sample[0], 1) + sample[1:]).astype(np.float32)
            _reset_state(m)
            out[key, dynamo] = export_onnx(m, x, tmp / f"{key}_{'dynamo' if dynamo else 'ts'}.onnx", dynamo)
    return out


@pytest.mark.parametrize("dynamo", [False, True], ids=["ts", "dynamo"])
@pytest.mark.parametrize("key", list(MODELS))
def test_real_exports(exports, tmp_path, key, dynamo):
    """Both exporters: the new ops appear, all five quantizers are used, the neurons fire
    5–60 %, numpy = onnxruntime = C, and the integer model reproduces the fake-quant
    float model's spikes and predictions."""

    # the fake-quant float model must quantize the left weight of MatMul(W, x) too
    fe = run_frontend(str(exports[key, dynamo]))
    plan = mixed_plan(fe.layers)
    lm = lower_graph(fe.graph, fe.layers, plan)
    assert {r["quantizer"] for r in lm.layers} == set(MIXED)
    nodes = list(lm.graph.nodes())
    convs = [n for n in nodes if n.op == "QConv"]
    if key == "dwpool":
        assert sorted(int(n.attrs.get("group", 1)) for n in convs) == [1, 1, 4, 8, 16]
        assert any("sign" in n.attrs and -1 in list(n.attrs["sign"]) for n in nodes if n.op == "MaxPool")
        pools = [n for n in nodes if n.op == "SumPool"]
        assert len(pools) == 3 and sum("mult" in n.attrs for n in pools) == 1
    else:
        assert all(n.attrs["nd"] == 1 for n in convs) and len(convs) == 5
        assert sorted(int(n.attrs.get("group", 1)) for n in convs) == [1, 1, 1, 1, 4]
        (rec,) = [r for r in lm.layers if r["name"] == "c5.2"]
        assert rec["input"] == "integers"  # fed by the BN output, put on one scale
        assert [n.attrs.get("weight_left", 0) for n in nodes if n.op == "QLinear"] == [1, 0]
    for r in lm.layers:
        assert r["packed_bytes"] == -(-r["params"] * r["bits"] // 8)
    sample = MODELS[key][1]
    x = events((100,) + sample, seed=5, lam=0.5)
    xg = groups_of(x, fe)
    rates = [float(v.mean()) for v in intref.run(lm.graph, xg, names=list(lm.tensor_map.values()))]
    assert all(0.05 <= r <= 0.6 for r in rates), rates
    check_lowered(lm.graph)
    ref = backends_agree(lm.graph, xg[:12], tmp_path)
    save_lowered(lm.graph, tmp_path / "lowered.onnx")  # the new attributes survive the round trip
    loaded = load_lowered(tmp_path / "lowered.onnx")
    check_lowered(loaded)
    assert np.array_equal(intref.run(loaded, xg[:12])[0], ref)
    src = (tmp_path / "kernels" / "hqc_model.c").read_text()
    quant = {r["name"]: r["quantizer"] for r in lm.layers}
    for name, kind, body in KERNEL.findall(src):
        if name in quant and kind != "fp32":
            assert not re.search(r"\b(float|double)\b", body), name
            if kind.startswith("pot"):
                assert "*" not in body, name
    r = compare_with_float(fe, plan, lm, x)
    assert r["spikes"] >= SPIKE_AGREEMENT and r["argmax"] >= 0.99, r
