"""Property tests of the weight quantizers (hqc.quant; code sets in docs/quantizers.md):
numpy and torch agree bit for bit, quantization is a fixed point, codes lie in the
documented sets, packing round-trips, and the straight-through gradient is 1."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hqc import quant
from hqc.choices import QuantChoice, parse_choice

UNIFORM = [f"uni{b}" for b in range(2, 9)]
POT = [f"pot{b}" for b in range(2, 6)]
ALL = UNIFORM + POT
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def weights(draw: st.DrawFn) -> np.ndarray:
    """Weight tensors (C_out, fan-in) or conv-shaped, finite float32 over several scales,
    with exact zeros, ties and per-channel outliers appearing often."""
    shape = draw(st.sampled_from([(1, 1), (1, 7), (3, 5), (4, 2, 3, 3), (2, 16), (8, 3)]))
    scale = draw(st.sampled_from([1e-4, 0.02, 1.0, 30.0]))
    elems = st.floats(-4.0, 4.0, width=32, allow_subnormal=False) | st.sampled_from([0.0, 0.5, -0.5, 1.0, -1.0, 0.75])
    w = draw(arrays(np.float32, shape, elements=elems))
    return (w * np.float32(scale)).astype(np.float32)


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


def _torch_codes(w: np.ndarray, choice: QuantChoice, s: np.ndarray) -> tuple[np.ndarray, ...]:
    """Codes recovered from the torch path's values (q = v/s; k = -log2(|v|/s))."""
    v = quant.fake_quant_torch(torch.from_numpy(w), choice, s).numpy().astype(np.float64)
    sb = s.reshape((-1,) + (1,) * (w.ndim - 1)).astype(np.float64)
    if choice.kind == "uniform":
        return (np.rint(v / sb).astype(np.int8),)
    return (np.signbit(v).astype(np.int8), np.rint(-np.log2(np.abs(v) / sb)).astype(np.int8))


@SETTINGS
@given(w=weights(), name=st.sampled_from(ALL))
def test_numpy_and_torch_give_bit_identical_values_and_codes(w, name):
    c = parse_choice(name)
    ref = quant.fake_quant_numpy(w, c)
    got = quant.fake_quant_torch(torch.from_numpy(w), c).detach().numpy()
    np.testing.assert_array_equal(_bits(got), _bits(ref))
    s = quant.channel_scales(w, c)
    codes = quant.quantize_codes(w, c, s)[:-1]
    for a, b in zip(_torch_codes(w, c, s), codes, strict=True):
        np.testing.assert_array_equal(a, b)


@SETTINGS
@given(w=weights(), name=st.sampled_from(ALL))
def test_quantized_weights_are_fixed_points(w, name):
    c = parse_choice(name)
    q = quant.fake_quant_numpy(w, c)
    np.testing.assert_array_equal(_bits(quant.fake_quant_numpy(q, c)), _bits(q))
    # with the scales fixed: dequantize ∘ quantize_codes is the identity on Q(w), and
    # quantize_codes ∘ dequantize is the identity on codes
    s = quant.channel_scales(w, c)
    codes = quant.quantize_codes(w, c, s)
    deq = quant.dequantize(*codes, choice=c)
    np.testing.assert_array_equal(_bits(deq), _bits(q))
    again = quant.quantize_codes(deq, c, s)
    for a, b in zip(again[:-1], codes[:-1], strict=True):
        np.testing.assert_array_equal(a, b)


@SETTINGS
@given(w=weights(), name=st.sampled_from(ALL))
def test_codes_lie_in_the_documented_sets(w, name):
    c = parse_choice(name)
    s = quant.channel_scales(w, c)
    assert s.dtype == np.float32 and s.shape == (w.shape[0],) and np.all(s > 0)
    codes = quant.quantize_codes(w, c, s)
    if c.kind == "uniform":
        (q,) = codes[:-1]
        qmax = 2 ** (c.bits - 1) - 1
        assert q.dtype == np.int8 and q.min() >= -qmax and q.max() <= qmax
        # symmetric grid, zero representable: w = 0 → q = 0
        assert np.all(q[w == 0] == 0)
    else:
        sign, k = codes[:-1]
        kmax = 2 ** (c.bits - 1) - 1
        assert set(np.unique(sign)) <= {0, 1}
        assert k.min() >= 0 and k.max() <= kmax
        v = quant.dequantize(*codes, choice=c)
        assert np.all(v != 0)  # no zero in the power-of-two set
        assert np.all(sign[w == 0] == 0) and np.all(k[w == 0] == kmax)
        assert np.all(sign[w < 0] == 1) and np.all(sign[w > 0] == 0)
    word = quant.storage_code(codes[:-1], c)
    assert word.min() >= 0 and word.max() < 2**c.bits


@SETTINGS
@given(w=weights(), name=st.sampled_from(POT))
def test_power_of_two_is_the_nearest_power_in_the_linear_domain(w, name):
    c = parse_choice(name)
    s = quant.channel_scales(w, c)
    v = quant.dequantize(*quant.quantize_codes(w, c, s), choice=c).astype(np.float64)
    kmax = 2 ** (c.bits - 1) - 1
    sb = s.reshape((-1,) + (1,) * (w.ndim - 1)).astype(np.float64)
    levels = sb[..., None] * 2.0 ** -np.arange(kmax + 1)  # every magnitude of the set
    dist = np.abs(np.abs(w.astype(np.float64))[..., None] - levels)
    best = dist.min(axis=-1)
    err = np.abs(np.abs(w.astype(np.float64)) - np.abs(v))
    # the chosen magnitude is a nearest one (ties at the 0.75·2^-j midpoints either way)
    assert np.all(err <= best * (1 + 1e-6) + 1e-30)


@SETTINGS
@given(data=st.data(), bits=st.sampled_from([2, 4, 8]))
def test_pack_unpack_identity(data, bits):
    n = data.draw(st.integers(0, 37))
    codes = np.array(data.draw(st.lists(st.integers(0, 2**bits - 1), min_size=n, max_size=n)), np.int64)
    packed = quant.pack_codes(codes, bits)
    assert len(packed) == -(-n * bits // 8)
    np.testing.assert_array_equal(quant.unpack_codes(packed, bits, n), codes)


@SETTINGS
@given(w=weights(), name=st.sampled_from(ALL))
def test_signed_codes_survive_storage_packing(w, name):
    c = parse_choice(name)
    assume(c.bits in (2, 4, 8))
    codes = quant.quantize_codes(w, c, quant.channel_scales(w, c))[:-1]
    word = quant.storage_code(codes, c)
    back = quant.unpack_codes(quant.pack_codes(word, c.bits), c.bits, word.size).reshape(w.shape)
    if c.kind == "uniform":
        (q,) = codes
        signed = np.where(back >= 2 ** (c.bits - 1), back - 2**c.bits, back)
        np.testing.assert_array_equal(signed, q)
    else:
        sign, k = codes
        np.testing.assert_array_equal(back >> (c.bits - 1), sign)
        np.testing.assert_array_equal(back & (2 ** (c.bits - 1) - 1), k)


@SETTINGS
@given(w=weights(), name=st.sampled_from(ALL + ["fp32"]))
def test_straight_through_gradient_is_one(w, name):
    c = parse_choice(name)
    wt = torch.from_numpy(w).requires_grad_(True)
    q = quant.fake_quant_torch(wt, c)
    g = torch.from_numpy(np.random.default_rng(0).standard_normal(w.shape).astype(np.float32))
    (q * g).sum().backward()
    np.testing.assert_array_equal(wt.grad.numpy(), g.numpy())


def test_worked_examples_from_the_docs():
    """The examples of docs/quantizers.md."""
    w = np.array([[0.7, -0.3, 0.05, -0.7]], np.float32)
    s = np.array([0.1], np.float32)
    (q, _) = quant.quantize_codes(w, parse_choice("uni4"), s)
    assert q.tolist() == [[7, -3, 0, -7]]  # 0.05/0.1 = 0.5 → round half even → 0
    sign, k, _ = quant.quantize_codes(w, parse_choice("pot4"), np.array([0.7], np.float32))
    assert sign.tolist() == [[0, 1, 0, 1]] and k.tolist() == [[0, 1, 4, 0]]
    v = quant.dequantize(sign, k, np.array([0.7], np.float32), choice=parse_choice("pot4"))
    np.testing.assert_allclose(v, [[0.7, -0.35, 0.04375, -0.7]], rtol=1e-6)
    assert quant.storage_code((sign, k), parse_choice("pot4")).tolist() == [[0, 9, 4, 8]]
    sign2, k2, _ = quant.quantize_codes(np.array([[0.0, 0.2]], np.float32), parse_choice("pot2"), np.array([1.0], np.float32))
    assert sign2.tolist() == [[0, 0]] and k2.tolist() == [[1, 1]]  # pot2 set: ±s, ±s/2
    assert quant.pack_codes(np.array([1, 2, 3, 0, 1]), 2) == bytes([0b00111001, 0b00000001])
    assert quant.pack_codes(np.array([0x3, 0xA]), 4) == bytes([0xA3])


@pytest.mark.parametrize("name", ["uni4", "pot2"])
def test_all_zero_channel_is_quantized_to_the_smallest_code(name):
    c = parse_choice(name)
    w = np.zeros((2, 5), np.float32)
    w[1] = [0.1, -0.2, 0.3, 0.0, 0.05]
    v = quant.fake_quant_numpy(w, c)
    if c.kind == "uniform":
        assert np.all(v[0] == 0)
    else:
        assert np.all(v[0] > 0)  # no zero in the set: +s·2^-kmax


# ------------------------------------------------------------------ learned scales (LSQ)
@SETTINGS
@given(w=weights(), name=st.sampled_from(ALL),
       factor=st.floats(0.25, 4.0, width=32))
def test_learned_scale_forward_equals_numpy_with_those_scales_bit_for_bit(w, name, factor):
    c = parse_choice(name)
    s = (quant.channel_scales(w, c) * np.float32(factor)).astype(np.float32)
    ref = quant.fake_quant_numpy(w, c, s)
    got = quant.learned_fake_quant_torch(torch.from_numpy(w), c, torch.from_numpy(s).requires_grad_(True))
    np.testing.assert_array_equal(_bits(got.detach().numpy()), _bits(ref))
    np.testing.assert_array_equal(_bits(quant.fake_quant_torch(torch.from_numpy(w), c, s).numpy()), _bits(ref))


@pytest.mark.parametrize("name", ["uni2", "uni4", "pot2", "pot4"])
def test_lsq_gradients_match_a_hand_computation(name):
    """∂L/∂w = g·[|x| ≤ L]; ∂L/∂s_c = Σ_i g_i·(level_i − x_i if |x_i| ≤ L else sign(x_i)·L) / sqrt(N_c·L)
    with x = w/s, level = Q(w)/s, L = qmax or 1 (docs/quantizers.md)."""
    c = parse_choice(name)
    rng = np.random.default_rng(3)
    w = (rng.standard_normal((3, 2, 5)) * 0.2).astype(np.float32)
    s = np.array([0.05, 0.1, 0.3], np.float32)
    g = rng.standard_normal(w.shape).astype(np.float32)
    wt, st_ = torch.from_numpy(w).requires_grad_(True), torch.from_numpy(s).requires_grad_(True)
    (quant.learned_fake_quant_torch(wt, c, st_) * torch.from_numpy(g)).sum().backward()
    level = 2 ** (c.bits - 1) - 1 if c.kind == "uniform" else 1
    sb = s.astype(np.float64)[:, None, None]
    x = w.astype(np.float64) / sb
    inside = np.abs(x) < level
    assert inside.any() and (~inside).any()  # both branches are exercised
    codes = quant.quantize_codes(w, c, s)[:-1]
    if c.kind == "uniform":
        lvl = codes[0].astype(np.float64)
        np.testing.assert_array_equal(lvl[inside], np.round(x[inside]))
    else:
        lvl = np.where(codes[0] > 0, -1.0, 1.0) * 2.0 ** -codes[1].astype(np.float64)
    ds = np.where(inside, lvl - x, np.sign(x) * level)
    want_s = (g * ds).reshape(3, -1).sum(axis=1) / np.sqrt(10 * level)
    np.testing.assert_allclose(st_.grad.numpy(), want_s, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(wt.grad.numpy(), np.where(inside, g, 0), rtol=1e-6, atol=0)  # s·(1/s)


def test_learned_scales_file_round_trips_exactly(tmp_path):
    s = {"blocks.0.attn.q": ("uni2", np.array([0.1, 3e-7, 1.5], np.float32)), "head": ("pot2", np.array([2.0], np.float32))}
    quant.save_scales(tmp_path / "scales.npz", s)
    back = quant.load_scales(tmp_path / "scales.npz")
    assert back.keys() == s.keys()
    for k, (c, v) in s.items():
        assert back[k][0] == c and back[k][1].dtype == np.float32
        np.testing.assert_array_equal(_bits(back[k][1]), _bits(v))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a learned-scales file"):
        quant.load_scales(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="finite and > 0"):
        quant.check_scales(np.array([0.1, 0.0], np.float32), 2, parse_choice("uni4"))
    with pytest.raises(ValueError, match="needs 3 per-channel scales"):
        quant.check_scales(np.ones(2, np.float32), 3, parse_choice("uni4"))
