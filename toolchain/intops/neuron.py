"""The integer LIF neuron of the dialect.

    LIF(acc)      per step t (time on `time_axis`), V = 0 at t = 0, per element j with the
                  broadcast per-channel parameters sign, bias B, theta Θ:
                      X = sign·acc_t·2^F + B
                      H = (V·2^k − V + X·2^x_shift) / 2^k      (always exact, checked)
                      s = H ≥ Θ;   V = s ? 0 : H

Attributes: `time_axis`, `tau_shift` k, `x_shift`, `frac_bits` F, per-channel int64 arrays
`bias`, `theta`, `sign` (broadcast against one time step), `mem_bits` (the membrane's
proven width, which picks its C type), `layer`, `neuron` (names for the records).
The lowering (hqc.lowering.neurons) chooses the parameters so that every division by
2^k is exact; the reference checks it at every step.

ONNX: unrolled over T: Gather(t) → Mul(sign·2^F) → Add(B) → membrane ((V·2^k − V + X) /
2^k, exact) → GreaterOrEqual(Θ) → Where(s, 0, H); spikes Cast(int64) → Unsqueeze → Concat.
C: the integer membrane in int32 or int64 as the bound requires, shifts only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hqc.errors import ModelError
from hqc.intops.base import Interval, IntOp, prod, register
from hqc.intops.cgen import I32, I64, SHL, CEmitter, c_array, c_ints, index, loops, strides
from hqc.intops.onnxgen import I64 as ONNX_I64
from hqc.intops.onnxgen import OnnxBuilder
from hqc.ir import Graph, Node


def lif_int(acc: np.ndarray, attrs: dict[str, Any], time_axis: int) -> np.ndarray:
    """The integer LIF of the module docstring; acc int64 with time on `time_axis`."""
    k = int(attrs["tau_shift"])
    xs = int(attrs["x_shift"])
    F = int(attrs["frac_bits"])
    sign = np.asarray(attrs["sign"], np.int64)
    bias = np.asarray(attrs["bias"], np.int64)
    theta = np.asarray(attrs["theta"], np.int64)
    xt = np.moveaxis(np.asarray(acc, np.int64), time_axis, 0)
    v = np.zeros(xt.shape[1:], np.int64)
    out = np.empty(xt.shape, np.int64)
    mask = (1 << k) - 1
    for t in range(xt.shape[0]):
        x = ((sign * xt[t]) << F) + bias
        num = (v << k) - v + (x << xs)
        if np.any(num & mask):
            raise RuntimeError(f"LIF {attrs.get('neuron', '?')}: inexact membrane decay at step {t} "
                               "(internal invariant of lower-int broken)")
        h = num >> k
        s = h >= theta
        v = np.where(s, 0, h)
        out[t] = s
    return np.moveaxis(out, 0, time_axis)


@register
class LIF(IntOp):
    name = "LIF"
    attrs = {"time_axis": "int", "tau_shift": "int", "x_shift": "int", "frac_bits": "int", "bias": "array",
             "theta": "array", "sign": "array", "mem_bits": "int", "layer": "str", "neuron": "str"}

    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        return [(0, 1)]

    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray:
        x = xs[0]
        return lif_int(x, node.attrs, (int(node.attrs["time_axis"]) % (x.ndim - 1)) + 1)

    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        x = node.inputs[0]
        shape = tuple(g.shape(x))
        a = node.attrs
        ta = int(a["time_axis"])
        T = shape[ta]
        k, xs, F = int(a["tau_shift"]), int(a["x_shift"]), int(a["frac_bits"])
        base = node.name
        mult = np.asarray(a["sign"], np.int64) << F
        cmul = b.const(mult, base + "_sign_2F")
        cbias = b.const(np.asarray(a["bias"], np.int64), base + "_bias")
        ctheta = b.const(np.asarray(a["theta"], np.int64), base + "_theta")
        c2k, c2xs, zero = b.i64(1 << k), b.i64(1 << xs), b.i64(0)
        step_shape = [d for i, d in enumerate(shape) if i != ta]
        v = b.const(np.zeros(step_shape, np.int64), base + "_v0")
        spikes = []
        for t in range(T):
            xt = b.op("Gather", [x, b.i64(t)], base, axis=ta)
            xt = b.op("Mul", [xt, cmul], base)
            xt = b.op("Add", [xt, cbias], base)
            if xs:
                xt = b.op("Mul", [xt, c2xs], base)
            num = b.op("Sub", [b.op("Mul", [v, c2k], base), v], base)
            num = b.op("Add", [num, xt], base)
            h = b.op("Div", [num, c2k], base)  # exact: the remainder is 0 by construction
            s = b.op("GreaterOrEqual", [h, ctheta], base)
            v = b.op("Where", [s, zero, h], base)
            si = b.op("Cast", [s], base, to=ONNX_I64)
            spikes.append(b.op("Unsqueeze", [si, b.i64([ta])], base))
        b.op("Concat", spikes, base, out=node.outputs[0], axis=ta)

    def c(self, e: CEmitter, node: Node) -> None:
        _c_lif(e, node)


def _c_lif(e: CEmitter, node: Node) -> None:
    g = e.g
    a = node.attrs
    x, y = node.inputs[0], node.outputs[0]
    e.tensor(y)
    fn = e.fn(node)
    shape = tuple(g.shape(x))
    ta = int(a["time_axis"])
    step = tuple(d for i, d in enumerate(shape) if i != ta)
    mem = I32 if int(a["mem_bits"]) <= 31 else I64
    k, xs, F = int(a["tau_shift"]), int(a["x_shift"]), int(a["frac_bits"])
    pshape = np.asarray(a["bias"]).shape
    if len(pshape) != len(step):
        raise ModelError(f"C kernels: LIF {node.name!r} parameters of rank {len(pshape)}")
    pstr = [s if d > 1 else 0 for s, d in zip(strides(pshape), pshape, strict=True)]
    vstr = strides(step)
    full_p = [0] * len(shape)
    full_v = [0] * len(shape)
    j = 0
    for i in range(len(shape)):
        if i == ta:
            continue
        full_p[i], full_v[i] = pstr[j], vstr[j]
        j += 1
    ptype = "int32_t" if mem == I32 else "int64_t"
    e.data += c_array(f"{fn}_sg", "int8_t", c_ints(a["sign"]))
    e.data += c_array(f"{fn}_b", ptype, c_ints(a["bias"]))
    e.data += c_array(f"{fn}_th", ptype, c_ints(a["theta"]))
    e.buffers.append(f"static {mem} {fn}_v[{prod(step)}];  // membrane of {node.name}")
    X, Y = e.buf[x], e.buf[y]
    opens, closes, ind = loops(shape)
    lines = [f"// hqc-kernel begin {a.get('neuron', node.name)} lif F={F}", f"static void {fn}(void)", "{",
             "    int32_t " + ", ".join(f"d{i}" for i in range(len(shape))) + ", i, xi, vi, pi;",
             f"    {mem} xv, num, h;", "    int s;",
             f"    for (i = 0; i < {prod(step)}; i++) {fn}_v[i] = 0;"]
    lines += opens
    lines += [
        f"{ind}xi = {index(strides(shape))};",
        f"{ind}vi = {index(full_v)};",
        f"{ind}pi = {index(full_p)};",
        f"{ind}xv = ({mem}){X}[xi];",
        f"{ind}if ({fn}_sg[pi] < 0) xv = -xv; else if ({fn}_sg[pi] == 0) xv = 0;",
        f"{ind}xv = {SHL[mem]}(xv, {F}) + {fn}_b[pi];",
        f"{ind}num = {SHL[mem]}({fn}_v[vi], {k}) - {fn}_v[vi] + {SHL[mem]}(xv, {xs});",
        f"{ind}h = num >> {k};",
        f"{ind}s = h >= {fn}_th[pi];",
        f"{ind}{fn}_v[vi] = s ? 0 : h;",
        f"{ind}{Y}[xi] = (uint8_t)s;",
    ]
    lines += closes
    lines += ["}", "// hqc-kernel end"]
    e.funcs.append("\n".join(lines))

# ---------------------------------------------------------------- other ops
