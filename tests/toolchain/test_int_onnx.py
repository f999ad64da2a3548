"""model.int.onnx: onnxruntime gives the numpy reference's integer logits exactly (both
exporters, all five quantizers); integer ops only outside fp32 layers."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from hqc import int_onnx, intref
from tests.support.lowering import TINY, bn_forms_onnx, events, groups_of, lower_zoo, mixed_plan
from tests.support.zoo import example_spikformer

FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
               onnx.TensorProto.BFLOAT16}


@pytest.fixture(params=[False, True], ids=["ts", "dynamo"])
def lowered(request, zoo_build):
    zm = zoo_build(example_spikformer, {**TINY, "dynamo": request.param})
    fe, plan, lm = lower_zoo(zm, plan_offset=2)
    return zm, fe, lm


def test_onnxruntime_equals_reference(lowered):
    zm, fe, lm = lowered
    model = int_onnx.to_int_onnx(lm.graph)
    x = groups_of(events((12, zm.T, 2, 16, 16), seed=5, lam=0.7), fe)
    ref = intref.run(lm.graph, x)[0]
    got = int_onnx.run_ort(int_onnx.session(model), x)
    assert got.dtype == np.int64 and np.array_equal(got, ref)


def test_no_float_outside_fp32_layers(lowered):
    _, _, lm = lowered
    model = onnx.shape_inference.infer_shapes(int_onnx.to_int_onnx(lm.graph), strict_mode=True)
    g = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in list(g.value_info) + list(g.input) + list(g.output)}
    types.update({i.name: i.data_type for i in g.initializer})
    assert types[g.output[0].name] == onnx.TensorProto.INT64
    assert types[g.input[0].name] == onnx.TensorProto.INT64
    fp32_layers = {r["name"] for r in lm.layers if r["quantizer"] == "fp32"}
    islands = set()
    for node in g.node:
        tensors = [t for t in list(node.input) + list(node.output) if t]
        if any(types.get(t) in FLOAT_TYPES for t in tensors):
            assert node.doc_string.startswith(int_onnx.FP32_MARK), (node.name, node.op_type)
            islands.add(node.doc_string.split(" ", 1)[1])
    assert islands == fp32_layers
    allowed = {"Pad", "Reshape", "Gather", "MatMul", "Transpose", "Identity", "Mul", "Add", "Sub", "Div",
               "GreaterOrEqual", "Where", "Cast", "Unsqueeze", "Concat", "ReduceMax", "ReduceSum"}
    assert {n.op_type for n in g.node} <= allowed


def test_batchnorm_forms_onnx(tmp_path):
    from hqc.passes.lower_int import lower_graph
    from hqc.pipeline import run_frontend

    fe = run_frontend(str(bn_forms_onnx(tmp_path, True)))
    lm = lower_graph(fe.graph, fe.layers, mixed_plan(fe.layers, 3))
    x = groups_of(events((10, 2, 5, 8), seed=6, lam=1.0), fe)
    got = int_onnx.run_ort(int_onnx.session(int_onnx.to_int_onnx(lm.graph)), x)
    assert np.array_equal(got, intref.run(lm.graph, x)[0])
