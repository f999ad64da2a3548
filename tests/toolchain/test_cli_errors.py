"""Every user-facing frontend error: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from hqc.cli import main
from tests.support.helpers import lif_loop_model, make_model


def _run(*args: str):
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.stdout, res.stderr


def _assert_one_line_error(code, out, err, pattern):
    assert code == 2, (code, out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err + out
    import re

    assert re.search(pattern, lines[0]), lines[0]


def test_not_onnx(tmp_path):
    p = tmp_path / "notes.onnx"
    p.write_text("this is not a model")
    _assert_one_line_error(*_run("inspect", str(p)), r"notes\.onnx: not a readable ONNX model")


def test_truncated_onnx(tmp_path):
    data = lif_loop_model().SerializeToString()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: len(data) // 2])
    _assert_one_line_error(*_run("inspect", str(p)), r"cut\.onnx: not a readable ONNX model")


def test_missing_file(tmp_path):
    _assert_one_line_error(*_run("inspect", str(tmp_path / "nope.onnx")), r"nope\.onnx: no such file")


def test_unsupported_op_named(tmp_path):
    nodes = [helper.make_node("Einsum", ["x", "W"], ["y"], equation="ij,jk->ik", name="mix")]
    m = make_model(nodes, [("x", [1, 3])], [("y", [1, 2])], [("W", np.ones((3, 2), np.float32))])
    p = tmp_path / "einsum.onnx"
    onnx.save(m, str(p))
    _assert_one_line_error(*_run("inspect", str(p)), r"unsupported op 'Einsum' \(node 'mix'\)")


def test_no_weight_layers(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    p = tmp_path / "relu.onnx"
    onnx.save(make_model(nodes, [("x", [1, 3])], [("y", [1, 3])]), str(p))
    _assert_one_line_error(*_run("inspect", str(p)), r"no weight layers")


def test_unrecognizable_spiking_nonlinearity(tmp_path):
    nodes = [
        helper.make_node("Greater", ["x", "y"], ["c"], name="weird_cmp"),
        helper.make_node("Cast", ["c"], ["s"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["s", "W"], ["z"]),
    ]
    m = make_model(nodes, [("x", [1, 3]), ("y", [1, 3])], [("z", [1, 2])], [("W", np.ones((3, 2), np.float32))])
    p = tmp_path / "weird.onnx"
    onnx.save(m, str(p))
    _assert_one_line_error(*_run("inspect", str(p)), r"recognize-neurons.*weird_cmp")


@pytest.mark.parametrize("as_json", [False, True])
def test_inspect_lists_layer_and_neuron(tmp_path, as_json):
    p = tmp_path / "lif.onnx"
    onnx.save(lif_loop_model(th=0.5), str(p))
    code, out, err = _run("inspect", str(p), *(["--json"] if as_json else []))
    assert code == 0, err
    if as_json:
        import json

        doc = json.loads(out)
        assert doc["schema"] == "hqc.inspect/1"
        assert [n["v_threshold"] for n in doc["neurons"]] == [0.5]
        assert doc["totals"]["layers"] == 1 and doc["layers"][0]["weight_shape"] == [5, 3]
        assert doc["layers"][0]["macs"] == 15 and doc["layers"][0]["input_kind"] == "real"
    else:
        assert "1 weight layers" in out and "hard→0" in out
