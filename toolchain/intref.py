"""The numpy integer reference: it *defines* the semantics of the lowered IR (`ai.hqc.int`).

Every tensor is int64; every op is exact integer arithmetic (no rounding anywhere):

    QConv(x)      y[n,o,p] = Σ_{c,k} w[o,c,k] · x_pad[n, c, p·stride + k·dilation]
                  (zero padding; w = the layer's integer weights: uniform codes q,
                  power-of-two ±2^(kmax−k), fp32 mantissas on the per-channel grid)
    QLinear(x)    y[..., o] = Σ_i w[o, i] · x[..., i]
    MatMul(x, y)  batched integer matrix product (numpy broadcasting)
    Add/Sub       elementwise;  Shl(x; n) = x · 2^n
    MaxPool(x)    max over the window; padding never wins (−∞)
    ReduceSum     sum over `axes`
    Reshape, Transpose
    LIF(acc)      per step t (time on `time_axis`), V = 0 at t = 0, per element j with the
                  broadcast per-channel parameters sign, bias B, theta Θ:
                      X = sign·acc_t·2^F + B
                      H = (V·2^k − V + X·2^x_shift) / 2^k      (always exact, checked)
                      s = H ≥ Θ;   V = s ? 0 : H
    Requant(x)    L = x · mult + bias   (int64 logits)

Execution: `run(graph, x)` takes a stack of model inputs (G, *input shape) and returns the
outputs stacked the same way. Integer matrix products go through float64 BLAS only when
max|a|·max|b|·K < 2^53, which makes every partial sum an exactly representable integer
(the result equals int64 arithmetic bit for bit); otherwise numpy's int64 matmul runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view
from onnx import helper, numpy_helper

from hqc.errors import ModelError
from hqc.ir import Graph, Value

log = logging.getLogger(__name__)

INT_DOMAIN = "ai.hqc.int"
_EXACT = float(2**53)
_I64_MIN = np.iinfo(np.int64).min


def imatmul(a: np.ndarray, b: np.ndarray, engine: str = "auto") -> np.ndarray:
    """Exact int64 a @ b (numpy broadcasting). engine: auto | int64 | float64."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    k = a.shape[-1]
    if engine != "int64" and a.size and b.size:
        bound = float(np.abs(a).max()) * float(np.abs(b).max()) * k
        if bound < _EXACT:
            return np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)
        if engine == "float64":
            raise ModelError("float64 engine: product bound exceeds 2^53")
    return np.matmul(a, b)


def _pad(x: np.ndarray, pads: list[int], nd: int, value: int) -> np.ndarray:
    width = [(0, 0)] * (x.ndim - nd) + [(pads[i], pads[i + nd]) for i in range(nd)]
    if not any(p for pr in width for p in pr):
        return x
    return np.pad(x, width, constant_values=value)


def _windows(x: np.ndarray, kernel: list[int], strides: list[int], dil: list[int]) -> np.ndarray:
    """x (B, C, *sp) → (B, C, *out, *k) windows (a view)."""
    nd = len(kernel)
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dil, strict=True)]
    v = sliding_window_view(x, span, axis=tuple(range(2, 2 + nd)))
    sl = [slice(None)] * 2 + [slice(None, None, s) for s in strides] + [slice(None, None, d) for d in dil]
    return v[tuple(sl)]


def conv_int(x: np.ndarray, w: np.ndarray, strides: list[int], pads: list[int], dil: list[int],
             engine: str = "auto") -> np.ndarray:
    """Exact integer convolution, x (B, C, *sp) int64, w (O, C, *k) int64 → (B, O, *out)."""
    nd = w.ndim - 2
    xp = _pad(np.asarray(x, np.int64), pads, nd, 0)
    win = _windows(xp, list(w.shape[2:]), strides, dil)  # (B, C, *out, *k)
    bsz, c = win.shape[:2]
    out = win.shape[2: 2 + nd]
    perm = [0] + list(range(2, 2 + nd)) + [1] + list(range(2 + nd, 2 + 2 * nd))
    cols = win.transpose(perm).reshape(bsz * int(np.prod(out)), -1)
    y = imatmul(cols, w.reshape(w.shape[0], -1).T, engine)  # (B·out, O)
    y = y.reshape((bsz,) + tuple(out) + (w.shape[0],))
    return np.moveaxis(y, -1, 1)


def maxpool_int(x: np.ndarray, kernel: list[int], strides: list[int], pads: list[int]) -> np.ndarray:
    nd = len(kernel)
    xp = _pad(np.asarray(x, np.int64), pads, nd, _I64_MIN)
    win = _windows(xp, kernel, strides, [1] * nd)
    return win.max(axis=tuple(range(win.ndim - nd, win.ndim)))


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


# --------------------------------------------------------------------------- executor
Impl = Callable[[Any, list[np.ndarray], str], np.ndarray]


def _rank_axis(ax: int, rank: int) -> int:
    return (ax % rank) + 1  # +1: the leading group axis


def _qconv(n, xs, engine):
    x = xs[0]
    g, b = x.shape[:2]
    y = conv_int(x.reshape((g * b,) + x.shape[2:]), np.asarray(n.attrs["w"], np.int64),
                 list(n.attrs["strides"]), list(n.attrs["pads"]), list(n.attrs["dilations"]), engine)
    return y.reshape((g, b) + y.shape[1:])


def _qlinear(n, xs, engine):
    return imatmul(xs[0], np.asarray(n.attrs["w"], np.int64).T, engine)


def _reduce(n, xs, engine):
    x = xs[0]
    rank = x.ndim - 1
    axes = tuple(_rank_axis(a, rank) for a in n.attrs["axes"])
    return x.sum(axis=axes, keepdims=bool(n.attrs.get("keepdims", 1)))


def _maxpool(n, xs, engine):
    x = xs[0]
    g, b = x.shape[:2]
    y = maxpool_int(x.reshape((g * b,) + x.shape[2:]), list(n.attrs["kernel_shape"]),
                    list(n.attrs["strides"]), list(n.attrs["pads"]))
    return y.reshape((g, b) + y.shape[1:])


def _lif(n, xs, engine):
    x = xs[0]
    return lif_int(x, n.attrs, _rank_axis(int(n.attrs["time_axis"]), x.ndim - 1))


def _requant(n, xs, engine):
    return xs[0] * np.asarray(n.attrs["mult"], np.int64) + np.asarray(n.attrs["bias"], np.int64)


OPS: dict[str, Impl] = {
    "QConv": _qconv,
    "QLinear": _qlinear,
    "MatMul": lambda n, xs, e: imatmul(xs[0], xs[1], e),
    "Add": lambda n, xs, e: xs[0] + xs[1],
    "Sub": lambda n, xs, e: xs[0] - xs[1],
    "Shl": lambda n, xs, e: xs[0] << int(n.attrs["n"]),
    "Reshape": lambda n, xs, e: xs[0].reshape((xs[0].shape[0],) + tuple(n.attrs["shape"])),
    "Transpose": lambda n, xs, e: xs[0].transpose([0] + [p + 1 for p in n.attrs["perm"]]),
    "ReduceSum": _reduce,
    "MaxPool": _maxpool,
    "LIF": _lif,
    "Requant": _requant,
}


def run(graph: Graph, x: np.ndarray, names: list[str] | None = None, engine: str = "auto") -> list[np.ndarray]:
    """Lowered graph + inputs (G, *input_shape) (integer-valued) → the named tensors
    (default: the graph outputs), each (G, *shape), int64.

    Pre: `graph` came from lower-int (or `load_lowered`). Raises ModelError when an input
    is not integer-valued or has the wrong shape.
    """
    xin = np.asarray(x)
    shape = tuple(graph.shape(graph.inputs[0]) or ())
    if tuple(xin.shape[1:]) != shape:
        raise ModelError(f"integer reference: input groups have shape {list(xin.shape[1:])}; "
                         f"the model expects {list(shape)}")
    if xin.dtype.kind == "f":
        if not np.all(np.isfinite(xin)) or not np.all(xin == np.round(xin)):
            raise ModelError("integer reference: the input is not integer-valued")
    env: dict[str, np.ndarray] = {graph.inputs[0]: xin.astype(np.int64)}
    for node in graph.nodes():
        impl = OPS.get(node.op)
        if impl is None or node.domain != INT_DOMAIN:
            raise ModelError(f"integer reference: unknown op {node.domain}::{node.op} (node {node.name!r})")
        env[node.outputs[0]] = impl(node, [env[t] for t in node.inputs], engine)
    return [env[t] for t in (names or graph.outputs)]


# --------------------------------------------------------------------------- persistence
def save_lowered(graph: Graph, path: str | Path) -> None:
    """Write the lowered IR as an ONNX container (custom domain ai.hqc.int; not runnable by
    onnxruntime — that is model.int.onnx)."""
    from hqc.onnx_io import to_proto

    proto = to_proto(graph)
    meta = {k: v for k, v in graph.meta.items() if k in ("bounds",)}
    helper.set_model_props(proto, {"hqc.lowered": json.dumps(meta, sort_keys=True)})
    onnx.save(proto, str(path))


def load_lowered(path: str | Path) -> Graph:
    """Read a lowered IR written by `save_lowered`."""
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise ModelError(f"{path}: not a readable lowered model ({type(exc).__name__})") from None
    g = Graph(name=model.graph.name, opset=17)
    for vi in list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info):
        tt = vi.type.tensor_type
        dims = tuple(int(d.dim_value) for d in tt.shape.dim)
        g.values[vi.name] = Value(dims, str(helper.tensor_dtype_to_np_dtype(tt.elem_type)))
    g.inputs = [i.name for i in model.graph.input]
    for n in model.graph.node:
        attrs = {}
        for a in n.attribute:
            v = helper.get_attribute_value(a)
            if isinstance(v, onnx.TensorProto):
                v = numpy_helper.to_array(v)
            elif isinstance(v, bytes):
                v = v.decode("utf-8")
            elif isinstance(v, list) and v and isinstance(v[0], bytes):
                v = [s.decode("utf-8") for s in v]
            attrs[a.name] = v
        g.add_node(n.op_type, list(n.input), list(n.output), attrs, name=n.name, domain=n.domain)
    g.outputs = [o.name for o in model.graph.output]
    props = {p.key: p.value for p in model.metadata_props}
    if "hqc.lowered" in props:
        meta = json.loads(props["hqc.lowered"])
        g.meta["bounds"] = {k: tuple(v) for k, v in meta.get("bounds", {}).items()}
    g.meta["lowered"] = True
    return g
