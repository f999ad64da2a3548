"""The numpy integer reference: its kernels against torch (exactly, in float64 on small
integers), the integer LIF against the float LIF on dyadic parameters (exactly), the two
matmul engines, and the lowered-IR file round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from hqc import intref
from hqc.lif import LIFParams, lif_numpy
from hqc.passes.lower_int import lower_graph
from hqc.pipeline import run_frontend
from tests.support.lowering import TINY, events, groups_of, mixed_plan
from tests.support.zoo import example_spikformer


@pytest.mark.parametrize(
    ("stride", "pad", "dil", "k"),
    [(1, (1, 1, 1, 1), 1, 3), (2, (1, 0, 2, 1), 1, 3), (1, (0, 0, 0, 0), 2, 3), (3, (2, 2, 2, 2), 1, 5)],
)
def test_conv_int_equals_torch(stride, pad, dil, k):
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 9, size=(2, 3, 11, 9))
    w = rng.integers(-7, 8, size=(4, 3, k, k))
    y = intref.conv_int(x, w, [stride, stride], list(pad), [dil, dil])
    xp = F.pad(torch.from_numpy(x).double(), (pad[1], pad[3], pad[0], pad[2]))
    ref = F.conv2d(xp, torch.from_numpy(w).double(), stride=stride, dilation=dil).numpy()
    assert y.dtype == np.int64 and np.array_equal(y, ref.astype(np.int64))


def test_conv1d_and_maxpool_equal_torch():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2, size=(3, 5, 7))
    w = rng.integers(-1, 2, size=(6, 5, 1))
    y = intref.conv_int(x, w, [1], [0, 0], [1])
    ref = F.conv1d(torch.from_numpy(x).double(), torch.from_numpy(w).double()).numpy()
    assert np.array_equal(y, ref.astype(np.int64))
    x2 = rng.integers(-5, 6, size=(2, 3, 8, 8))
    m = intref.maxpool_int(x2, [3, 3], [2, 2], [1, 1, 1, 1])
    ref2 = F.max_pool2d(torch.from_numpy(x2).double(), 3, 2, 1).numpy()
    assert np.array_equal(m, ref2.astype(np.int64))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 6), st.integers(1, 40), st.integers(1, 6), st.integers(0, 30), st.integers(0, 30),
    st.integers(0, 2**31),
)
def test_matmul_engines_agree(m, k, n, abits, bbits, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-(2**abits), 2**abits + 1, size=(2, m, k))
    b = rng.integers(-(2**bbits), 2**bbits + 1, size=(k, n))
    exact = np.array([[[sum(int(a[i, r, j]) * int(b[j, c]) for j in range(k)) for c in range(n)]
                       for r in range(m)] for i in range(2)], dtype=object)
    for engine in ("auto", "int64"):
        got = intref.imatmul(a, b, engine)
        assert np.array_equal(got.astype(object), exact)


@settings(max_examples=60, deadline=None)
@given(
    T=st.integers(1, 6),
    k=st.integers(1, 3),
    g=st.integers(0, 6),
    theta_num=st.integers(1, 4000),
    bias_num=st.integers(-3000, 3000),
    sign=st.sampled_from([-1, 0, 1]),
    decay_input=st.booleans(),
    strict=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_integer_lif_equals_float_lif_on_dyadic_values(T, k, g, theta_num, bias_num, sign, decay_input, strict, seed):
    """With b = B·2^-F and θ a dyadic number, the integer LIF is the float LIF exactly."""
    F_ = g + k * T
    B = bias_num << (k * T)
    rng = np.random.default_rng(seed)
    acc = rng.integers(-40, 41, size=(T, 7))
    theta_real = theta_num / 2**g  # exact in float64
    th_scaled = theta_real * 2**F_  # an integer
    TH = int(th_scaled) if not strict else int(th_scaled) + 1
    attrs = {"tau_shift": k, "x_shift": 0 if decay_input else k, "frac_bits": F_,
             "sign": np.array(sign), "bias": np.array(B), "theta": np.array(TH)}
    s_int = intref.lif_int(acc, attrs, 0)
    x = (sign * acc.astype(np.float64) * 2**F_ + B) / 2**F_
    p = LIFParams(tau=float(2**k), v_threshold=theta_real, v_reset=0.0, decay_input=decay_input,
                  comparison=">" if strict else ">=")
    s_float = lif_numpy(x, p)
    assert np.array_equal(s_int, s_float.astype(np.int64))


def test_inexact_decay_is_an_internal_error():
    attrs = {"tau_shift": 1, "x_shift": 0, "frac_bits": 0, "sign": np.array(1), "bias": np.array(1),
             "theta": np.array(100), "neuron": "n"}
    with pytest.raises(RuntimeError, match="inexact membrane decay"):
        intref.lif_int(np.zeros((2, 3), np.int64), attrs, 0)


def test_lowered_ir_round_trip(tmp_path, zoo_build):
    zm = zoo_build(example_spikformer, TINY)
    fe = run_frontend(str(zm.onnx_path))
    lm = lower_graph(fe.graph, fe.layers, mixed_plan(fe.layers))
    p = tmp_path / "lowered.onnx"
    intref.save_lowered(lm.graph, p)
    g2 = intref.load_lowered(p)
    assert g2.meta["bounds"] == lm.graph.meta["bounds"]
    x = groups_of(events((6, zm.T, 2, 16, 16), seed=4), fe)
    a = intref.run(lm.graph, x)[0]
    b = intref.run(g2, x)[0]
    c = intref.run(lm.graph, x, engine="int64")[0]
    assert np.array_equal(a, b) and np.array_equal(a, c) and a.dtype == np.int64


def test_non_integer_input_rejected(zoo_build):
    from hqc.errors import ModelError

    zm = zoo_build(example_spikformer, TINY)
    fe = run_frontend(str(zm.onnx_path))
    lm = lower_graph(fe.graph, fe.layers, mixed_plan(fe.layers))
    x = groups_of(events((1, zm.T, 2, 16, 16)), fe) + 0.5
    with pytest.raises(ModelError, match="not integer-valued"):
        intref.run(lm.graph, x)
