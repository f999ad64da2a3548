"""Adds of integer tensors with different (per-channel) scales and elementwise products.

LinComb: Z = ⌊(Σ_i M_i ⊙ X_i + C) / 2^s⌋ equals the exact rational computation (hypothesis),
its bounds hold and are reached at the range limits, numpy = onnxruntime = C; the
lowering's choice of common unit is exact when the scale ratios are integers and within
(5/8)·a_z of the real sum otherwise. Mul (broadcasting, spikes as masks) in all three
back ends. common_scale for concatenations and for reductions over a channel axis. Real
exports through both exporters, against the fake-quant float model with every neuron
firing 5–60 %: SpikingJelly LIF nets with BatchNorm membrane shortcuts (SDT-style,
chained, gated by a neuron on the channel mean), spike-driven self-attention
(q ⊙ attn_lif(Σ_tokens k ⊙ v)), and SpikingJelly's own SpikeDrivenTransformer.
"""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hqc import intref
from hqc.errors import ModelError
from hqc.intops import OPS, check_lowered
from hqc.ir import Graph, Value
from hqc.lowering.affine import Sym, arr
from hqc.lowering.arith import SUM_PRE_BITS, sum_bits
from hqc.lowering.lowerer import Lowerer
from hqc.passes.lower_int import INT_DOMAIN, lower_graph
from hqc.pipeline import run_frontend
from tests.support.lowering import (
    SPIKE_AGREEMENT,
    backends_agree,
    compare_with_float,
    groups_of,
    mixed_plan,
)
from tests.support.rescale import IMG, MODELS, T, build
from tests.support.zoo import _calibrate_bn, _finish, _set_user_surrogate, _sj_lif_params, _spikes

KERNEL = re.compile(r"// hqc-kernel begin (\S+) (\S+)\n(.*?)// hqc-kernel end", re.S)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- hand-built graphs
def _graph(shape: tuple[int, ...], in_range: tuple[int, int]) -> tuple[Graph, dict]:
    """A lowered graph with input x and its transpose xt (two independent tensors off the
    diagonal when the last two axes are equal)."""
    g = Graph("h", 17)
    g.inputs = ["x"]
    g.values["x"] = Value(shape, "int64")
    perm = list(range(len(shape) - 2)) + [len(shape) - 1, len(shape) - 2]
    g.add_node("Transpose", ["x"], ["xt"], {"perm": perm}, name="xt", domain=INT_DOMAIN)
    g.values["xt"] = Value(tuple(shape[p] for p in perm), "int64")
    g.meta["bounds"] = {"x": in_range, "xt": in_range}
    return g, g.meta["bounds"]


def _add(g: Graph, op: str, inputs: list[str], out: str, attrs: dict, shape: tuple[int, ...]) -> str:
    node = g.add_node(op, inputs, [out], attrs, name=out, domain=INT_DOMAIN)
    g.values[out] = Value(shape, "int64")
    (g.meta["bounds"][out],) = OPS[op].bounds(node, [g.meta["bounds"][t] for t in inputs], g)
    return out


def _lincomb_exact(m: np.ndarray, c: np.ndarray, s: int, xs: list[np.ndarray]) -> np.ndarray:
    """⌊(Σ M_i X_i + C) / 2^s⌋ with Python Fractions, element by element."""
    shape = np.broadcast_shapes(*(x.shape for x in xs))
    out = np.empty(shape, object)
    mm = [np.broadcast_to(mi, shape) for mi in m]
    cc = np.broadcast_to(c, shape)
    for idx in np.ndindex(shape):
        v = Fraction(int(cc[idx])) + sum(Fraction(int(mi[idx]) * int(x[idx])) for mi, x in zip(mm, xs, strict=True))
        out[idx] = (v / 2**s).__floor__()
    return out


@FAST
@given(st.data())
def test_lincomb_reference_is_the_exact_floor(data):
    n = data.draw(st.integers(1, 3))
    C = data.draw(st.integers(1, 4))
    s = data.draw(st.integers(0, 40))
    big = data.draw(st.sampled_from([2**7, 2**20, 2**40]))
    m = np.array(data.draw(st.lists(st.lists(st.integers(-big, big), min_size=C, max_size=C),
                                    min_size=n, max_size=n)), np.int64).reshape(n, 1, C, 1)
    c = np.array([[[data.draw(st.integers(-big, big))]]], np.int64)
    lo = data.draw(st.integers(-2**15, 0))
    hi = data.draw(st.integers(0, 2**15))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    xs = [rng.integers(lo, hi + 1, (3, 1, C, 5)) for _ in range(n)]
    xs[0][0] = lo  # the range limits
    xs[-1][1] = hi
    g = Graph("lc", 17)
    node = g.add_node("LinComb", [f"x{i}" for i in range(n)], ["y"], {"mult": m, "bias": c, "shift": s},
                      name="y", domain=INT_DOMAIN)
    OPS["LinComb"].check(node)
    got = OPS["LinComb"].ref(node, xs, "auto")
    assert np.array_equal(got.astype(object), _lincomb_exact(m[:, None], c[None], s, xs))
    (blo, bhi), = OPS["LinComb"].bounds(node, [(lo, hi)] * n, g)
    assert blo <= got.min() and got.max() <= bhi
    # the bound is reached: each term at the end of its range that maximizes it
    x_hi = [np.where(mi[None] >= 0, hi, lo) * np.ones((1, 1, C, 5), np.int64) for mi in m]
    assert OPS["LinComb"].ref(node, x_hi, "auto").max() == bhi


@pytest.mark.parametrize("case", ["spikes+int", "round", "exact-int32", "negative-wide"])
def test_lincomb_backends_agree_at_the_limits(tmp_path, case):
    C = 4
    lo, hi, s, m0, m1, c = {
        "spikes+int": (0, 1, 3, [5, -3, 7, 1], [9, 2, -4, 8], 4),
        "round": (-7, 9, 11, [3001, -1777, 2048, 5], [-4095, 999, 1, 3333], 1024),
        "exact-int32": (-300, 300, 0, [1, 2, 3, 4], [-4, 1, 1, 8], 0),
        "negative-wide": (-2**15, 2**15 - 1, 37, [2**38 + 12345, -2**37, 3, -1], [-(2**36) - 7, 2**35, 5, 0], 2**36),
    }[case]
    g, bounds = _graph((1, C, C), (lo, hi))
    m = np.array([m0, m1], np.int64).reshape(2, 1, C, 1)
    _add(g, "LinComb", ["x", "xt"], "y", {"mult": m, "bias": np.full((1, 1, 1), c, np.int64), "shift": s}, (1, C, C))
    g.outputs = ["y"]
    check_lowered(g)
    rng = np.random.default_rng(len(case))
    x = np.concatenate([np.full((1, 1, C, C), lo), np.full((1, 1, C, C), hi),
                        np.where(m[0][None] > 0, hi, lo) * np.ones((1, 1, C, C), np.int64),
                        rng.integers(lo, hi + 1, (5, 1, C, C))])
    out = backends_agree(g, x, tmp_path)
    blo, bhi = bounds["y"]
    assert blo <= out.min() and out.max() <= bhi
    assert np.array_equal(out.astype(object), _lincomb_exact(m[:, None], np.int64(c), s, [x, np.swapaxes(x, -1, -2)]))
    src = (tmp_path / "kernels" / "hqc_model.c").read_text()
    (body,) = [b for _, k, b in KERNEL.findall(src) if k == "lincomb"]
    if case == "spikes+int":
        assert "& -(" in body  # a spike selects its multiplier
    if case == "negative-wide":
        assert "int64_t" in body or "INT64_C" in body


@pytest.mark.parametrize(("shape_a", "shape_b", "ra", "rb"), [
    ((1, 2, 3, 1, 4), (1, 2, 3, 5, 4), (0, 1), (0, 1)),     # q ⊙ kv: spike × spike, broadcast tokens
    ((1, 2, 3, 5, 4), (1, 2, 3, 5, 4), (0, 1), (0, 1)),     # k ⊙ v
    ((1, 3, 5, 1), (1, 3, 5, 4), (0, 1), (-3, 6)),          # spike mask × small integer
    ((1, 3, 1, 4), (1, 3, 5, 4), (-40, 50), (0, 1)),        # integer × spike
    ((3, 5, 4), (1, 3, 5, 4), (-2**15, 2**15 - 1), (-2**15, 7)),  # int × int, rank broadcast, int64
], ids=["qkv", "kv", "mask", "int-spike", "int-int"])
def test_mul_broadcast_backends_agree(tmp_path, shape_a, shape_b, ra, rb):
    """The input holds both operands side by side (selected by 0/1 QLinears); each
    operand's bound is set to its own range (the C type follows: spikes are uint8_t), and
    the data stays inside it, at both limits and in between."""
    na, nb = int(np.prod(shape_a)), int(np.prod(shape_b))
    lo, hi = min(ra[0], rb[0]), max(ra[1], rb[1])
    g = Graph("mul", 17)
    g.inputs = ["x"]
    g.values["x"] = Value((1, na + nb), "int64")
    g.meta["bounds"] = {"x": (lo, hi)}
    sel = _split(g, "x", na, nb)
    g.meta["bounds"][sel[0]], g.meta["bounds"][sel[1]] = ra, rb
    a = _add(g, "Reshape", [sel[0]], "a", {"shape": list(shape_a)}, shape_a)
    b = _add(g, "Reshape", [sel[1]], "b", {"shape": list(shape_b)}, shape_b)
    wide = ra[1] > 2**14  # beyond int32: a · 2^9
    if wide:
        a = _add(g, "Shl", [a], "a9", {"n": 9}, shape_a)
    out_shape = tuple(np.broadcast_shapes(shape_a, shape_b))
    _add(g, "Mul", [a, b], "y", {}, out_shape)
    g.outputs = ["y"]
    rng = np.random.default_rng(na)
    xa = [np.full(na, ra[0]), np.full(na, ra[1]), rng.integers(ra[0], ra[1] + 1, na), rng.integers(ra[0], ra[1] + 1, na)]
    xb = [np.full(nb, rb[1]), np.full(nb, rb[0]), rng.integers(rb[0], rb[1] + 1, nb), rng.integers(rb[0], rb[1] + 1, nb)]
    x = np.stack([np.concatenate([p, q]) for p, q in zip(xa, xb, strict=True)])[:, None]
    out = backends_agree(g, x, tmp_path)
    r = len(out_shape)
    pa, pb = ((1,) * (r - len(sh)) + sh for sh in (shape_a, shape_b))
    want = x[:, 0, :na].reshape((-1,) + pa) * x[:, 0, na:].reshape((-1,) + pb) << (9 if wide else 0)
    assert np.array_equal(out, want.reshape(out.shape))
    blo, bhi = g.meta["bounds"]["y"]
    assert blo <= out.min() and out.max() <= bhi and (out.max() == bhi or out.min() == blo)
    src = (tmp_path / "kernels" / "hqc_model.c").read_text()
    (body,) = [bd for _, k, bd in KERNEL.findall(src) if k == "mul"]
    if ra == (0, 1) or rb == (0, 1):
        assert "*" not in body.split("{", 1)[1]  # a spike operand is a mask or an AND
    if ra == rb == (0, 1):
        assert re.search(r"#define HQC_OFF_t\d+ \d+  /\* uint8_t t\d+: y ", src)  # the arena buffer's C type
    if wide:
        assert re.search(r"#define HQC_OFF_t\d+ \d+  /\* int64_t t\d+: y ", src)


def _split(g: Graph, x: str, na: int, nb: int) -> tuple[str, str]:
    """x (1, na + nb) → its first na and its last nb elements (QLinear with 0/1 weights)."""
    outs = []
    for name, off, n in (("sa", 0, na), ("sb", na, nb)):
        w = np.zeros((n, na + nb), np.int64)
        w[np.arange(n), off + np.arange(n)] = 1
        attrs = {"layer": name, "quant": "uni2", "bits": 2, "w": w, "codes": (w % 4).astype(np.uint8)}
        outs.append(_add(g, "QLinear", [x], name, attrs, (1, n)))
    return outs[0], outs[1]


# --------------------------------------------------------------------------- the lowering's choice
def _fe_graph(a_x: np.ndarray, b_x: np.ndarray, a_y: np.ndarray, b_y: np.ndarray, op: str) -> Graph:
    """Frontend IR: x (1, C, C); z = (a_x·x + b_x) op (a_y·xᵀ + b_y), a, b per channel."""
    C = a_x.size
    g = Graph("fe", 17)
    g.inputs, g.outputs = ["x"], ["z"]
    for t in ("x", "xt", "p", "p1", "q", "q1", "z"):
        g.values[t] = Value((1, C, C), "float32")
    for name, v in (("ax", a_x), ("bx", b_x), ("ay", a_y), ("by", b_y)):
        g.add_const(name, np.asarray(v, np.float32).reshape(1, C, 1))
    g.add_node("Transpose", ["x"], ["xt"], {"perm": [0, 2, 1]}, name="t")
    g.add_node("Mul", ["x", "ax"], ["p"], name="mx")
    g.add_node("Add", ["p", "bx"], ["p1"], name="ox")
    g.add_node("Mul", ["xt", "ay"], ["q"], name="my")
    g.add_node("Add", ["q", "by"], ["q1"], name="oy")
    g.add_node(op, ["p1", "q1"], ["z"], name="sum")
    return g


def _lower_fe(g: Graph, in_range: tuple[int, int], res: int) -> tuple[Lowerer, object]:
    lw = Lowerer(g, [], {}, in_range, res, 16)
    return lw, lw.run()


def _real(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """a ⊙ x exactly (object array of Fractions); a broadcasts against x."""
    a, x = np.broadcast_arrays(np.asarray(a, np.float64), x)
    return np.vectorize(lambda u, v: Fraction(float(u)) * int(v), otypes=[object])(a, x)


SCALES = st.sampled_from(["random", "ratio", "equal", "pow2", "scalar", "scalar-pow2", "one-zero"])
RANGES = st.sampled_from([(0, 1), (0, 7), (-300, 300), (-2**15, 2**15 - 1)])


@FAST
@given(kind=SCALES, rng_x=RANGES, res=st.sampled_from([8, 12, 16, 20]), seed=st.integers(0, 2**31),
       op=st.sampled_from(["Add", "Sub"]))
def test_rescaled_sum_is_exact_or_within_five_eighths_of_a_unit(kind, rng_x, res, seed, op):
    """The integer sum on its common unit a_z: exactly the real sum when the ratios are
    integers (s = 0, or the Shl + Add of a power of two), else within (5/8)·a_z (+ a_z/512
    per pre-rounded operand up to res 16); the offsets add up in the view; the bounds hold."""
    C = 4
    r = np.random.default_rng(seed)
    # a_x with 12 fraction bits, so that a_x · k (|k| ≤ 9) is exact in float32
    a_x = (np.round(r.uniform(0.01, 3.0, C) * 4096) / 4096 * r.choice([-1, 1], C)).astype(np.float32)
    a_y = {
        "random": lambda: (r.uniform(0.01, 3.0, C) * r.choice([-1, 1], C)).astype(np.float32),
        "ratio": lambda: a_x * r.integers(-9, 10, C).astype(np.float32),
        "equal": lambda: a_x.copy(),
        "pow2": lambda: a_x * np.float32(2.0 ** int(r.integers(-6, 7))),
        "scalar": lambda: np.full(C, r.uniform(0.01, 3.0), np.float32),
        "scalar-pow2": lambda: np.full(C, a_x[0] * 2.0 ** int(r.integers(-6, 7)), np.float32),
        "one-zero": lambda: np.where(np.arange(C) == 0, 0, 3 * a_x).astype(np.float32),  # a γ = 0 channel
    }[kind]()
    if kind.startswith("scalar"):
        a_x = np.full(C, a_x[0], np.float32)
    b_x, b_y = r.uniform(-1, 1, C).astype(np.float32), r.uniform(-1, 1, C).astype(np.float32)
    lw, lm = _lower_fe(_fe_graph(a_x, b_x, a_y, b_y, op), rng_x, res)
    check_lowered(lm.graph)
    v = lw.sym["z"]
    lo, hi = rng_x
    x = np.concatenate([np.full((1, 1, C, C), lo), np.full((1, 1, C, C), hi), r.integers(lo, hi + 1, (6, 1, C, C))])
    (z,) = intref.run(lm.graph, x, names=[v.t])
    sg = 1 if op == "Add" else -1
    xt = np.swapaxes(x, -1, -2)
    want = _real(np.float64(a_x).reshape(1, C, 1), x) + sg * _real(np.float64(a_y).reshape(1, C, 1), xt)
    err = np.abs(_real(v.a, z) - want)
    unit = np.broadcast_to(np.vectorize(lambda u: Fraction(float(u)), otypes=[object])(v.a), err.shape)
    nodes = [n for n in lm.graph.nodes() if n.op == "LinComb"]
    exact = kind in ("ratio", "equal", "pow2", "scalar-pow2", "one-zero") or (kind == "scalar" and a_x[0] == a_y[0])
    if exact:
        assert err.max() == 0, (kind, a_x, a_y)
        assert all(n.attrs["shift"] == 0 for n in nodes)
    else:
        pre = sum("_pre__" in n.outputs[0] for n in nodes)
        per_pre = Fraction(2) ** (2 * sum_bits(res) - SUM_PRE_BITS)  # 1/512 up to res 16
        assert np.all(err <= unit * (Fraction(5, 8) + pre * per_pre)), (kind, res, rng_x)
    if kind in ("scalar-pow2", "equal"):
        assert not nodes  # today's exact paths: Shl + Add/Sub or Add/Sub, unchanged
    want_b = np.float64(b_x) + sg * np.float64(b_y)
    assert np.array_equal(np.broadcast_to(v.b, (1, C, 1)).reshape(-1), want_b)
    blo, bhi = lm.graph.meta["bounds"][v.t]
    assert blo <= z.min() and z.max() <= bhi


# --------------------------------------------------------------------------- real exports
@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    cache: dict = {}
    tmp = tmp_path_factory.mktemp("rescale_zoo")

    def get(kind: str, dynamo: bool):
        if (kind, dynamo) not in cache:
            zm = build(kind, dynamo, tmp)
            cache[kind, dynamo] = (zm, run_frontend(str(zm.onnx_path)))
        return cache[kind, dynamo]

    return get


EXPECT = {"shortcut": {"LinComb", "Mul", "ReduceSum"}, "attention": {"LinComb", "Mul", "ReduceSum"}}


@pytest.mark.parametrize("dynamo", [False, True], ids=["ts", "dynamo"])
@pytest.mark.parametrize("kind", list(MODELS))
def test_real_exports_match_the_fake_quant_model(exports, tmp_path, kind, dynamo):
    zm, fe = exports(kind, dynamo)
    x = _spikes(np.random.default_rng(7), (16, T, 2, IMG, IMG))
    for offset in (0, 1):  # the first layer fp32 (a pre-rounded sum operand) or not
        plan = mixed_plan(fe.layers, offset)
        lm = lower_graph(fe.graph, fe.layers, plan)
        check_lowered(lm.graph)
        assert EXPECT[kind] <= set(lm.graph.ops())
        r = compare_with_float(fe, plan, lm, x)
        assert r["spikes"] >= SPIKE_AGREEMENT and r["argmax"] >= 0.99, (offset, r)
        spikes = intref.run(lm.graph, groups_of(x, fe), names=list(lm.tensor_map.values()))
        rates = [float(s.mean()) for s in spikes]
        assert all(0.05 <= v <= 0.6 for v in rates), rates  # the neurons really fire
    backends_agree(lm.graph, groups_of(x[:3], fe), tmp_path)


@pytest.mark.parametrize("dynamo", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["ts", "dynamo"])
def test_spikingjelly_spike_driven_transformer(tmp_path, dynamo):
    """SpikingJelly's own SDT (membrane shortcuts, q ⊙ attn_lif(Σ k ⊙ v)) end to end
    (the dynamo export, 3× slower, with -m slow)."""
    from spikingjelly.activation_based.model.spike_driven_transformer import SpikeDrivenTransformer

    torch.manual_seed(0)
    model = SpikeDrivenTransformer(T=2, in_channels=2, num_classes=10, embed_dims=32, num_heads=2, depths=1,
                                   mlp_ratio=2, pooling_stat="1111")
    if not dynamo:
        _set_user_surrogate(model)
    rng = np.random.default_rng(0)
    _calibrate_bn(model, [_spikes(rng, (2, 4, 2, 32, 32))], 0)
    zm = _finish(f"sdt_{dynamo}", model, _spikes(rng, (2, 1, 2, 32, 32)), "TBCHW", 2, tmp_path, dynamo,
                 _sj_lif_params, {})
    fe = run_frontend(str(zm.onnx_path))
    plan = mixed_plan(fe.layers)
    lm = lower_graph(fe.graph, fe.layers, plan)
    check_lowered(lm.graph)
    assert {"LinComb", "Mul"} <= set(lm.graph.ops())
    x = _spikes(np.random.default_rng(5), (16, 2, 2, 32, 32))
    r = compare_with_float(fe, plan, lm, x)
    assert r["spikes"] >= SPIKE_AGREEMENT and r["argmax"] >= 0.99, r
    backends_agree(lm.graph, groups_of(x[:2], fe), tmp_path)


# --------------------------------------------------------------------------- common_scale, reductions
def _lowerer(shape: tuple[int, ...], in_range: tuple[int, int], res: int = 16) -> Lowerer:
    """A Lowerer whose integer graph holds the input x and its transpose xt."""
    src = Graph("src", 17)
    lw = Lowerer(src, [], {}, in_range, res, 16)
    lw.out.inputs = ["x"]
    lw.out.values["x"] = Value(shape, "int64")
    lw.out.meta["bounds"]["x"] = in_range
    lw.emit("Transpose", ["x"], "xt", {"perm": [0, 1, 3, 2]}, shape, name="xt")
    return lw


def _sym(lw: Lowerer, t: str, a, b=0.0) -> Sym:
    rank = len(lw.out.shape(t))
    lo, hi = lw.bound(t)
    return Sym(t, arr(a, rank), arr(b, rank), tuple(lw.out.shape(t)), lo, hi)


def test_common_scale_for_a_concatenation(tmp_path):
    """Along an axis where a varies (channels) nothing is rescaled; along time the views
    get one a: exactly (an integer ratio: one LinComb, s = 0, the other view untouched), or
    within (5/8)·a_z per element."""
    from hqc.ir import Node
    from hqc.lowering.arith import common_scale

    shape = (2, 3, 4, 4)  # (T, C, H, W)
    lw = _lowerer(shape, (-5, 9))
    xt = next(n.outputs[0] for n in lw.out.nodes())
    node = Node("cat", "Concat", ["p", "q"], ["y"])
    a1 = np.array([0.5, 1.5, 0.25]).reshape(3, 1, 1)
    p, q = _sym(lw, "x", a1, 1.0), _sym(lw, xt, 3 * a1)
    assert common_scale(lw, node, [p, q], axis=1) == [p, q]
    got = common_scale(lw, node, [p, q], axis=0)
    assert got[0] is not p and got[0].t == "x" and np.array_equal(got[0].a, got[1].a)
    assert np.array_equal(got[0].b, p.b) and np.array_equal(got[1].b, q.b)  # offsets untouched
    lc = [n for n in lw.out.nodes() if n.op == "LinComb"]
    assert len(lc) == 1 and lc[0].attrs["shift"] == 0
    x = np.random.default_rng(0).integers(-5, 10, (4,) + shape)
    z = intref.run(lw.out, x, names=[got[1].t])[0]
    assert np.array_equal(got[1].a * z, q.a * np.swapaxes(x, -1, -2))
    # a ratio 1/3: both views rescaled (E = 8 bits below the finer one), within 5/8 of a unit
    r = _sym(lw, xt, a1 * np.float32(1 / 3))
    got = common_scale(lw, node, [p, r], axis=0)
    z = intref.run(lw.out, x, names=[g.t for g in got])
    assert np.array_equal(got[0].a, got[1].a)
    for g, view, src, zz in zip(got, (p, r), (x, np.swapaxes(x, -1, -2)), z, strict=True):
        want = _real(view.a, src)
        assert np.all(np.abs(_real(g.a, zz) - want) <= _real(g.a, np.ones_like(zz)) * Fraction(5, 8))
    flat = Sym("x", np.ones((1, 1, 1)), np.zeros((1, 1, 1)), (3, 4, 4), -5, 9)
    with pytest.raises(ModelError, match=r"lower-int: node 'cat' \(Concat\): operands of ranks \[4, 3\]"):
        common_scale(lw, node, [p, flat])


@pytest.mark.parametrize("case", ["exact", "rounded"])
def test_reduction_over_a_channel_axis_with_varying_scales(case):
    """ReduceSum/ReduceMean over the channels of a per-channel-scaled view: rescaled onto a
    scale constant over the channels first; offsets summed (Σ_c b_c, or their mean)."""
    C = 4
    a = np.array([0.5, 1.5, 0.25, 2.0], np.float32) if case == "exact" else \
        np.array([0.3, 1.7, 0.011, 2.9], np.float32)
    b = np.array([0.1, -0.2, 0.3, 0.05], np.float32)
    for op in ("ReduceSum", "ReduceMean"):
        g = Graph("fe", 17)
        g.inputs, g.outputs = ["x"], ["y"]
        g.values["x"], g.values["p"], g.values["p1"] = (Value((1, C, 6), "float32") for _ in range(3))
        g.values["y"] = Value((1, 6), "float32")
        g.add_const("a", a.reshape(1, C, 1))
        g.add_const("b", b.reshape(1, C, 1))
        g.add_node("Mul", ["x", "a"], ["p"], name="m")
        g.add_node("Add", ["p", "b"], ["p1"], name="o")
        g.add_node(op, ["p1"], ["y"], {"axes": [1], "keepdims": 0}, name="r")
        lw, lm = _lower_fe(g, (-20, 20), 16)
        check_lowered(lm.graph)
        v = lw.sym["y"]
        assert v.a.shape == (1, 1) and {"LinComb", "ReduceSum"} <= set(lm.graph.ops())
        x = np.random.default_rng(1).integers(-20, 21, (5, 1, C, 6))
        (z,) = intref.run(lm.graph, x, names=[v.t])
        n = C if op == "ReduceMean" else 1
        want = _real(np.float64(a).reshape(1, C, 1), x).sum(axis=2) / n
        err = np.abs(_real(v.a, z) - want)
        bound = 0 if case == "exact" else _real(v.a, np.ones_like(z)) * Fraction(5, 8) * C
        assert np.all(err <= bound), (op, err.max())
        assert float(v.b.reshape(-1)[0]) == pytest.approx(float(np.float64(b).sum()) / n, rel=1e-15)


# --------------------------------------------------------------------------- errors
def _product_graph(b_x: float, out_shape: tuple[int, ...]) -> Graph:
    C = 4
    g = _fe_graph(np.ones(C), np.full(C, b_x), np.ones(C), np.zeros(C), "Mul")
    g.values["z"] = Value(out_shape, "float32")
    return g


def test_product_errors_are_named():
    with pytest.raises(ModelError, match=r"lower-int: node 'sum' \(Mul\): elementwise product of tensors "
                                         r"with an offset \(a·X \+ b, b ≠ 0\)"):
        _lower_fe(_product_graph(0.5, (1, 4, 4)), (0, 1), 16)
    with pytest.raises(ModelError, match=r"lower-int: node 'sum' \(Mul\): operands of shapes \[1, 4, 4\] and "
                                         r"\[1, 4, 4\] do not broadcast to the output \[1, 4, 8\]"):
        _lower_fe(_product_graph(0.0, (1, 4, 8)), (0, 1), 16)
    lw, lm = _lower_fe(_product_graph(0.0, (1, 4, 4)), (0, 1), 16)  # no offset: a spike AND
    assert lm.graph.ops()["Mul"] == 1 and lm.graph.meta["bounds"][lw.sym["z"].t] == (0, 1)


@pytest.mark.parametrize(("attrs", "n", "pattern"), [
    ({"shift": 62}, 2, r"shift 62 outside 0\.\.61"),
    ({"mult": np.ones((3, 1, 1, 1), np.int64)}, 2, r"mult has shape \[3, 1, 1, 1\]: one multiplier array per "
                                                   r"input \(2\) expected"),
    ({"mult": np.ones((2, 1, 1, 1))}, 2, r"mult and bias must be integer arrays"),
    ({"bias": np.zeros((1, 1), np.int64)}, 2, r"bias of rank 2, multipliers of rank 3"),
])
def test_lincomb_declaration_errors(attrs, n, pattern):
    g = Graph("lc", 17)
    base = {"mult": np.ones((2, 1, 1, 1), np.int64), "bias": np.zeros((1, 1, 1), np.int64), "shift": 3}
    node = g.add_node("LinComb", [f"x{i}" for i in range(n)], ["y"], {**base, **attrs}, name="y", domain=INT_DOMAIN)
    with pytest.raises(ModelError, match=r"ai\.hqc\.int::LinComb node 'y': " + pattern):
        OPS["LinComb"].check(node)


def test_lincomb_beyond_int64_is_refused():
    g, _ = _graph((1, 2, 2), (-2**15, 2**15 - 1))
    m = np.full((2, 1, 1, 1), 2**47, np.int64)
    with pytest.raises(ModelError, match=r"LinComb node 'y': partial sums up to \d+ exceed int64"):
        _add(g, "LinComb", ["x", "xt"], "y", {"mult": m, "bias": np.zeros((1, 1, 1), np.int64), "shift": 0},
             (1, 2, 2))
