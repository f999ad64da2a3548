"""ONNX → IR → ONNX round trips give the same outputs in onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from hqc.errors import ModelError, UnsupportedOpError
from hqc.ir import verify
from hqc.onnx_io import from_proto, import_model, to_proto
from tests.support.helpers import FLOAT_ATOL, FLOAT_RTOL, lif_loop_model, make_model, run_ort


@pytest.mark.parametrize("opset", [17, 18, 20, 23])
def test_round_trip_same_outputs(opset):
    model = lif_loop_model(opset=opset)
    g = from_proto(model)
    assert verify(g) == []
    x = np.random.default_rng(1).normal(1.0, 1.0, size=(4, 1, 3)).astype(np.float32)
    want = run_ort(model, {"X": x})
    got = run_ort(to_proto(g), {"X": x})
    np.testing.assert_allclose(got[0], want[0], rtol=FLOAT_RTOL, atol=FLOAT_ATOL)


def test_constant_nodes_become_constants():
    nodes = [
        helper.make_node("Constant", [], ["c"], value_float=2.0),
        helper.make_node("Mul", ["x", "c"], ["y"]),
    ]
    g = from_proto(make_model(nodes, [("x", [2])], [("y", [2])]))
    assert "c" in g.constants and float(g.constants["c"]) == 2.0
    assert g.ops() == {"Mul": 1}


def test_external_data_beside_the_model(tmp_path):
    model = lif_loop_model()
    want = next(onnx.numpy_helper.to_array(t) for t in model.graph.initializer if t.name == "W").copy()
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="m.onnx.data", size_threshold=0)
    assert (tmp_path / "m.onnx.data").exists()
    g = import_model(path)
    np.testing.assert_array_equal(g.constants["W"], want)


def test_external_data_outside_the_folder_is_refused(tmp_path):
    model = lif_loop_model()
    sub = tmp_path / "sub"
    sub.mkdir()
    onnx.save(model, str(tmp_path / "m.onnx"), save_as_external_data=True, location="w.data", size_threshold=0)
    m = onnx.load(str(tmp_path / "m.onnx"), load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../w.data"
    onnx.save(m, str(sub / "m.onnx"))
    with pytest.raises(ModelError, match="outside the model's folder"):
        import_model(sub / "m.onnx")


def test_unsupported_op_is_named():
    nodes = [helper.make_node("Loop", ["n", "c"], ["y"], name="my_loop")]
    model = make_model(nodes, [("n", [1]), ("c", [1])], [("y", [1])])
    with pytest.raises(UnsupportedOpError, match="unsupported op 'Loop' \\(node 'my_loop'\\)"):
        from_proto(model)


def test_opset_out_of_range():
    model = lif_loop_model()
    model.opset_import[0].version = 9
    with pytest.raises(ModelError, match="opset 9 is not supported"):
        from_proto(model)
