"""Bad ONNX files through `hqc inspect`: one line naming the file and the problem, exit 2,
no traceback. Each case is a file a user could hand us."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import helper

from hqc.cli import main
from tests.support.helpers import lif_loop_model, make_model


def _write(tmp_path, model: onnx.ModelProto, name: str = "m.onnx"):
    p = tmp_path / name
    p.write_bytes(model.SerializeToString())
    return p


def _linear(**over):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")]
    inits = [("W", over.pop("W", np.ones((3, 2), np.float32)))]
    return make_model(nodes, [("x", over.pop("xshape", [1, 3]))], [("y", [1, 2])], inits)


def _cycle():
    m = make_model(
        [helper.make_node("Add", ["x", "b"], ["a"], name="n1"), helper.make_node("MatMul", ["a", "W"], ["b"], name="n2")],
        [("x", [1, 3])],
        [("b", [1, 3])],
        [("W", np.ones((3, 3), np.float32))],
    )
    return m


def _missing_init():
    m = _linear()
    del m.graph.initializer[:]
    return m


def _nan_weights():
    return _linear(W=np.array([[np.nan, 1], [1, 1], [1, 1]], np.float32))


def _absurd_dims():
    return _linear(xshape=[100000, 100000, 3])


def _invalid_graph():
    m = _linear()
    m.graph.node[0].input[0] = "ghost"
    return m


def _no_inputs():
    m = _linear()
    del m.graph.input[:]
    return m


def _huge_initializer():
    m = _linear()
    t = m.graph.initializer[0]
    del t.dims[:]
    t.dims.extend([1 << 20, 1 << 20])
    return m


def _dynamic_unresolvable():
    nodes = [
        helper.make_node("NonZero", ["x"], ["nz"], name="nz"),
    ]
    return make_model(nodes, [("x", [1, 3])], [("nz", None)])


CASES = {
    "cycle": (_cycle, r"cycle"),
    "missing initializer": (_missing_init, r"reads 'W', which no node, input or initializer defines"),
    "NaN weights": (_nan_weights, r"initializer 'W' contains NaN or Inf"),
    "absurd input dims": (_absurd_dims, r"input 'x' declares shape \[100000, 100000, 3\].*over the limit"),
    "undefined tensor": (_invalid_graph, r"reads 'ghost'"),
    "no inputs": (_no_inputs, r"has no inputs"),
    "huge initializer": (_huge_initializer, r"tensor 'W' declares \[1048576, 1048576\].*over the limit"),
    "unsupported op": (_dynamic_unresolvable, r"unsupported op 'NonZero' \(node 'nz'\)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_onnx_is_one_clear_line(tmp_path, case):
    build, pattern = CASES[case]
    p = _write(tmp_path, build())
    res = CliRunner().invoke(main, ["inspect", str(p)])
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code == 2, (res.exit_code, res.stderr, res.stdout)
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert str(p) in lines[0] or "m.onnx" in lines[0] or "input" in lines[0]


def test_external_data_missing(tmp_path):
    model = lif_loop_model()
    onnx.save(model, str(tmp_path / "m.onnx"), save_as_external_data=True, location="m.onnx.data", size_threshold=0)
    (tmp_path / "m.onnx.data").unlink()
    res = CliRunner().invoke(main, ["inspect", str(tmp_path / "m.onnx")])
    assert res.exit_code == 2 and re.search(r"external data file 'm\.onnx\.data' .* is missing", res.stderr)


def test_external_data_truncated(tmp_path):
    model = lif_loop_model()
    onnx.save(model, str(tmp_path / "m.onnx"), save_as_external_data=True, location="m.onnx.data", size_threshold=0)
    data = (tmp_path / "m.onnx.data").read_bytes()
    (tmp_path / "m.onnx.data").write_bytes(data[:10])
    res = CliRunner().invoke(main, ["inspect", str(tmp_path / "m.onnx")])
    assert res.exit_code == 2 and "is truncated" in res.stderr


def test_random_bytes(tmp_path):
    p = tmp_path / "r.onnx"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    res = CliRunner().invoke(main, ["inspect", str(p)])
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and len(res.stderr.splitlines()) == 1


def test_corrupt_tensor_payload(tmp_path):
    m = _linear()
    t = m.graph.initializer[0]
    t.raw_data = b"\x00\x01"
    del t.float_data[:]
    p = _write(tmp_path, m)
    res = CliRunner().invoke(main, ["inspect", str(p)])
    assert res.exit_code == 2 and re.search(r"tensor 'W' cannot be read", res.stderr), res.stderr
