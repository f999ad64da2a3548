"""Numpy implementations of the small ONNX ops hqc evaluates itself.

Used to fold constants (shape arithmetic) and to probe neuron subgraphs. Heavy ops
(Conv, MatMul, pooling) are not here: onnxruntime and the PyTorch backend run those.
Each function takes the node's attrs and its input arrays and returns a list of outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from onnx import helper

Impl = Callable[[dict[str, Any], list[np.ndarray | None]], list[np.ndarray]]
IMPLS: dict[str, Impl] = {}


def _reg(*names: str) -> Callable[[Impl], Impl]:
    def deco(fn: Impl) -> Impl:
        for n in names:
            IMPLS[n] = fn
        return fn

    return deco


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Impl:
    def impl(attrs: dict[str, Any], xs: list[np.ndarray | None]) -> list[np.ndarray]:
        a, b = xs[0], xs[1]
        out = fn(a, b)
        if np.issubdtype(np.asarray(a).dtype, np.integer) and np.issubdtype(np.asarray(b).dtype, np.integer):
            out = np.asarray(out).astype(np.result_type(a, b))
        return [np.asarray(out)]

    return impl


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer):
        return np.trunc(a / b).astype(a.dtype)
    return (a / b).astype(np.result_type(a, b))


IMPLS["Add"] = _binary(np.add)
IMPLS["Sub"] = _binary(np.subtract)
IMPLS["Mul"] = _binary(np.multiply)
IMPLS["Div"] = _binary(_int_div)
IMPLS["Mod"] = lambda attrs, xs: [np.asarray(np.fmod(xs[0], xs[1]) if attrs.get("fmod", 0) else np.mod(xs[0], xs[1]))]
IMPLS["Pow"] = _binary(lambda a, b: np.power(a, b).astype(a.dtype))
IMPLS["Greater"] = _binary(np.greater)
IMPLS["GreaterOrEqual"] = _binary(np.greater_equal)
IMPLS["Less"] = _binary(np.less)
IMPLS["LessOrEqual"] = _binary(np.less_equal)
IMPLS["Equal"] = _binary(np.equal)
IMPLS["And"] = _binary(np.logical_and)
IMPLS["Or"] = _binary(np.logical_or)
IMPLS["Xor"] = _binary(np.logical_xor)


def _unary(fn: Callable[[np.ndarray], np.ndarray]) -> Impl:
    return lambda attrs, xs: [np.asarray(fn(xs[0])).astype(xs[0].dtype) if xs[0].dtype != bool else np.asarray(fn(xs[0]))]


IMPLS["Neg"] = _unary(np.negative)
IMPLS["Abs"] = _unary(np.abs)
IMPLS["Sqrt"] = _unary(np.sqrt)
IMPLS["Exp"] = _unary(np.exp)
IMPLS["Sign"] = _unary(np.sign)
IMPLS["Relu"] = _unary(lambda x: np.maximum(x, 0))
IMPLS["Sigmoid"] = _unary(lambda x: 1.0 / (1.0 + np.exp(-x)))
IMPLS["Tanh"] = _unary(np.tanh)
IMPLS["Not"] = lambda attrs, xs: [np.logical_not(xs[0])]
IMPLS["Identity"] = lambda attrs, xs: [xs[0]]
IMPLS["Dropout"] = lambda attrs, xs: [xs[0]]


@_reg("Max")
def _max(attrs, xs):
    out = xs[0]
    for x in xs[1:]:
        out = np.maximum(out, x)
    return [out]


@_reg("Min")
def _min(attrs, xs):
    out = xs[0]
    for x in xs[1:]:
        out = np.minimum(out, x)
    return [out]


@_reg("Clip")
def _clip(attrs, xs):
    x = xs[0]
    lo = xs[1] if len(xs) > 1 and xs[1] is not None else None
    hi = xs[2] if len(xs) > 2 and xs[2] is not None else None
    out = x
    if lo is not None:
        out = np.maximum(out, lo)
    if hi is not None:
        out = np.minimum(out, hi)
    return [out.astype(x.dtype)]


@_reg("Cast")
def _cast(attrs, xs):
    return [xs[0].astype(helper.tensor_dtype_to_np_dtype(attrs["to"]))]


@_reg("Where")
def _where(attrs, xs):
    return [np.where(xs[0], xs[1], xs[2])]


@_reg("Shape")
def _shape(attrs, xs):
    s = np.array(xs[0].shape, dtype=np.int64)
    start = attrs.get("start", 0)
    end = attrs.get("end", None)
    return [s[start:end]]


@_reg("Gather")
def _gather(attrs, xs):
    return [np.take(xs[0], xs[1].astype(np.int64), axis=attrs.get("axis", 0))]


def _axes(attrs, xs, i=1):
    if len(xs) > i and xs[i] is not None:
        return [int(a) for a in np.asarray(xs[i]).reshape(-1)]
    a = attrs.get("axes")
    return None if a is None else [int(x) for x in a]


@_reg("Unsqueeze")
def _unsqueeze(attrs, xs):
    x = xs[0]
    axes = _axes(attrs, xs)
    rank = x.ndim + len(axes)
    for a in sorted(a % rank for a in axes):
        x = np.expand_dims(x, a)
    return [x]


@_reg("Squeeze")
def _squeeze(attrs, xs):
    axes = _axes(attrs, xs)
    x = xs[0]
    if axes is None:
        return [np.squeeze(x)]
    return [np.squeeze(x, axis=tuple(a % x.ndim for a in axes))]


@_reg("Concat")
def _concat(attrs, xs):
    return [np.concatenate([x for x in xs if x is not None], axis=attrs["axis"])]


@_reg("Reshape")
def _reshape(attrs, xs):
    x, shape = xs[0], [int(s) for s in xs[1].reshape(-1)]
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return [x.reshape(shape)]


@_reg("Flatten")
def _flatten(attrs, xs):
    x = xs[0]
    a = attrs.get("axis", 1) % max(x.ndim, 1) if x.ndim else 0
    lead = int(np.prod(x.shape[:a])) if a else 1
    return [x.reshape(lead, -1)]


@_reg("Transpose")
def _transpose(attrs, xs):
    perm = attrs.get("perm")
    return [np.transpose(xs[0], perm)]


@_reg("Slice")
def _slice(attrs, xs):
    x = xs[0]
    starts = [int(s) for s in xs[1].reshape(-1)]
    ends = [int(s) for s in xs[2].reshape(-1)]
    axes = [int(a) for a in xs[3].reshape(-1)] if len(xs) > 3 and xs[3] is not None else list(range(len(starts)))
    steps = [int(s) for s in xs[4].reshape(-1)] if len(xs) > 4 and xs[4] is not None else [1] * len(starts)
    idx = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        idx[a % x.ndim] = slice(s, e, st)
    return [x[tuple(idx)]]


@_reg("Split")
def _split(attrs, xs):
    x = xs[0]
    axis = attrs.get("axis", 0) % x.ndim
    if len(xs) > 1 and xs[1] is not None:
        sizes = [int(s) for s in xs[1].reshape(-1)]
    elif "split" in attrs:
        sizes = [int(s) for s in attrs["split"]]
    else:
        n = attrs["num_outputs"]
        step = -(-x.shape[axis] // n)
        sizes = [min(step, x.shape[axis] - i * step) for i in range(n)]
    bounds = np.cumsum(sizes)[:-1]
    return list(np.split(x, bounds, axis=axis))


@_reg("ConstantOfShape")
def _cos(attrs, xs):
    v = attrs.get("value")
    v = np.zeros(1, np.float32) if v is None else np.asarray(v).reshape(-1)
    return [np.full([int(s) for s in xs[0].reshape(-1)], v[0], dtype=v.dtype)]


@_reg("Expand")
def _expand(attrs, xs):
    shape = [int(s) for s in xs[1].reshape(-1)]
    out_shape = np.broadcast_shapes(xs[0].shape, tuple(shape))
    return [np.broadcast_to(xs[0], out_shape).copy()]


@_reg("Tile")
def _tile(attrs, xs):
    return [np.tile(xs[0], [int(r) for r in xs[1].reshape(-1)])]


@_reg("Range")
def _range(attrs, xs):
    return [np.arange(xs[0].item(), xs[1].item(), xs[2].item()).astype(xs[0].dtype)]


def _reduce_impl(fn: Callable) -> Impl:
    def impl(attrs, xs):
        axes = _axes(attrs, xs)
        keep = bool(attrs.get("keepdims", 1))
        x = xs[0]
        if axes is None or len(axes) == 0:
            if attrs.get("noop_with_empty_axes", 0):
                return [x]
            axes_t = None
        else:
            axes_t = tuple(a % x.ndim for a in axes)
        return [np.asarray(fn(x, axis=axes_t, keepdims=keep)).astype(x.dtype)]

    return impl


IMPLS["ReduceSum"] = _reduce_impl(np.sum)
IMPLS["ReduceMax"] = _reduce_impl(np.max)
IMPLS["ReduceMean"] = _reduce_impl(np.mean)
IMPLS["ReduceProd"] = _reduce_impl(np.prod)

ELEMENTWISE = frozenset(
    """Add Sub Mul Div Neg Abs Greater GreaterOrEqual Less LessOrEqual Equal Cast Where Not And
    Or Xor Identity Sign Max Min Clip""".split()
)
COMPARE = frozenset({"Greater", "GreaterOrEqual", "Less", "LessOrEqual"})


def evaluate(op: str, attrs: dict[str, Any], inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """Run one op in numpy. Raises KeyError when hqc has no numpy implementation."""
    return IMPLS[op](attrs, inputs)
