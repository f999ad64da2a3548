"""Overflow proved, not hoped: every tensor's integer range is proven by interval
arithmetic from the declared input range (hqc.intops: each op's `bounds`), the C types
come from it, and inputs at the range limits or chosen to drive the accumulators to
their extremes give C = numpy reference = onnxruntime, with every value inside its bound."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hqc import intref
from hqc.errors import ModelError
from hqc.intops import check_lowered, propagate_bounds
from hqc.ir import Graph, Value
from hqc.passes.lower_int import INT_DOMAIN
from tests.support.lowering import TINY, backends_agree, groups_of, lower_zoo
from tests.support.zoo import example_spikformer, sj_lif_convnet


def _adversarial(fe, lm, shape, lo: int, hi: int, n: int, seed: int) -> np.ndarray:
    """Samples (n, *shape) at the range limits: all lo, all hi, checkerboards, random
    extremes, and for the first weight layer inputs that drive one output channel's
    accumulator to its maximum (hi where the weights are positive, lo elsewhere)."""
    rng = np.random.default_rng(seed)
    xs = [np.full(shape, lo), np.full(shape, hi)]
    board = np.indices(shape).sum(axis=0) % 2
    xs += [np.where(board, hi, lo), np.where(board, lo, hi)]
    first = next(nd for nd in lm.graph.nodes() if nd.op in ("QConv", "QLinear"))
    w = np.asarray(first.attrs["w"])
    for c in range(min(3, w.shape[0])):
        mask = w[c] > 0  # (C, k...) for a conv: pick, per input channel, the sign of its tap sum
        per_in = mask.reshape(mask.shape[0], -1).mean(axis=1) > 0.5 if w.ndim > 2 else None
        x = np.full(shape, lo)
        if per_in is not None and len(shape) >= 3:
            cax = 1  # (T, C, H, W) samples: channel axis 1
            idx = [slice(None)] * len(shape)
            for ci, pos in enumerate(per_in):
                idx[cax] = ci
                x[tuple(idx)] = hi if pos else lo
        xs.append(x)
    while len(xs) < n:
        xs.append(rng.choice([lo, hi], size=shape))
    return np.stack(xs[:n]).astype(np.float32)


@pytest.mark.parametrize("dynamo", [False, True], ids=["ts", "dynamo"])
def test_range_limits_and_adversarial_inputs_stay_in_bounds(zoo_build, tmp_path, dynamo):
    zm = zoo_build(example_spikformer, {**TINY, "dynamo": dynamo})
    fe, plan, lm = lower_zoo(zm, plan_offset=3)
    check_lowered(lm.graph)
    lo, hi = lm.input["range"]
    x = _adversarial(fe, lm, (zm.T, 2, 16, 16), lo, hi, 10, seed=1)
    g = groups_of(x, fe)
    backends_agree(lm.graph, g, tmp_path)
    names = [t for nd in lm.graph.nodes() for t in nd.outputs]
    vals = intref.run(lm.graph, g, names=names)
    bounds = lm.graph.meta["bounds"]
    reached = 0
    for t, v in zip(names, vals, strict=True):
        blo, bhi = bounds[t]
        assert blo <= v.min() and v.max() <= bhi, (t, blo, bhi, v.min(), v.max())
        reached += int(v.max() == bhi or v.min() == blo)
    # the bounds are not vacuous: the extreme inputs reach many of them exactly
    assert reached >= len(names) // 4


def test_event_counts_at_the_limits(zoo_build, tmp_path):
    zm = zoo_build(sj_lif_convnet, {"dynamo": True, "v_threshold": 1.0})
    fe, plan, lm = lower_zoo(zm, plan_offset=1, input_range=(0, 7))
    check_lowered(lm.graph)
    x = _adversarial(fe, lm, (zm.T, 2, 16, 16), 0, 7, 8, seed=2)
    backends_agree(lm.graph, groups_of(x, fe), tmp_path)


def test_lowering_json_lists_every_proven_range(zoo_build, tmp_path):
    from hqc.lowerdir import lower_model

    zm = zoo_build(example_spikformer, {**TINY, "dynamo": True})
    from hqc.pipeline import run_frontend
    from tests.support.lowering import mixed_plan

    fe = run_frontend(str(zm.onnx_path))
    r = lower_model(zm.onnx_path, {k: v.name for k, v in mixed_plan(fe.layers).items()}, tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "lowering.json").read_text())
    rows = {row["tensor"]: row for row in doc["integer_ranges"]}
    proved = propagate_bounds(r.lowered.graph, tuple(doc["input"]["range"]))
    assert set(rows) == set(proved)
    for t, (lo, hi) in proved.items():
        row = rows[t]
        assert row["range"] == [lo, hi]
        ctyp = {"uint8_t": (0, 1), "int32_t": (-(2**31), 2**31 - 1), "int64_t": (-(2**63), 2**63 - 1)}[row["c_type"]]
        assert ctyp[0] <= lo and hi <= ctyp[1]
        if row["c_type"] == "int64_t" and row["op"] != "Requant":  # logits are int64 by the C API
            assert not (-(2**31) <= lo and hi < 2**31)
    src = (tmp_path / "out" / "kernels" / "hqc_model.c").read_text()
    for line in src.splitlines():
        if line.startswith("static ") and "// " in line and "[" in line and "const" not in line:
            typ, rest = line.split()[1], line.split("// ", 1)[1]
            t = rest.split(" ")[0]
            if t in rows and not t.endswith("_d"):
                assert typ == rows[t]["c_type"], (t, typ, rows[t]["c_type"])


def _one_linear(w: np.ndarray, in_range: tuple[int, int]) -> Graph:
    from hqc.intops import OPS

    g = Graph("h", 17)
    g.inputs = ["x"]
    g.values["x"] = Value((1, w.shape[1]), "int64")
    attrs = {"layer": "L", "quant": "uni8", "bits": 8, "w": w.astype(np.int64), "codes": (w % 256).astype(np.uint8)}
    node = g.add_node("QLinear", ["x"], ["y"], attrs, name="y", domain=INT_DOMAIN)
    g.values["y"] = Value((1, w.shape[0]), "int64")
    g.outputs = ["y"]
    g.meta["bounds"] = {"x": in_range, "y": OPS["QLinear"].bounds(node, [in_range], g)[0]}
    return g


def test_wide_accumulator_gets_int64_and_stays_exact(tmp_path):
    w = np.full((2, 1024), 127, np.int64)
    w[1] = -127
    g = _one_linear(w, (-30000, 30000))
    check_lowered(g)
    assert g.meta["bounds"]["y"] == (-127 * 1024 * 30000, 127 * 1024 * 30000)  # beyond int32
    from hqc.ckernels import emit_kernels

    src = emit_kernels(g).files["hqc_model.c"]
    assert "/* int64_t t1: y [1, 2]" in src, [ln for ln in src.splitlines() if "t1" in ln]  # the arena buffer's type
    x = np.stack([np.full((1, 1024), 30000), np.full((1, 1024), -30000)])
    out = backends_agree(g, x, tmp_path)
    assert out[0, 0, 0] == 127 * 1024 * 30000 and out[1, 0, 1] == 127 * 1024 * 30000


def test_a_stored_bound_that_is_not_proven_is_refused():
    w = np.ones((2, 4), np.int64)
    g = _one_linear(w, (0, 1))
    g.meta["bounds"]["y"] = (0, 3)  # the ops prove 0..4
    with pytest.raises(ModelError, match=r"tensor 'y': stored bound \(0, 3\) differs from the proven \[0, 4\]"):
        check_lowered(g)


def test_a_range_beyond_int64_is_an_error(zoo_build):
    zm = zoo_build(example_spikformer, {**TINY, "dynamo": True})
    with pytest.raises(ModelError, match="exceeds int64|more than 62 bits|too large for an exact"):
        lower_zoo(zm, input_range=(0, 2**40))
