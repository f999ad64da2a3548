"""Lowering of data movement on integer tensors (hqc.lowering.tensor, hqc.intops.tensor):
Slice, Split, Concat, Gather, Pad, Expand, Tile and the reshapes, each bit-exact across
the numpy reference, onnxruntime and C, and equal to onnxruntime on the float model.

Hand-built ONNX graphs cover every attribute form (negative indices and axes, steps,
clamped ends, pads on several axes, crops, broadcasting) with per-channel scales and
offsets in front, so the affine views must follow the data; real exports (SpikingJelly's
Spikformer and a small LIF network moving spikes) go through both torch exporters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from hqc import intref
from hqc.errors import ModelError
from hqc.int_onnx import session
from hqc.intops import check_lowered
from hqc.intops.cgen import ctype
from hqc.ir import Graph, Value
from hqc.lowering.lowerer import LoweredModel
from hqc.onnx_io import from_proto, import_model, to_proto
from hqc.passes import Context, run_passes
from hqc.passes.annotate_layers import annotate_layers
from hqc.passes.lower_int import lower_graph
from hqc.pipeline import FRONTEND, run_frontend
from hqc.shapes import infer_shapes
from tests.support.lowering import (
    SPIKE_AGREEMENT,
    backends_agree,
    compare_with_float,
    export_onnx,
    groups_of,
    mixed_plan,
)
from tests.support.zoo import _calibrate_bn, _set_user_surrogate, _spikes, sj_spikformer

RANGE = (-8, 8)
X4 = (2, 4, 5, 6)  # (T, C, H, W): channel axis 1
A4 = np.array([1.0, 0.5, 0.25, 2.0], np.float32).reshape(4, 1, 1)  # dyadic: the logits stay exact
B4 = np.array([0.0, 0.5, -1.0, 0.25], np.float32).reshape(4, 1, 1)
I64_MAX, I64_MIN = 2**63 - 1, -(2**63)


# --------------------------------------------------------------------------- harness
def _i64(name: str, v) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(v, np.int64), name)


def _f32(name: str, v) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(v, np.float32), name)


def _proto(nodes: list, inits: list, x_shape: tuple[int, ...] = X4, opset: int = 17, name: str = "m") -> onnx.ModelProto:
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _model(tmp: Path, name: str, nodes: list, inits: list, x_shape: tuple[int, ...], opset: int = 17) -> Path:
    path = tmp / f"{name}.onnx"
    onnx.save(_proto(nodes, inits, x_shape, opset, name), str(path))
    return path


def _scaled(per_channel: bool = True) -> tuple[list, list]:
    """x → s = a·x + b: per-channel a, b (or one scale 0.5 and offset 0.25)."""
    a, b = (A4, B4) if per_channel else (np.float32(0.5), np.float32(0.25))
    return ([helper.make_node("Mul", ["x", "A"], ["xa"]), helper.make_node("Add", ["xa", "B"], ["s"])],
            [_f32("A", a), _f32("B", b)])


def _lower_graph(graph: Graph) -> LoweredModel:
    graph, _ = run_passes(graph, FRONTEND, Context(options={"input_layout": None}))
    lm = lower_graph(graph, annotate_layers(graph), {}, input_range=RANGE)
    check_lowered(lm.graph)
    return lm


def _inputs(shape: tuple[int, ...], n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(RANGE[0], RANGE[1] + 1, size=(n, *shape)).astype(np.float32)


def _agree(tmp: Path | None, proto: onnx.ModelProto, lm: LoweredModel, x: np.ndarray, c: bool = True) -> np.ndarray:
    """numpy = onnxruntime = C (unless c=False) on the integer model, and its logits
    (dyadic scales: exact) equal onnxruntime on the float model."""
    ref = backends_agree(lm.graph, x.astype(np.int64), tmp, c=c)
    sess = session(proto)
    want = np.stack([sess.run(None, {"x": xi})[0] for xi in x])
    assert ref.shape[1:] == want.shape[1:]
    np.testing.assert_array_equal(ref * lm.logits["scale"], want.astype(np.float64))
    return ref


def _run_case(tmp: Path, name: str, nodes: list, inits: list, x_shape=X4, opset: int = 17) -> LoweredModel:
    path = _model(tmp, name, nodes, inits, x_shape, opset)
    lm = _lower_graph(import_model(path))
    _agree(tmp, onnx.load(str(path)), lm, _inputs(x_shape))
    return lm


def _ops(lm: LoweredModel) -> dict[str, int]:
    ops = dict(lm.graph.ops())
    ops.pop("Requant")
    return ops


# --------------------------------------------------------------------------- Slice
SLICES = {
    # starts, ends, axes, steps (None: input left out)
    "channels_and_negative_axis_step2": ([1, -5], [4, 100], [1, -1], [1, 2]),
    "negative_step_through_0": ([-1], [I64_MIN], [2], [-2]),
    "two_negative_steps": ([3, 4], [0, 1], [1, 3], [-1, -3]),
    "default_axes_and_steps": ([0, 1], [1, 3], None, None),
    "start_before_0_negative_step": ([-10], [-20], [3], [-1]),
    "int64_limits": ([I64_MAX, 0], [I64_MIN, I64_MAX], [-3, 0], [-1, 1]),
}


@pytest.mark.parametrize("case", list(SLICES), ids=list(SLICES))
def test_slice_forms(tmp_path, case):
    starts, ends, axes, steps = SLICES[case]
    pre, inits = _scaled()
    inits += [_i64("st", starts), _i64("en", ends)]
    ins = ["s", "st", "en"]
    if axes is not None:
        inits.append(_i64("ax", axes))
        ins.append("ax")
    if steps is not None:
        inits.append(_i64("sp", steps))
        ins.append("sp")
    lm = _run_case(tmp_path, f"slice_{case}", pre + [helper.make_node("Slice", ins, ["y"])], inits)
    assert _ops(lm) == {"Slice": 1}


def test_slice_taking_everything_is_no_op(tmp_path):
    pre, inits = _scaled()
    inits += [_i64("st", [0, -100]), _i64("en", [I64_MAX, 6]), _i64("ax", [1, 3])]
    lm = _run_case(tmp_path, "slice_all", pre + [helper.make_node("Slice", ["s", "st", "en", "ax"], ["y"])], inits)
    assert _ops(lm) == {}


@settings(max_examples=30, deadline=None)
@given(axis=st.integers(-4, 3), start=st.sampled_from([*range(-8, 9), I64_MIN, I64_MAX]),
       end=st.sampled_from([*range(-8, 9), I64_MIN, I64_MAX]), step=st.sampled_from([-3, -2, -1, 1, 2, 3]))
def test_slice_index_rules_are_onnxruntime_s(axis, start, end, step):
    """Any start/end/step/axis: the lowering's normalization takes what onnxruntime takes
    (an empty result is a clear error). One exception: onnxruntime reads end = INT64_MAX
    with a negative step as "through index 0", where the ONNX specification (and its shape
    inference, which the frontend uses) clamps it to dim − 1; the lowering follows the
    specification."""
    pre, inits = _scaled()
    nodes = pre + [helper.make_node("Slice", ["s", "st", "en", "ax", "sp"], ["y"])]
    proto = _proto(nodes, inits + [_i64("st", [start]), _i64("en", [end]), _i64("ax", [axis]), _i64("sp", [step])])
    x = _inputs(X4, n=2)
    if session(proto).run(None, {"x": x[0]})[0].size == 0 or (step < 0 and end == I64_MAX):
        with pytest.raises(ModelError, match=r"\(Slice\): slice .* is empty"):
            _lower_graph(from_proto(proto))
        return
    _agree(None, proto, _lower_graph(from_proto(proto)), x, c=False)


@settings(max_examples=30, deadline=None)
@given(pads=st.lists(st.integers(-2, 3), min_size=8, max_size=8), mode=st.sampled_from(["constant", "edge"]))
def test_pad_crops_and_pads_as_onnxruntime(pads, mode):
    """Any mix of negative (crop) and positive pads on the view 0.5·X + 0.25, padded with
    v = 1.75 (the integer 3) or by edge copies."""
    assume(all(max(0, -p) < d + min(0, q) for d, p, q in zip(X4, pads[:4], pads[4:], strict=True)))
    pre, inits = _scaled(False)
    nodes = pre + [helper.make_node("Pad", ["s", "pads", "v"], ["y"], mode=mode)]
    proto = _proto(nodes, inits + [_i64("pads", pads), _f32("v", 1.75)])
    _agree(None, proto, _lower_graph(from_proto(proto, "pad")), _inputs(X4, n=2), c=False)


# --------------------------------------------------------------------------- Split
def test_split_forms(tmp_path):
    """num_outputs (opset 18, uneven: the last part smaller), a split input (opset 13+),
    equal parts; the parts concatenated back in another order (per-channel a follows)."""
    pre, inits = _scaled()
    nodes = pre + [
        helper.make_node("Split", ["s"], ["h0", "h1", "h2"], axis=2, num_outputs=3),  # 5 → 2, 2, 1
        helper.make_node("Concat", ["h2", "h0", "h1"], ["hc"], axis=2),
        helper.make_node("Split", ["hc", "sz"], ["c0", "c1"], axis=-3),  # channels 1 + 3
        helper.make_node("Concat", ["c1", "c0"], ["cc"], axis=1),
        helper.make_node("Split", ["cc"], ["t0", "t1"], axis=0, num_outputs=2),
        helper.make_node("Concat", ["t1", "t0"], ["y"], axis=0),
    ]
    lm = _run_case(tmp_path, "split_forms", nodes, inits + [_i64("sz", [1, 3])], opset=18)
    assert _ops(lm) == {"Slice": 7, "Concat": 3}


def test_split_equal_parts_and_unused_outputs(tmp_path):
    pre, inits = _scaled()
    nodes = pre + [helper.make_node("Split", ["s"], ["w0", "w1", "w2"], axis=-1)]  # opset 17: 6 → 2, 2, 2
    lm = _run_case(tmp_path, "split_unused", nodes + [helper.make_node("Identity", ["w1"], ["y"])], inits)
    assert _ops(lm) == {"Slice": 1}  # only the used part is copied


# --------------------------------------------------------------------------- Concat
def test_concat_equal_scales_along_any_axis(tmp_path):
    pre, inits = _scaled()
    nodes = pre + [
        helper.make_node("Slice", ["s", "st", "en", "ax"], ["part"]),
        helper.make_node("Concat", ["s", "part", "s"], ["y"], axis=-1),
    ]
    inits += [_i64("st", [2]), _i64("en", [4]), _i64("ax", [3])]
    lm = _run_case(tmp_path, "concat_equal", nodes, inits)
    node = next(n for n in lm.graph.nodes() if n.op == "Concat")
    assert node.attrs["axis"] == 3 and len(node.inputs) == 3


@pytest.mark.parametrize("per_channel", [True, False], ids=["per_channel", "scalar"])
def test_concat_along_the_axis_where_scales_differ(tmp_path, per_channel):
    """Two views with different scales (per channel, or one scale each) concatenated
    along the channel axis: a, b concatenated exactly, no rescaling op."""
    a2, b2 = (A4[::-1] * 4, B4 * 2) if per_channel else (np.float32(0.25), np.float32(-0.5))
    a1, b1 = (A4, B4) if per_channel else (np.float32(0.5), np.float32(1.0))
    nodes = [
        helper.make_node("Mul", ["x", "A1"], ["p"]), helper.make_node("Add", ["p", "B1"], ["p1"]),
        helper.make_node("Mul", ["x", "A2"], ["q"]), helper.make_node("Add", ["q", "B2"], ["q1"]),
        helper.make_node("Concat", ["p1", "q1"], ["y"], axis=1),
    ]
    inits = [_f32("A1", a1), _f32("B1", b1), _f32("A2", np.ascontiguousarray(a2)), _f32("B2", b2)]
    lm = _run_case(tmp_path, f"concat_scales_{per_channel}", nodes, inits)
    assert _ops(lm) == {"Concat": 1}
    mult = np.asarray(next(n for n in lm.graph.nodes() if n.op == "Requant").attrs["mult"])
    assert mult.shape == (1, 8, 1, 1) and len(set(mult.reshape(-1).tolist())) > 1


def test_concat_of_scales_differing_off_axis_asks_for_a_common_scale(tmp_path, monkeypatch):
    """Per-channel scales that differ between the inputs, concatenated along time, go
    through arith.common_scale (with the concatenation axis)."""
    import hqc.lowering.arith as arith

    seen = {}

    def fake(lw, node, syms, axis=None):
        seen.update(n=len(syms), axis=axis, a=[s.a.shape for s in syms])
        raise lw.unsupported(node, "common scale (test stub)")

    monkeypatch.setattr(arith, "common_scale", fake)
    nodes = [helper.make_node("Mul", ["x", "A1"], ["p"]), helper.make_node("Mul", ["x", "A2"], ["q"]),
             helper.make_node("Concat", ["p", "q"], ["y"], axis=0)]
    path = _model(tmp_path, "concat_common", nodes, [_f32("A1", A4), _f32("A2", A4 * 2)], X4)
    with pytest.raises(ModelError, match=r"\(Concat\): common scale \(test stub\)"):
        _lower_graph(import_model(path))
    assert seen == {"n": 2, "axis": 0, "a": [(1, 4, 1, 1), (1, 4, 1, 1)]}


# --------------------------------------------------------------------------- Gather
GATHERS = {
    "scalar_on_channels": (np.array(2), 1),
    "negative_scalar_last_axis": (np.array(-1), -1),
    "array_repeats_negative": (np.array([3, 0, 0, -1]), 1),
    "two_d_indices": (np.array([[0, 1], [4, 2]]), 2),
    "axis0": (np.array([1, 0, 1]), 0),
}


@pytest.mark.parametrize("case", list(GATHERS), ids=list(GATHERS))
def test_gather_forms(tmp_path, case):
    idx, axis = GATHERS[case]
    pre, inits = _scaled()
    lm = _run_case(tmp_path, f"gather_{case}", pre + [helper.make_node("Gather", ["s", "i"], ["y"], axis=axis)],
                   inits + [_i64("i", idx)])
    assert _ops(lm) == {"Gather": 1}


def test_gather_of_every_index_in_order_is_no_op(tmp_path):
    pre, inits = _scaled()
    lm = _run_case(tmp_path, "gather_all", pre + [helper.make_node("Gather", ["s", "i"], ["y"], axis=1)],
                   inits + [_i64("i", [0, 1, 2, 3])])
    assert _ops(lm) == {}


# --------------------------------------------------------------------------- Pad
def _pad_case(tmp: Path, name: str, pads, value: float | None, per_channel: bool | None, axes=None,
              mode: str = "constant", opset: int = 17) -> LoweredModel:
    pre, inits = _scaled(per_channel) if per_channel is not None else ([helper.make_node("Identity", ["x"], ["s"])], [])
    ins = ["s", "pads"]
    inits.append(_i64("pads", pads))
    if value is not None or axes is not None:
        ins.append("v" if value is not None else "")
        if value is not None:
            inits.append(_f32("v", value))
    if axes is not None:
        ins.append("axes")
        inits.append(_i64("axes", axes))
    return _run_case(tmp, name, pre + [helper.make_node("Pad", ins, ["y"], mode=mode)], inits, opset=opset)


def test_pad_zeros_on_several_axes(tmp_path):
    lm = _pad_case(tmp_path, "pad_zero", [0, 0, 1, 2, 0, 0, 3, 0], None, None)
    pad = next(n for n in lm.graph.nodes() if n.op == "Pad")
    assert pad.attrs["value"] == 0 and lm.graph.meta["bounds"][pad.outputs[0]] == RANGE


def test_pad_value_maps_to_its_integer(tmp_path):
    """v = 1.75 on the view 0.5·X + 0.25 is the integer 3."""
    lm = _pad_case(tmp_path, "pad_value", [1, 0, 0, 2, 0, 1, 1, 0], 1.75, False)
    assert next(n for n in lm.graph.nodes() if n.op == "Pad").attrs["value"] == 3


def test_pad_channels_of_per_channel_scales(tmp_path):
    """Padding the axis where a varies: the padded channels take the edge scales."""
    nodes = [helper.make_node("Mul", ["x", "A"], ["s"]), helper.make_node("Pad", ["s", "pads"], ["y"])]
    lm = _run_case(tmp_path, "pad_channels", nodes, [_f32("A", A4), _i64("pads", [0, 1, 0, 0, 0, 2, 0, 1])])
    assert _ops(lm) == {"Pad": 1}


def test_pad_negative_pads_crop(tmp_path):
    lm = _pad_case(tmp_path, "pad_crop", [0, -1, 2, -2, 0, 0, -1, 1], 0.0, None)
    assert _ops(lm) == {"Slice": 1, "Pad": 1}


def test_pad_axes_input(tmp_path):
    """Pad-18: pads for the listed axes only (negative axes)."""
    lm = _pad_case(tmp_path, "pad_axes", [1, 0, 2, 1], 0.25, False, axes=[-1, 2], opset=18)
    assert next(n for n in lm.graph.nodes() if n.op == "Pad").attrs["pads"] == [0, 0, 0, 1, 0, 0, 1, 2]


@pytest.mark.parametrize("mode,opset", [("edge", 17), ("reflect", 17), ("wrap", 19)])
def test_pad_index_modes(tmp_path, mode, opset):
    lm = _pad_case(tmp_path, f"pad_{mode}", [0, 1, 2, 1, 0, 2, 1, 3], None, True, mode=mode, opset=opset)
    assert _ops(lm) == {"Gather": 3}


def test_pad_value_off_the_grid_is_an_error(tmp_path):
    with pytest.raises(ModelError, match=r"lower-int: node .* \(Pad\): the pad value 0.3 is not on the integer grid "
                                         r"of its input: \(v − b\)/a = 0.1 is not an integer"):
        _pad_case(tmp_path, "pad_err", [0, 0, 1, 1, 0, 0, 1, 1], 0.3, False)


def test_pad_value_of_several_integers_is_an_error(tmp_path):
    """v = 1 on channels of scales 1, 1/2, 1/4, 1/8 would be the integers 1, 2, 4, 8."""
    nodes = [helper.make_node("Mul", ["x", "A"], ["s"]), helper.make_node("Pad", ["s", "pads", "v"], ["y"])]
    path = _model(tmp_path, "pad_err2", nodes, [_f32("A", np.exp2(-np.arange(4.0)).reshape(4, 1, 1)),
                                               _i64("pads", [0, 0, 1, 0, 0, 0, 0, 0]), _f32("v", 1.0)], X4)
    with pytest.raises(ModelError, match=r"\(Pad\): the pad value 1 is the integer 1 in some padded elements and 2 "
                                         r"in others \(their scales differ\); one integer pad value is needed"):
        _lower_graph(import_model(path))


@pytest.mark.parametrize("pads,mode,match", [
    ([0, 0, 0, 6, 0, 0, 0, 0], "reflect", r"reflect padding of 6 on axis 3 of size 6"),
    ([0, 0, -1, 0, 0, 0, 2, 0], "wrap", r"negative pads in wrap mode"),
    ([0, 0, 2, 0, 0, 0, -7, 0], "constant", r"negative pads remove every element of axis 2 \(the output would hold "
                                            r"only padding\)"),
])
def test_pad_mode_errors(tmp_path, pads, mode, match):
    with pytest.raises(ModelError, match=r"\(Pad\): " + match):
        _pad_case(tmp_path, "pad_err3", pads, None, True, mode=mode, opset=19)


# --------------------------------------------------------------------------- Expand, Tile
@pytest.mark.parametrize("shape,ops", [((2, 4, 5, 3), {"Reshape": 1, "Expand": 1}),
                                       ((4, 6, 1), {"Expand": 1}),
                                       ((6, 1), {"Expand": 1}),
                                       ((1, 1, 1), {})], ids=["rank_up", "broadcast", "shorter_shape", "no_op"])
def test_expand(tmp_path, shape, ops):
    nodes = [helper.make_node("Mul", ["x", "A"], ["s"]), helper.make_node("Expand", ["s", "shape"], ["y"])]
    lm = _run_case(tmp_path, "expand", nodes, [_f32("A", A4), _i64("shape", shape)],
                   x_shape=(4, 1, 3))
    assert _ops(lm) == ops


@pytest.mark.parametrize("reps,x_shape,ops", [
    ([1, 2, 1, 3], X4, {"Reshape": 2, "Expand": 1}),
    ([2, 3, 1], (4, 1, 3), {"Reshape": 2, "Expand": 1}),
    ([1, 1, 1, 1], X4, {}),
], ids=["per_channel_axis", "size_1_axis", "no_op"])
def test_tile(tmp_path, reps, x_shape, ops):
    nodes = [helper.make_node("Mul", ["x", "A"], ["s"]), helper.make_node("Tile", ["s", "r"], ["y"])]
    lm = _run_case(tmp_path, "tile", nodes, [_f32("A", A4), _i64("r", reps)],
                   x_shape=x_shape)
    assert _ops(lm) == ops


# --------------------------------------------------------------------------- reshapes
def test_squeeze_unsqueeze_flatten_identity(tmp_path):
    """Opset 13+ forms: axes as inputs, negative axes, Squeeze without axes, Flatten's
    axis; an Identity in between."""
    pre, inits = _scaled()
    nodes = pre + [
        helper.make_node("Unsqueeze", ["s", "ua"], ["u"]),  # (1, 2, 4, 5, 6, 1)
        helper.make_node("Squeeze", ["u", "sa"], ["q"]),  # (1, 2, 4, 5, 6)
        helper.make_node("Identity", ["q"], ["qi"]),
        helper.make_node("Squeeze", ["qi"], ["q2"]),  # (2, 4, 5, 6)
        helper.make_node("Flatten", ["q2"], ["y"], axis=2),  # (8, 30)
    ]
    lm = _run_case(tmp_path, "reshapes", nodes, inits + [_i64("ua", [0, -1]), _i64("sa", [-1])])
    assert set(_ops(lm)) == {"Reshape"}


def test_reshape_of_a_scale_varying_over_two_axes(tmp_path):
    """a per (channel, row): Flatten merges the two axes — the view follows element by element."""
    a = np.exp2(-(np.arange(20.0).reshape(4, 5, 1) % 3))
    nodes = [helper.make_node("Mul", ["x", "A"], ["s"]), helper.make_node("Flatten", ["s"], ["f"], axis=1),
             helper.make_node("Reshape", ["f", "shp"], ["y"])]
    _run_case(tmp_path, "reshape_2axes", nodes, [_f32("A", a), _i64("shp", [2, 4, 30])])


def test_attribute_forms_of_old_opsets(tmp_path):
    """Slice-1, Split-2, Pad-2, Squeeze-1 / Unsqueeze-1 take attributes (opset ≤ 9; the
    importer starts at 13, so the IR is built directly): same rules, same results."""
    g = Graph(name="old", opset=9)
    g.inputs, g.outputs = ["x"], ["y"]
    g.values["x"] = Value(X4, "float32")
    g.add_const("A", np.float32(0.5))
    g.add_node("Mul", ["x", "A"], ["s"], {})
    g.add_node("Slice", ["s"], ["sl"], {"starts": [1, 2], "ends": [4, 100], "axes": [1, 3]})
    g.add_node("Split", ["sl"], ["p0", "p1"], {"axis": 1, "split": [1, 2]})
    g.add_node("Concat", ["p1", "p0"], ["c"], {"axis": 1})
    g.add_node("Pad", ["c"], ["pd"], {"pads": [0, 0, 1, 0, 0, 1, 0, 2], "value": 1.5})
    g.add_node("Unsqueeze", ["pd"], ["u"], {"axes": [0]})
    g.add_node("Squeeze", ["u"], ["y"], {"axes": [0]})
    infer_shapes(g)
    proto = to_proto(g)
    lm = _lower_graph(g)
    assert next(n for n in lm.graph.nodes() if n.op == "Pad").attrs["value"] == 3
    _agree(tmp_path, proto, lm, _inputs(X4))


def test_every_movement_op_round_trips_through_lowered_onnx(tmp_path):
    """lowered.onnx (intref.save_lowered / load_lowered) keeps every attribute: the loaded
    graph passes check_lowered and computes the same integers."""
    nodes = [helper.make_node("Mul", ["x", "A"], ["s"]),
             helper.make_node("Slice", ["s", "st", "en", "ax", "sp"], ["sl"]),
             helper.make_node("Gather", ["sl", "i"], ["g"], axis=1),
             helper.make_node("Gather", ["g", "i0"], ["g0"], axis=-1),
             helper.make_node("Concat", ["g0", "g0"], ["c"], axis=1),
             helper.make_node("Pad", ["c", "pads"], ["p"]),
             helper.make_node("Tile", ["p", "r"], ["tl"]),
             helper.make_node("Expand", ["tl", "shp"], ["y"])]
    inits = [_f32("A", A4), _i64("st", [3, 4]), _i64("en", [0, 1]), _i64("ax", [1, 3]), _i64("sp", [-1, -3]),
             _i64("i", [2, 0]), _i64("i0", 0), _i64("pads", [0, 0, 1, 0, 1, 2]), _i64("r", [1, 2, 3]),
             _i64("shp", [2, 1, 1, 1])]
    lm = _run_case(tmp_path, "all_moves", nodes, inits)
    assert {"Slice", "Gather", "Concat", "Pad", "Expand", "Reshape"} <= set(lm.graph.ops())
    intref.save_lowered(lm.graph, tmp_path / "lowered.onnx")
    back = intref.load_lowered(tmp_path / "lowered.onnx")
    check_lowered(back)
    x = _inputs(X4).astype(np.int64)
    np.testing.assert_array_equal(intref.run(back, x)[0], intref.run(lm.graph, x)[0])


# --------------------------------------------------------------------------- errors
def test_gather_with_run_time_indices_is_an_error(tmp_path):
    path = _model(tmp_path, "gather_rt", [helper.make_node("Gather", ["x", "i"], ["y"], axis=1)],
                  [_i64("i", [0, 1])], X4)
    g, _ = run_passes(import_model(path), FRONTEND, Context(options={"input_layout": None}))
    node = next(n for n in g.nodes() if n.op == "Gather")
    g.constants.pop("i")  # as if computed from the data
    g.values["i"] = Value((2,), "int64")
    g.set_inputs(node.name, ["x", "i"])
    with pytest.raises(ModelError, match=r"\(Gather\): Gather with indices computed at run time"):
        lower_graph(g, [], {}, input_range=RANGE)


def test_empty_slice_is_an_error(tmp_path):
    nodes = [helper.make_node("Slice", ["x", "st", "en", "ax"], ["y"])]
    path = _model(tmp_path, "slice_empty", nodes, [_i64("st", [3]), _i64("en", [1]), _i64("ax", [1])], X4)
    with pytest.raises(ModelError, match=r"\(Slice\): slice 3:1:1 of axis 1 \(size 4\) is empty"):
        _lower_graph(import_model(path))


# --------------------------------------------------------------------------- real exports
@pytest.mark.parametrize("dynamo", [False, True], ids=["ts", "dynamo"])
def test_sj_spikformer_lowers_through_its_qkv_split(zoo_build, tmp_path, dynamo):
    """SpikingJelly's Spikformer splits its fused qkv: Split (dynamo) or three Slices
    (TorchScript). It now lowers fully; every neuron fires; numpy = ORT = C; the integer
    model agrees with the fake-quant float model."""
    zm = zoo_build(sj_spikformer, dict(dynamo=dynamo, depth=1, dim=32, heads=2, T=2, img=16))
    fe = run_frontend(str(zm.onnx_path))
    assert fe.graph.ops().get("Split" if dynamo else "Slice", 0) == (1 if dynamo else 3)
    plan = mixed_plan(fe.layers)
    lm = lower_graph(fe.graph, fe.layers, plan)
    check_lowered(lm.graph)
    assert lm.graph.ops()["Slice"] == 3
    x = _spikes(np.random.default_rng(1), (6, zm.T, 2, 16, 16))
    g = groups_of(x, fe)
    backends_agree(lm.graph, g, tmp_path)
    rates = [float(v.mean()) for v in intref.run(lm.graph, g, names=list(lm.tensor_map.values()))]
    assert len(rates) == len(fe.neurons) and all(0.05 <= r <= 0.6 for r in rates), rates
    r = compare_with_float(fe, plan, lm, x)
    assert r["spikes"] >= SPIKE_AGREEMENT and r["argmax"] >= 0.99, r


class Movement(nn.Module):
    """Spikes moved between LIF layers: a channel split into two branches (one zero-padded
    before its unpadded conv), concatenated back, channels picked (index_select) and
    repeated (Tile), a strided spatial slice before the head."""

    def __init__(self) -> None:
        super().__init__()
        from spikingjelly.activation_based import neuron

        def block(cin: int, cout: int, k: int, pad: int) -> nn.ModuleList:
            return nn.ModuleList([nn.Conv2d(cin, cout, k, padding=pad, bias=False), nn.BatchNorm2d(cout),
                                  neuron.LIFNode(tau=2.0, step_mode="m")])

        self.b1, self.b2, self.b3, self.b4 = block(2, 8, 3, 1), block(4, 4, 1, 0), block(4, 4, 3, 0), block(8, 8, 3, 1)
        self.register_buffer("pick", torch.tensor([0, 3, 5, 6]))
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, 2, 8, 8]
        T, B = x.shape[:2]

        def run(blk: nn.ModuleList, v: torch.Tensor) -> torch.Tensor:
            y = blk[1](blk[0](v.flatten(0, 1)))
            return blk[2](y.reshape(T, B, *y.shape[1:]))

        s = run(self.b1, x)
        a, b = s.chunk(2, dim=2)
        y = torch.cat([run(self.b2, a), run(self.b3, F.pad(b, (1, 1, 1, 1)))], dim=2)
        z = run(self.b4, y.index_select(2, self.pick).repeat(1, 1, 2, 1, 1))
        return self.fc(z[:, :, :, 1::2, ::2].flatten(2)).mean(0)


@pytest.mark.parametrize("dynamo", [False, True], ids=["ts", "dynamo"])
def test_spike_movement_model(tmp_path, dynamo):
    torch.manual_seed(0)
    m = Movement()
    if not dynamo:
        _set_user_surrogate(m)
    rng = np.random.default_rng(0)
    _calibrate_bn(m, [_spikes(rng, (2, 8, 2, 8, 8))], 0)
    m.eval()
    path = export_onnx(m, _spikes(rng, (2, 1, 2, 8, 8)), tmp_path / "movement.onnx", dynamo)
    fe = run_frontend(str(path))
    front = fe.graph.ops()
    assert {"Pad", "Concat", "Gather", "Tile", "Slice"} <= set(front) and ("Split" in front) == dynamo
    plan = mixed_plan(fe.layers)
    lm = lower_graph(fe.graph, fe.layers, plan)
    check_lowered(lm.graph)
    assert {op: lm.graph.ops().get(op, 0) for op in ("Slice", "Pad", "Concat", "Gather", "Expand")} == \
        {"Slice": 4, "Pad": 1, "Concat": 1, "Gather": 1, "Expand": 1}
    pad = next(n for n in lm.graph.nodes() if n.op == "Pad")
    assert pad.attrs["value"] == 0
    bounds = lm.graph.meta["bounds"]
    moves = [n for n in lm.graph.nodes() if n.op in ("Slice", "Pad", "Concat", "Gather", "Expand")]
    assert {ctype(*bounds[n.outputs[0]]) for n in moves} == {"uint8_t"}  # spikes stay spikes
    x = _spikes(np.random.default_rng(1), (8, 2, 2, 8, 8))
    g = groups_of(x, fe)
    backends_agree(lm.graph, g, tmp_path)
    rates = [float(v.mean()) for v in intref.run(lm.graph, g, names=list(lm.tensor_map.values()))]
    assert len(rates) == 4 and all(0.05 <= r <= 0.6 for r in rates), rates
    r = compare_with_float(fe, plan, lm, x)
    assert r["spikes"] >= SPIKE_AGREEMENT and r["argmax"] >= 0.99, r


# --------------------------------------------------------------------------- float backend
@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "wrap"])
def test_backend_pad_and_reversed_slice_equal_onnxruntime(tmp_path, mode):
    """The float model the lowering is compared with runs Pad (every mode) and a
    negative-step Slice like onnxruntime."""
    import onnx
    import onnxruntime as ort
    import torch

    from hqc.backend import TorchModel
    from hqc.onnx_io import import_model

    shape = [2, 1, 3, 5, 6]  # (T, B, C, H, W)
    pads = [0, 0, 0, 1, 2, 0, 0, 0, 2, 1] if mode != "constant" else [0, 0, 1, -1, 2, 0, 0, 0, 2, -2]
    nodes = [
        helper.make_node("Pad", ["x", "pads", "v"], ["p"], mode=mode),
        helper.make_node("Slice", ["p", "st", "en", "ax", "sp"], ["y"]),
    ]
    inits = [_i64("pads", pads), _f32("v", 0.5), _i64("st", [-1, 4]), _i64("en", [-100, 0]),
             _i64("ax", [4, 3]), _i64("sp", [-2, -1])]
    g = helper.make_graph(nodes, "pad", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = tmp_path / "pad.onnx"
    onnx.save(m, str(path))
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    want = ort.InferenceSession(str(path)).run(None, {"x": x})[0]
    model = TorchModel(import_model(path), input_layout="TB").eval()
    got = model.forward_all(torch.from_numpy(x.transpose(1, 0, 2, 3, 4)), names=["y"])[0]  # (G, *shape)
    assert got.shape[1:] == want.shape and np.array_equal(got[0].numpy(), want)
