"""lower-int: structure of the integer IR, agreement with the fake-quant float model on
the example Spikformer (both exporters, all five quantizers), BatchNorm forms, LIF
variants, error messages, idempotence."""

from __future__ import annotations

import numpy as np
import pytest

from hqc.choices import parse_choice
from hqc.errors import ModelError
from hqc.ir import verify
from hqc.passes import Context, run_passes
from hqc.passes import lower_int as _lower_int  # noqa: F401  (registers the pass)
from hqc.passes.lower_int import INT_DOMAIN, layer_codes, lower_graph
from hqc.pipeline import run_frontend
from tests.support.lowering import (
    MIXED,
    SPIKE_AGREEMENT,
    TINY,
    bn_forms_onnx,
    compare_with_float,
    events,
    lower_zoo,
    mixed_plan,
)
from tests.support.zoo import example_spikformer, hqc_lif_node

OPS = {"QConv", "QLinear", "LIF", "Add", "Sub", "Shl", "MatMul", "MaxPool", "ReduceSum", "Reshape",
       "Transpose", "Requant"}


@pytest.fixture(params=[False, True], ids=["ts", "dynamo"])
def tiny(request, zoo_build):
    return zoo_build(example_spikformer, {**TINY, "dynamo": request.param})


def test_lowered_ir_structure(tiny):
    fe, plan, lm = lower_zoo(tiny)
    g = lm.graph
    assert verify(g) == []
    assert {n.domain for n in g.nodes()} == {INT_DOMAIN}
    assert set(g.ops()) <= OPS
    assert g.ops()["LIF"] == len(fe.neurons)
    assert g.ops()["QConv"] + g.ops()["QLinear"] == len(fe.layers)
    assert all(g.dtype(t) == "int64" for t in g.values)
    assert {r["quantizer"] for r in lm.layers} == set(MIXED)
    for r in lm.layers:
        assert r["packed_bytes"] == -(-r["params"] * r["bits"] // 8)
    k_t = 1 * tiny.T  # tau = 2 → one shift per step
    for n in lm.neurons:
        assert n["fraction_bits"] >= k_t
    attn = next(n for n in lm.neurons if n["name"].endswith("attn_lif"))
    assert attn["exact"] and attn["bias_fraction_bits"] == 0  # 0.125 folded into Θ exactly
    assert lm.logits["shape"] == [1, 10] and lm.logits["scale"] > 0


def test_matches_fake_quant_float_model(tiny):
    fe, plan, lm = lower_zoo(tiny)
    x = events((24, tiny.T, 2, 16, 16), seed=1, lam=0.6)
    r = compare_with_float(fe, plan, lm, x)
    assert r["spikes"] >= SPIKE_AGREEMENT and r["min_layer"] >= 0.99, r
    assert r["argmax"] >= 0.95, r
    assert r["logit_err"] < 1e-3, r


def test_weight_codes_are_quant_codes(tiny):
    """The integer weights are quant.py's codes: Q(w) = unit_c · w_int exactly."""
    from hqc.passes.lower_int import layer_weight
    from hqc.quant import fake_quant_numpy

    fe = run_frontend(str(tiny.onnx_path))
    for layer in fe.layers:
        w = layer_weight(fe.graph, layer)
        for name in ("uni4", "uni2", "pot4", "pot2"):
            c = parse_choice(name)
            lc = layer_codes(w, c, 1)
            exact = lc.w_int.astype(np.float64) * lc.unit.reshape((-1,) + (1,) * (w.ndim - 1))
            np.testing.assert_allclose(exact, fake_quant_numpy(w, c), rtol=2e-7, atol=0)
            if c.kind == "pot":
                assert np.all(np.abs(lc.w_int) > 0)  # no zero in the power-of-two code set


def test_fp32_layer_grid_is_exact_for_large_weights(tiny):
    from hqc.passes.lower_int import layer_weight

    fe = run_frontend(str(tiny.onnx_path))
    w = layer_weight(fe.graph, fe.layers[0])
    lc = layer_codes(w, parse_choice("fp32"), 255)
    back = lc.w_int.astype(np.float64) * lc.unit.reshape(-1, 1, 1, 1)
    assert np.array_equal(back.astype(np.float32), lc.w_float)
    big = np.abs(w) >= np.abs(w).reshape(w.shape[0], -1).max(axis=1).reshape(-1, 1, 1, 1) / 64
    assert np.array_equal(lc.w_float[big], w[big])  # ≥ max/64: bit-identical float32
    assert np.abs(lc.w_float - w).max() <= np.abs(w).max() * 2.0**-29


@pytest.mark.parametrize("dynamo", [False, True], ids=["ts", "dynamo"])
def test_batchnorm_forms(tmp_path, dynamo):
    path = bn_forms_onnx(tmp_path, dynamo)
    fe = run_frontend(str(path))
    assert "BatchNormalization" in fe.graph.ops()
    plan = mixed_plan(fe.layers, 1)
    lm = lower_graph(fe.graph, fe.layers, plan)
    lif = [n for n in lm.graph.nodes() if n.op == "LIF"]
    signs = np.concatenate([np.asarray(n.attrs["sign"]).reshape(-1) for n in lif])
    assert -1 in signs and 0 in signs  # negative γ flips, γ = 0 ignores the input
    assert "Shl" in lm.graph.ops()  # residual of scales 1 and 0.5
    x = events((32, 2, 5, 8), seed=3, lam=1.0)
    r = compare_with_float(fe, plan, lm, x)
    assert r["spikes"] >= SPIKE_AGREEMENT and r["argmax"] >= 0.95, r


@pytest.mark.parametrize(
    "kw",
    [dict(tau=4.0), dict(decay_input=False), dict(comparison=">"), dict(v_threshold=0.3, tau=8.0),
     dict(v_reset=None), dict(tau=3.0), dict(v_reset=-0.25)],
    ids=["tau4", "no-decay-input", "strict", "tau8", "subtract-reset", "tau3", "reset-neg"],
)
def test_lif_variants(tmp_path, kw):
    zm = hqc_lif_node(tmp_path, **kw)
    fe = run_frontend(str(zm.onnx_path))
    plan = {layer.name: parse_choice("uni4") for layer in fe.layers}
    lm = lower_graph(fe.graph, fe.layers, plan)
    x = events((16, zm.T, 2, 8, 8), seed=2, lam=0.8)
    r = compare_with_float(fe, plan, lm, x)
    assert r["spikes"] >= SPIKE_AGREEMENT, r


@pytest.mark.parametrize(
    ("kw", "pattern"),
    [
        (dict(v_reset=0.5), r"LIF 'lif': threshold 0.5 − v_reset 0.5 ≤ 0 is not supported"),
    ],
    ids=["reset-at-threshold"],
)
def test_unsupported_neurons_are_named(tmp_path, kw, pattern):
    zm = hqc_lif_node(tmp_path, **kw)
    fe = run_frontend(str(zm.onnx_path))
    plan = {layer.name: parse_choice("uni4") for layer in fe.layers}
    with pytest.raises(ModelError, match=pattern):
        lower_graph(fe.graph, fe.layers, plan)


def test_pass_contract_and_idempotence(tiny):
    fe = run_frontend(str(tiny.onnx_path))
    ctx = Context(options={"layers": fe.layers, "plan": mixed_plan(fe.layers)})
    g1, rec1 = run_passes(fe.graph, ["lower-int"], ctx)
    assert rec1[0]["modified"] and rec1[0]["layers"] == len(fe.layers)
    g2, rec2 = run_passes(g1, ["lower-int"], ctx)
    assert not rec2[0]["modified"] and g2 is g1
    assert "LIF" in fe.graph.ops() and fe.graph.ops().get("QConv") is None  # input untouched


def test_resolution_bits_trade_membrane_width(tiny):
    fe = run_frontend(str(tiny.onnx_path))
    plan = {layer.name: parse_choice("uni4") for layer in fe.layers}
    coarse = lower_graph(fe.graph, fe.layers, plan, resolution_bits=4)
    fine = lower_graph(fe.graph, fe.layers, plan, resolution_bits=20)
    for c, f in zip(coarse.neurons, fine.neurons, strict=True):
        assert c["fraction_bits"] <= f["fraction_bits"]
        assert c["membrane_bits"] <= f["membrane_bits"]
    assert any(c["fraction_bits"] < f["fraction_bits"] for c, f in zip(coarse.neurons, fine.neurons, strict=True))


def test_incomplete_plan_is_an_error(tiny):
    from hqc.errors import PlanError

    fe = run_frontend(str(tiny.onnx_path))
    plan = mixed_plan(fe.layers)
    plan.pop(fe.layers[0].name)
    with pytest.raises(PlanError, match="plan has no choice for layers: " + fe.layers[0].name):
        lower_graph(fe.graph, fe.layers, plan)
