"""Building model.int.onnx: the node/initializer builder the integer ops write into, and
the window gathers (im2col, pooling windows) that stand in for ONNX's float-only Conv.

ONNX's Conv and ConvInteger are float or 8-bit only, BitShift is unsigned only and
MaxPool on integers is 8-bit only, so the ops are written with int64 Gather / MatMul /
Mul / Div / ReduceMax: the same integers the C kernels compute with shifts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
FP32_MARK = "hqc:fp32"  # doc_string of the nodes of an fp32 layer (the only float ops)
I64 = TensorProto.INT64
I64_MIN = int(np.iinfo(np.int64).min)


class OnnxBuilder:
    """Collects ONNX nodes and initializers; small constants are shared by content."""

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

    def mark_fp32(self, first: int, layer: str) -> None:
        """Tag the nodes appended since index `first` as the float island of an fp32 layer."""
        for n in self.nodes[first:]:
            n.doc_string = f"{FP32_MARK} {layer}"


def im2col_indices(c: int, sp: tuple[int, ...], kernel: list[int], strides: list[int],
                   dil: list[int]) -> tuple[np.ndarray, tuple[int, ...]]:
    """Flat indices into (C, *sp) of every (output position, (c, k…)) pair."""
    nd = len(kernel)
    out = tuple((sp[i] - ((kernel[i] - 1) * dil[i] + 1)) // strides[i] + 1 for i in range(nd))
    grid = np.arange(c * int(np.prod(sp))).reshape((c,) + tuple(sp))
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dil, strict=True)]
    v = sliding_window_view(grid, span, axis=tuple(range(1, 1 + nd)))
    sl = [slice(None)] + [slice(None, None, s) for s in strides] + [slice(None, None, d) for d in dil]
    v = v[tuple(sl)]  # (C, *out, *k)
    perm = list(range(1, 1 + nd)) + [0] + list(range(1 + nd, 1 + 2 * nd))
    idx = v.transpose(perm).reshape(int(np.prod(out)), -1)
    return np.ascontiguousarray(idx.astype(np.int64)), out


def pad_node(b: OnnxBuilder, x: str, rank: int, nd: int, pads: list[int], value: int, base: str) -> str:
    """Pad the last `nd` axes of x (ONNX pads order: begins, then ends) with `value`."""
    if not any(pads):
        return x
    full = [0] * (rank - nd) + list(pads[:nd]) + [0] * (rank - nd) + list(pads[nd:])
    return b.op("Pad", [x, b.i64(full), b.i64(value)], base)


def windows_gather(b: OnnxBuilder, x: str, shape: tuple[int, ...], kernel: list[int], strides: list[int],
                   pads: list[int], dil: list[int], pad_value: int, base: str, channels_in_rows: bool):
    """x (N, C, *sp) → gathered windows. channels_in_rows: (N, out, C·k) for im2col;
    else (N, C, out, k) for pooling. Returns (tensor, output spatial shape)."""
    nd = len(kernel)
    n, c = shape[0], shape[1]
    sp = tuple(shape[2 + i] + pads[i] + pads[i + nd] for i in range(nd))
    xp = pad_node(b, x, len(shape), nd, pads, pad_value, base)
    if channels_in_rows:
        idx, out = im2col_indices(c, sp, kernel, strides, dil)
        flat = b.op("Reshape", [xp, b.i64([n, c * int(np.prod(sp))])], base)
        return b.op("Gather", [flat, b.i64(idx, base + "_im2col")], base, axis=1), out
    idx, out = im2col_indices(1, sp, kernel, strides, dil)
    flat = b.op("Reshape", [xp, b.i64([n, c, int(np.prod(sp))])], base)
    return b.op("Gather", [flat, b.i64(idx, base + "_win")], base, axis=2), out
