"""model.int.onnx: the lowered IR as standard ONNX (opset 17) that onnxruntime runs.

Lowered op → ONNX (every tensor int64 unless said):

    QConv        Pad(0) → Reshape (N, C·Hp·Wp) → Gather(im2col indices) → MatMul(int64
                 weight matrix) → Transpose → Reshape   (ONNX Conv is float-only)
    QLinear      MatMul(x, Wᵀ) with the integer weights
    fp32 layers  the same with Cast(double) and the float32 weights as double, then an
                 exact Mul by 2^-e per channel and Cast(int64): the accumulation is exact
                 (see docs/lowering.md), so the integer result equals the reference
    LIF          unrolled over T: Gather(t) → Mul(sign·2^F) → Add(B) → membrane
                 ((V·2^k − V + X) / 2^k, exact) → GreaterOrEqual(Θ) → Where(s, 0, H);
                 spikes Cast(int64) → Unsqueeze → Concat
    MaxPool      Pad(INT64_MIN) → Gather(windows) → ReduceMax (integer MaxPool is 8-bit only)
    Add/Sub/Shl  Add / Sub / Mul by 2^n;  MatMul (int64);  ReduceSum;  Reshape;  Transpose
    Requant      Mul(mult) → Add(bias): int64 logits

ONNX BitShift is defined for unsigned types only, so power-of-two weights appear as the
integers ±2^j in an int64 MatMul, and the LIF's shifts as Mul / exact Div by powers of two:
the same integers the C kernels produce with shifts. No float op outside fp32 layers.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hqc.errors import ModelError
from hqc.ir import Graph

log = logging.getLogger(__name__)

OPSET = 17
FP32_MARK = "hqc:fp32"  # doc_string of the nodes of an fp32 layer (the only float ops)
I64 = TensorProto.INT64


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0
        self._consts: dict[tuple, str] = {}

    def name(self, base: str) -> str:
        self._n += 1
        return f"{base}~{self._n}"

    def const(self, arr: np.ndarray, base: str = "c") -> str:
        arr = np.array(arr, order="C")  # not ascontiguousarray: it turns 0-d into 1-d
        key = (arr.dtype.str, arr.shape, arr.tobytes()) if arr.size <= 64 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(arr, n))
        if key is not None:
            self._consts[key] = n
        return n

    def i64(self, v: Any, base: str = "c") -> str:
        return self.const(np.asarray(v, np.int64), base)

    def op(self, op: str, inputs: list[str], base: str, out: str | None = None, **attrs: Any) -> str:
        o = out or self.name(base)
        self.nodes.append(helper.make_node(op, inputs, [o], name=self.name(base + "/" + op), **attrs))
        return o


def _im2col_indices(c: int, sp: tuple[int, ...], kernel: list[int], strides: list[int],
                    dil: list[int]) -> tuple[np.ndarray, tuple[int, ...]]:
    """Flat indices into (C, *sp) of every (output position, (c, k…)) pair."""
    nd = len(kernel)
    out = tuple((sp[i] - ((kernel[i] - 1) * dil[i] + 1)) // strides[i] + 1 for i in range(nd))
    grid = np.arange(c * int(np.prod(sp))).reshape((c,) + tuple(sp))
    from numpy.lib.stride_tricks import sliding_window_view

    span = [(k - 1) * d + 1 for k, d in zip(kernel, dil, strict=True)]
    v = sliding_window_view(grid, span, axis=tuple(range(1, 1 + nd)))
    sl = [slice(None)] + [slice(None, None, s) for s in strides] + [slice(None, None, d) for d in dil]
    v = v[tuple(sl)]  # (C, *out, *k)
    perm = list(range(1, 1 + nd)) + [0] + list(range(1 + nd, 1 + 2 * nd))
    idx = v.transpose(perm).reshape(int(np.prod(out)), -1)
    return np.ascontiguousarray(idx.astype(np.int64)), out


def _pad_node(b: _Builder, x: str, rank: int, nd: int, pads: list[int], value: int, base: str) -> str:
    if not any(pads):
        return x
    full = [0] * (rank - nd) + list(pads[:nd]) + [0] * (rank - nd) + list(pads[nd:])
    return b.op("Pad", [x, b.i64(full), b.i64(value)], base)


def _windows_gather(b: _Builder, x: str, shape: tuple[int, ...], kernel: list[int], strides: list[int],
                    pads: list[int], dil: list[int], pad_value: int, base: str, channels_in_rows: bool):
    """x (N, C, *sp) → gathered windows. channels_in_rows: (N, out, C·k) for im2col;
    else (N, C, out, k) for pooling."""
    nd = len(kernel)
    n, c = shape[0], shape[1]
    sp = tuple(shape[2 + i] + pads[i] + pads[i + nd] for i in range(nd))
    xp = _pad_node(b, x, len(shape), nd, pads, pad_value, base)
    if channels_in_rows:
        idx, out = _im2col_indices(c, sp, kernel, strides, dil)
        flat = b.op("Reshape", [xp, b.i64([n, c * int(np.prod(sp))])], base)
        return b.op("Gather", [flat, b.i64(idx, base + "_im2col")], base, axis=1), out
    idx, out = _im2col_indices(1, sp, kernel, strides, dil)
    flat = b.op("Reshape", [xp, b.i64([n, c, int(np.prod(sp))])], base)
    return b.op("Gather", [flat, b.i64(idx, base + "_win")], base, axis=2), out


def _qmatmul(b: _Builder, x: str, node, base: str) -> str:
    """x (..., K) int64 @ the layer's weights (O, K) → (..., O) int64 (float island for fp32)."""
    w = np.asarray(node.attrs["w"], np.int64)
    wmat = w.reshape(w.shape[0], -1)
    if node.attrs["quant"] == "fp32":
        first = len(b.nodes)
        wf = np.asarray(node.attrs["w_float"], np.float32).reshape(w.shape[0], -1).astype(np.float64)
        xd = b.op("Cast", [x], base, to=TensorProto.DOUBLE)
        y = b.op("MatMul", [xd, b.const(np.ascontiguousarray(wf.T), base + "_wf")], base)
        inv = np.ldexp(1.0, -np.asarray(node.attrs["unit_exp"], np.int64).astype(np.int32))
        y = b.op("Mul", [y, b.const(inv.astype(np.float64), base + "_inv_unit")], base)
        y = b.op("Cast", [y], base, to=I64)
        for n in b.nodes[first:]:
            n.doc_string = f"{FP32_MARK} {node.attrs['layer']}"
        return y
    return b.op("MatMul", [x, b.const(np.ascontiguousarray(wmat.T), base + "_w")], base)


def _emit_qconv(b: _Builder, g: Graph, node, out: str) -> None:
    x = node.inputs[0]
    shape = tuple(g.shape(x))
    w = np.asarray(node.attrs["w"])
    kernel = list(w.shape[2:])
    base = node.outputs[0]
    cols, osp = _windows_gather(b, x, shape, kernel, list(node.attrs["strides"]), list(node.attrs["pads"]),
                                list(node.attrs["dilations"]), 0, base, True)
    y = _qmatmul(b, cols, node, base)  # (N, out, O)
    y = b.op("Transpose", [y], base, perm=[0, 2, 1])
    b.op("Reshape", [y, b.i64([shape[0], w.shape[0], *osp])], base, out=out)


def _emit_lif(b: _Builder, g: Graph, node, out: str) -> None:
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
        si = b.op("Cast", [s], base, to=I64)
        spikes.append(b.op("Unsqueeze", [si, b.i64([ta])], base))
    b.op("Concat", spikes, base, out=out, axis=ta)


def _emit_maxpool(b: _Builder, g: Graph, node, out: str) -> None:
    x = node.inputs[0]
    shape = tuple(g.shape(x))
    k = list(node.attrs["kernel_shape"])
    base = node.outputs[0]
    win, osp = _windows_gather(b, x, shape, k, list(node.attrs["strides"]), list(node.attrs["pads"]),
                               [1] * len(k), int(np.iinfo(np.int64).min), base, False)
    m = b.op("ReduceMax", [win], base, axes=[3], keepdims=0)
    b.op("Reshape", [m, b.i64([shape[0], shape[1], *osp])], base, out=out)


def to_int_onnx(g: Graph) -> onnx.ModelProto:
    """Lowered IR (domain ai.hqc.int) → a standard ONNX model (opset 17, int64 in and out).

    Pre: `g` came from lower-int. Post: `onnx.checker` passes; onnxruntime's integer
    outputs equal `hqc.intref.run` on the same inputs.
    """
    b = _Builder()
    for node in g.nodes():
        out = node.outputs[0]
        a = node.attrs
        if node.op == "QConv":
            _emit_qconv(b, g, node, out)
        elif node.op == "QLinear":
            y = _qmatmul(b, node.inputs[0], node, out)
            b.op("Identity", [y], out, out=out)
        elif node.op == "LIF":
            _emit_lif(b, g, node, out)
        elif node.op == "MaxPool":
            _emit_maxpool(b, g, node, out)
        elif node.op in ("Add", "Sub", "MatMul"):
            b.op(node.op, list(node.inputs), out, out=out)
        elif node.op == "Shl":
            b.op("Mul", [node.inputs[0], b.i64(1 << int(a["n"]))], out, out=out)
        elif node.op == "Reshape":
            b.op("Reshape", [node.inputs[0], b.i64(list(a["shape"]))], out, out=out)
        elif node.op == "Transpose":
            b.op("Transpose", [node.inputs[0]], out, out=out, perm=list(a["perm"]))
        elif node.op == "ReduceSum":
            b.op("ReduceSum", [node.inputs[0], b.i64(list(a["axes"]))], out, out=out,
                 keepdims=int(a.get("keepdims", 1)))
        elif node.op == "Requant":
            y = b.op("Mul", [node.inputs[0], b.const(np.asarray(a["mult"], np.int64), out + "_mult")], out)
            b.op("Add", [y, b.const(np.asarray(a["bias"], np.int64), out + "_bias")], out, out=out)
        else:
            raise ModelError(f"model.int.onnx: no ONNX form for {node.op} (node {node.name!r})")

    def vi(t: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(t, I64, list(g.shape(t)))

    graph = helper.make_graph(b.nodes, g.name or "hqc_int", [vi(t) for t in g.inputs],
                              [vi(t) for t in g.outputs], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hqc")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def session(model: onnx.ModelProto | str) -> Any:
    """An onnxruntime CPU session (single-threaded, quiet) for model.int.onnx."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def run_ort(sess: Any, x: np.ndarray) -> np.ndarray:
    """Run model.int.onnx on stacked model inputs (G, *input shape) → (G, *output shape)."""
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: np.ascontiguousarray(xi, dtype=np.int64)})[0] for xi in np.asarray(x)]
    return np.stack(outs)
