"""C99 kernels: the compiled model gives the numpy reference's integer logits (both
exporters, all five quantizers); shift-and-add kernels equal the reference on random
inputs (hypothesis, tiny harnesses compiled with gcc); packing round trips; no float in
quantized-layer code and no `*` in power-of-two kernels; packed bytes = Σ params·bits/8."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hqc import ckernels, intref
from hqc.choices import parse_choice
from hqc.intops.base import weighted_sum_bounds
from hqc.ir import Graph, Value
from hqc.passes.lower_int import INT_DOMAIN, layer_codes
from hqc.quant import pack_codes, unpack_codes
from tests.support.lowering import TINY, events, groups_of, lower_zoo
from tests.support.zoo import example_spikformer

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                reason="gcc and make are needed")

KERNEL = re.compile(r"// hqc-kernel begin (\S+) (\S+)[^\n]*\n(.*?)// hqc-kernel end", re.S)


@pytest.fixture(scope="module", params=[False, True], ids=["ts", "dynamo"])
def compiled(request, zoo_build, tmp_path_factory):
    zm = zoo_build(example_spikformer, {**TINY, "dynamo": request.param})
    fe, plan, lm = lower_zoo(zm, plan_offset=1)
    d = tmp_path_factory.mktemp("kernels")
    wb = ckernels.write_kernels(lm.graph, d)
    return zm, fe, lm, d, ckernels.build(d), wb


def test_c_equals_reference(compiled):
    zm, fe, lm, d, exe, _ = compiled
    x = groups_of(events((16, zm.T, 2, 16, 16), seed=7, lam=0.7), fe)
    ref = intref.run(lm.graph, x)[0]
    got = ckernels.run_binary(exe, x, int(np.prod(ref.shape[1:])))
    assert np.array_equal(got, ref.reshape(len(ref), -1))


def test_no_float_in_quantized_code_and_no_multiply_in_pot_kernels(compiled):
    _, _, lm, d, _, _ = compiled
    src = (d / "hqc_model.c").read_text()
    kernels = KERNEL.findall(src)
    quant = {r["name"]: r["quantizer"] for r in lm.layers}
    seen = {q: 0 for q in set(quant.values())}
    fp32_spans = []
    for name, kind, body in kernels:
        if name in quant:
            assert kind == quant[name]
            seen[kind] += 1
        if kind == "fp32":
            fp32_spans.append(body)
            continue
        assert not re.search(r"\b(float|double)\b", body), name
        if kind.startswith("pot"):
            assert "*" not in body, (name, [ln for ln in body.splitlines() if "*" in ln])
            assert "<<" in body or "HQC_SHL" in body  # the shift (HQC_SHL: a left shift via unsigned)
    assert sum(seen.values()) == len(quant) and set(seen) == {"fp32", "uni4", "uni2", "pot4", "pot2"}
    rest = KERNEL.sub("", src)
    for line in rest.splitlines():
        if re.search(r"\b(float|double)\b", line):
            assert "hqc-fp32" in line, line
    lif = [b for n, k, b in kernels if k == "lif"]
    assert lif and all(">>" in b and not re.search(r"\b(float|double)\b", b) for b in lif)


def test_packed_weight_bytes(compiled):
    _, _, lm, d, _, wb = compiled
    src = (d / "hqc_model.c").read_text()
    sizes = {"uint8_t": 1, "float": 4}
    total = 0
    for ctyp, n in re.findall(r"static const (uint8_t|float) k\d+_w\[(\d+)\]", src):
        total += sizes[ctyp] * int(n)
    expected = sum(-(-r["params"] * r["bits"] // 8) for r in lm.layers)
    assert total == expected == sum(w["bytes"] for w in wb)
    header = (d / "hqc_model.h").read_text()
    assert f"#define HQC_WEIGHT_BYTES {expected}" in header
    fp32 = sum(4 * r["params"] for r in lm.layers)
    assert expected < fp32


def test_driver_text_input_and_range_errors(compiled, tmp_path):
    zm, fe, lm, d, exe, _ = compiled
    x = groups_of(events((2, zm.T, 2, 16, 16), seed=8), fe)
    ref = intref.run(lm.graph, x)[0].reshape(2, -1)
    txt = tmp_path / "in.txt"
    txt.write_text("\n".join(" ".join(str(int(v)) for v in xi.reshape(-1)) for xi in x))
    res = subprocess.run([str(exe), "-t", str(txt)], capture_output=True, text=True, check=True)
    assert np.array_equal(np.array([ln.split() for ln in res.stdout.splitlines()], np.int64), ref)
    bad = x[:1].copy()
    bad.reshape(-1)[3] = 300
    with pytest.raises(Exception, match=r"outside \[0, 255\]"):
        ckernels.run_binary(exe, bad, ref.shape[1])
    short = tmp_path / "short.bin"
    x[:1].astype("<i2").reshape(-1)[:-1].tofile(short)
    res = subprocess.run([str(exe), str(short)], capture_output=True, text=True)
    assert res.returncode == 1 and "incomplete" in res.stderr


# --------------------------------------------------------------------------- harnesses
def _harness(tmp, kind: str, choice: str, in_shape, in_range, wshape, seed, **conv):
    """A lowered graph holding one weight layer, compiled: returns (graph, exe)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=wshape).astype(np.float32)
    w[0, 0] = 0.0
    lc = layer_codes(w, parse_choice(choice), max(abs(in_range[0]), abs(in_range[1])))
    g = Graph("h", 17)
    g.inputs = ["x"]
    g.values["x"] = Value(tuple(in_shape), "int64")
    attrs = {"layer": "L", "quant": choice, "bits": lc.choice.bits, "w": lc.w_int}
    if lc.storage is not None:
        attrs["codes"] = lc.storage.astype(np.uint8)
    else:
        attrs.update(w_float=lc.w_float, unit_exp=lc.unit_exp)
    if kind == "QConv":
        attrs.update(conv)
        x = np.zeros(in_shape, np.int64)
        out_shape = intref.conv_int(x, lc.w_int, conv["strides"], conv["pads"], conv["dilations"]).shape
    else:
        out_shape = tuple(in_shape[:-1]) + (wshape[0],)
    g.add_node(kind, ["x"], ["y"], attrs, name="y", domain=INT_DOMAIN)
    g.values["y"] = Value(tuple(out_shape), "int64")
    g.outputs = ["y"]
    g.meta["bounds"] = {"x": tuple(in_range), "y": weighted_sum_bounds(lc.w_int, tuple(in_range))}
    d = tmp / f"{kind}_{choice}_{seed}"
    ckernels.write_kernels(g, d)
    return g, ckernels.build(d)


HARNESSES = {
    "pot4-conv3x3-spikes": ("QConv", "pot4", (1, 3, 6, 5), (0, 1), (4, 3, 3, 3),
                            dict(nd=2, strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1])),
    "pot2-conv-stride2-integers": ("QConv", "pot2", (2, 2, 7, 6), (0, 5), (3, 2, 3, 2),
                                   dict(nd=2, strides=[2, 1], pads=[1, 0, 2, 1], dilations=[1, 1])),
    "pot3-linear-spikes": ("QLinear", "pot3", (2, 3, 10), (0, 1), (7, 10), {}),
    "pot5-conv1d-integers": ("QConv", "pot5", (2, 4, 9), (0, 3), (5, 4, 3),
                             dict(nd=1, strides=[1], pads=[1, 1], dilations=[2])),
    "uni3-linear-integers": ("QLinear", "uni3", (3, 9), (-4, 6), (5, 9), {}),
    "uni2-conv-spikes": ("QConv", "uni2", (1, 2, 5, 5), (0, 1), (3, 2, 3, 3),
                         dict(nd=2, strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1])),
    # the event-driven spike path with strides, dilations and uneven pads; fp32 on spikes
    "uni4-conv-stride-dilation-spikes": ("QConv", "uni4", (2, 3, 9, 8), (0, 1), (4, 3, 3, 2),
                                         dict(nd=2, strides=[2, 3], pads=[2, 1, 1, 0], dilations=[2, 1])),
    "pot4-conv1d-stride2-spikes": ("QConv", "pot4", (2, 3, 11), (0, 1), (4, 3, 3),
                                   dict(nd=1, strides=[2], pads=[2, 1], dilations=[2])),
    "fp32-conv-spikes": ("QConv", "fp32", (2, 2, 6, 7), (0, 1), (3, 2, 3, 3),
                         dict(nd=2, strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1])),
    # the dense integer path with a dilation and pads larger than the kernel reach
    "uni4-conv-dilation-integers": ("QConv", "uni4", (1, 2, 5, 6), (-3, 7), (3, 2, 3, 3),
                                    dict(nd=2, strides=[1, 2], pads=[3, 0, 2, 4], dilations=[2, 2])),
}


@pytest.fixture(scope="module")
def harnesses(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("harness")
    return {k: (v, *_harness(tmp, v[0], v[1], v[2], v[3], v[4], seed=i, **v[5]))
            for i, (k, v) in enumerate(HARNESSES.items())}


@pytest.mark.parametrize("name", list(HARNESSES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_kernel_equals_reference_on_random_inputs(harnesses, name, data):
    spec, g, exe = harnesses[name]
    in_shape, (lo, hi) = spec[2], spec[3]
    flat = data.draw(st.lists(st.integers(lo, hi), min_size=int(np.prod(in_shape)), max_size=int(np.prod(in_shape))))
    x = np.array(flat, np.int64).reshape((1,) + tuple(in_shape))
    ref = intref.run(g, x)[0]
    got = ckernels.run_binary(exe, x, int(np.prod(ref.shape[1:])))
    assert np.array_equal(got.reshape(ref.shape), ref)


def test_pot_harness_kernels_have_no_multiply(harnesses, tmp_path):
    for name, (spec, _g, exe) in harnesses.items():
        src = (exe.parent / "hqc_model.c").read_text()
        (body,) = [b for _, k, b in KERNEL.findall(src) if k == spec[1]]
        if spec[1].startswith("pot"):
            assert "*" not in body, name


# --------------------------------------------------------------------------- packing
@settings(max_examples=80, deadline=None)
@given(bits=st.integers(1, 8), data=st.data())
def test_pack_unpack_identity(bits, data):
    codes = np.array(data.draw(st.lists(st.integers(0, (1 << bits) - 1), max_size=67)), np.int64)
    packed = ckernels.pack_bits(codes, bits)
    assert len(packed) == -(-codes.size * bits // 8)
    assert np.array_equal(ckernels.unpack_bits(packed, bits, codes.size), codes)
    if bits in (2, 4, 8):
        assert packed == pack_codes(codes, bits)
        assert np.array_equal(unpack_codes(packed, bits, codes.size), codes)


def test_pack_layout_is_lsb_first():
    assert ckernels.pack_bits(np.array([1, 2, 3, 0]), 2) == bytes([0b00111001])
    assert ckernels.pack_bits(np.array([0xA, 0x5]), 4) == bytes([0x5A])
    assert ckernels.pack_bits(np.array([7, 1, 2]), 3) == bytes([0b10001111, 0b0])


# --------------------------------------------------------------------------- MatMul
def _matmul_harness(tmp, a_int: bool, b_int: bool):
    """x (1, 2, 5, 3) spikes; A = x or x + x, B = transpose(x) or of x + x; Y = A @ B."""
    g = Graph("mm", 17)
    g.inputs = ["x"]
    shape = (1, 2, 5, 3)
    g.values["x"] = Value(shape, "int64")
    bounds = {"x": (0, 1)}

    def doubled(name: str) -> str:
        g.add_node("Add", ["x", "x"], [name], {}, name=name, domain=INT_DOMAIN)
        g.values[name] = Value(shape, "int64")
        bounds[name] = (0, 2)
        return name

    a = doubled("a2") if a_int else "x"
    b_src = doubled("b2") if b_int else "x"
    g.add_node("Transpose", [b_src], ["bt"], {"perm": [0, 1, 3, 2]}, name="bt", domain=INT_DOMAIN)
    g.values["bt"] = Value((1, 2, 3, 5), "int64")
    bounds["bt"] = bounds[b_src]
    g.add_node("MatMul", [a, "bt"], ["y"], {}, name="y", domain=INT_DOMAIN)
    g.values["y"] = Value((1, 2, 5, 5), "int64")
    bounds["y"] = (0, 3 * bounds[a][1] * bounds["bt"][1])
    g.outputs = ["y"]
    g.meta["bounds"] = bounds
    d = tmp / f"mm_{int(a_int)}{int(b_int)}"
    ckernels.write_kernels(g, d)
    return g, ckernels.build(d)


@pytest.mark.parametrize(("a_int", "b_int"), [(False, False), (True, False), (False, True), (True, True)],
                         ids=["spike@spike", "int@spike", "spike@int", "int@int"])
def test_matmul_kernel_equals_reference(tmp_path, a_int, b_int):
    g, exe = _matmul_harness(tmp_path, a_int, b_int)
    src = (exe.parent / "hqc_model.c").read_text()
    (body,) = [b for _, k, b in KERNEL.findall(src) if k == "matmul"]
    if not (a_int and b_int):
        assert "*" not in body  # spikes select (a test or a mask), they never multiply
    rng = np.random.default_rng(int(a_int) * 2 + int(b_int))
    for density in (0.0, 0.2, 0.6, 1.0):
        x = (rng.random((1, 1, 2, 5, 3)) < density).astype(np.int64)
        ref = intref.run(g, x)[0]
        got = ckernels.run_binary(exe, x, int(np.prod(ref.shape[1:])))
        assert np.array_equal(got.reshape(ref.shape), ref), density


# --------------------------------------------------------------------------- MaxPool
@pytest.mark.parametrize(("kernel", "strides", "pads", "hi"), [
    ([3, 3], [2, 2], [1, 1, 1, 1], 1),
    ([2, 3], [1, 2], [0, 2, 1, 0], 9),
    ([3], [2], [1, 1], 1),
], ids=["3x3-s2-p1-spikes", "2x3-uneven-integers", "1d-spikes"])
def test_maxpool_kernel_equals_reference(tmp_path, kernel, strides, pads, hi):
    shape = (1, 2, 7, 6) if len(kernel) == 2 else (1, 3, 9)
    g = Graph("mp", 17)
    g.inputs = ["x"]
    g.values["x"] = Value(shape, "int64")
    g.add_node("MaxPool", ["x"], ["y"], {"kernel_shape": kernel, "strides": strides, "pads": pads},
               name="y", domain=INT_DOMAIN)
    out = intref.maxpool_int(np.zeros(shape, np.int64), kernel, strides, pads)
    g.values["y"] = Value(tuple(out.shape), "int64")
    g.outputs = ["y"]
    g.meta["bounds"] = {"x": (0, hi), "y": (0, hi)}
    ckernels.write_kernels(g, tmp_path / "k")
    exe = ckernels.build(tmp_path / "k")
    rng = np.random.default_rng(len(kernel) + hi)
    for _ in range(5):
        x = rng.integers(0, hi + 1, (1,) + shape).astype(np.int64)
        ref = intref.run(g, x)[0]
        got = ckernels.run_binary(exe, x, int(np.prod(ref.shape[1:])))
        assert np.array_equal(got.reshape(ref.shape), ref)
