"""canonicalize and recognize-neurons on hand-built graphs: structure, numerics vs
onnxruntime, idempotence, verify, and the error for an unliftable neuron."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

from hqc.backend import TorchModel
from hqc.errors import NeuronError, PassError
from hqc.ir import verify
from hqc.onnx_io import from_proto, to_proto
from hqc.passes import run_passes
from hqc.pipeline import FRONTEND
from tests.support.helpers import FLOAT_ATOL, FLOAT_RTOL, lif_loop_model, make_model, run_ort


def _shape_arith_model():
    # y = Reshape(x, Concat(Gather(Shape(x), 0), [-1])) * 2, through an Identity
    nodes = [
        helper.make_node("Identity", ["x"], ["xi"]),
        helper.make_node("Shape", ["xi"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("Concat", ["n1", "m1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["xi", "shape"], ["r"]),
        helper.make_node("Mul", ["r", "two"], ["y"]),
    ]
    inits = [
        ("i0", np.array(0, np.int64)),
        ("ax0", np.array([0], np.int64)),
        ("m1", np.array([-1], np.int64)),
        ("two", np.array(2.0, np.float32)),
    ]
    return make_model(nodes, [("x", [2, 3, 4])], [("y", [2, 12])], inits)


def test_canonicalize_folds_shape_arithmetic_and_removes_identity():
    model = _shape_arith_model()
    g, rec = run_passes(from_proto(model), ["canonicalize"])
    assert g.ops() == {"Mul": 1, "Reshape": 1}
    assert list(g.constants[g.node(next(n for n in g.topo_order() if g.node(n).op == "Reshape")).inputs[1]]) == [2, -1]
    assert rec[0]["modified"] is True
    assert verify(g) == []
    assert g.shape("y") == (2, 12)
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(run_ort(to_proto(g), {"x": x})[0], run_ort(model, {"x": x})[0], rtol=FLOAT_RTOL, atol=FLOAT_ATOL)
    g2, rec2 = run_passes(g, ["canonicalize"])
    assert rec2[0]["modified"] is False and g2.ops() == g.ops()


def test_recognize_lifts_hand_unrolled_lif():
    model = lif_loop_model(T=4, C=3, th=1.0, tau=2.0)
    g, _ = run_passes(from_proto(model), FRONTEND)
    assert g.ops() == {"LIF": 1, "MatMul": 1, "ReduceMean": 1}
    lif = next(g.node(n) for n in g.topo_order() if g.node(n).op == "LIF")
    assert lif.inputs == ["X"] and lif.domain == "ai.hqc"
    assert lif.attrs["tau"] == 2.0 and lif.attrs["v_threshold"] == 1.0 and lif.attrs["v_reset"] == 0.0
    assert lif.attrs["comparison"] == ">=" and lif.attrs["decay_input"] == 1
    assert verify(g) == []
    # numerics: the backend on the lifted IR equals onnxruntime on the unrolled original
    rng = np.random.default_rng(3)
    xs = (rng.normal(1.0, 1.0, size=(16, 4, 1, 3))).astype(np.float32)
    want = np.concatenate([run_ort(model, {"X": x})[0] for x in xs])
    m = TorchModel(g, input_layout="TB").eval()
    with torch.no_grad():
        got = m(torch.from_numpy(xs.transpose(0, 2, 1, 3).reshape(16, 4, 3))).numpy()
    np.testing.assert_allclose(got, want, rtol=FLOAT_RTOL, atol=1e-5)
    # idempotent
    g2, rec = run_passes(g, ["recognize-neurons"])
    assert rec[0]["modified"] is False and g2.ops() == g.ops()


def test_per_step_thresholds_that_differ_are_an_error_naming_nodes():
    model = lif_loop_model(T=3)
    # give step 2 its own threshold
    model.graph.initializer.append(helper.make_tensor("th2", TensorProto.FLOAT, [], [0.7]))
    for n in model.graph.node:
        if n.output[0] == "m2":
            n.input[1] = "th2"
    with pytest.raises(NeuronError, match=r"thresholds or comparisons differ.*nodes"):
        run_passes(from_proto(model), FRONTEND)


def test_dynamic_threshold_is_not_silently_passed_through():
    # spike = (x > y) with two activations: a spiking nonlinearity hqc cannot lift
    nodes = [
        helper.make_node("Greater", ["x", "y"], ["c"], name="cmp"),
        helper.make_node("Cast", ["c"], ["s"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["s", "W"], ["z"]),
    ]
    model = make_model(nodes, [("x", [1, 3]), ("y", [1, 3])], [("z", [1, 2])], [("W", np.ones((3, 2), np.float32))])
    with pytest.raises((NeuronError, PassError), match="cmp"):
        run_passes(from_proto(model), FRONTEND)


# ---------------------------------------------------------------- the pass contract
def test_importing_hqc_passes_registers_every_pass_and_analysis():
    import json
    import subprocess
    import sys

    code = "import json, hqc.passes as p; print(json.dumps([sorted(p.PASSES), sorted(p.ANALYSES)]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [["canonicalize", "insert-quant-choices", "lower-int", "recognize-neurons"],
                               ["annotate-layers"]]


def test_annotate_layers_is_computed_once_until_a_pass_modifies_the_graph(monkeypatch):
    from hqc.passes import ANALYSES, analysis
    from hqc.passes.annotate_layers import annotate_layers

    calls = []
    monkeypatch.setitem(ANALYSES, "annotate-layers", lambda g: calls.append(g) or annotate_layers(g))
    g, _ = run_passes(from_proto(lif_loop_model(T=3)), FRONTEND)
    first = analysis(g, "annotate-layers")
    assert analysis(g, "annotate-layers") is first and len(calls) == 1
    assert [x.name for x in first] == [x.name for x in annotate_layers(g)]
    g2, rec = run_passes(g, ["insert-quant-choices"])  # reads the cached analysis, writes metadata
    assert rec[0]["modified"] is True and len(calls) == 1
    analysis(g2, "annotate-layers")
    assert len(calls) == 2  # the modified graph's cache was dropped
    g3, rec = run_passes(g2, ["insert-quant-choices"])
    assert rec[0]["modified"] is False
    analysis(g3, "annotate-layers")
    assert len(calls) == 2  # an unmodified graph keeps it


def test_recognize_neurons_draws_only_from_ctx_rng(monkeypatch):
    from hqc.passes import Context

    drawn = []

    class Counting(Context):
        @property
        def rng(self):
            drawn.append(self.seed)
            return np.random.Generator(np.random.PCG64(self.seed))

    g, _ = run_passes(from_proto(lif_loop_model(T=3)), ["canonicalize"])

    def refuse(*a, **k):
        raise AssertionError("np.random.default_rng called inside a pass")

    monkeypatch.setattr(np.random, "default_rng", refuse)
    g2, rec = run_passes(g, ["recognize-neurons"], Counting(seed=7))
    assert rec[0]["lifted"] == 1 and drawn == [7]


def test_canonicalize_folding_skips_numpy_refusals_but_not_bugs(monkeypatch):
    from hqc.passes import canonicalize

    model = make_model([helper.make_node("Add", ["a", "b"], ["c"]), helper.make_node("Mul", ["x", "c"], ["y"])],
                       [("x", [2])], [("y", [2])], [("a", np.ones(2, np.float32)), ("b", np.ones(2, np.float32))])
    g, _ = run_passes(from_proto(model), ["canonicalize"])
    assert g.ops() == {"Mul": 1}  # Add of two constants folded

    def refuses(op, attrs, inputs):
        raise ValueError("operands could not be broadcast")

    monkeypatch.setattr(canonicalize, "evaluate", refuses)
    g, _ = run_passes(from_proto(model), ["canonicalize"])
    assert g.ops() == {"Add": 1, "Mul": 1}  # left for onnxruntime

    def bug(op, attrs, inputs):
        raise RuntimeError("a bug in an op")

    monkeypatch.setattr(canonicalize, "evaluate", bug)
    with pytest.raises(PassError, match=r"pass canonicalize failed after \[\]: RuntimeError: a bug in an op"):
        run_passes(from_proto(model), ["canonicalize"])
