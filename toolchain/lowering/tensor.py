"""Lowering rules for data movement: the integer tensor moves, its affine view follows.

    Reshape / Flatten / Squeeze / Unsqueeze  → Reshape (a, b follow the channel axis; a
                                               scale spread over several axes follows
                                               element by element)
    Identity / Dropout                       → nothing (the same view)
    Transpose                                → Transpose (a, b transposed)
    Slice (inputs or attributes, negative starts/ends/axes, any steps)
                                             → Slice (normalized as ONNX clamps)
    Split (split input, split attribute, num_outputs, equal parts)
                                             → one Slice per used output
    Gather (constant indices, scalar or array, any axis)
                                             → Gather
    Concat                                   → Concat (views with one scale, or scales
                                               varying along the concatenation axis:
                                               a, b concatenated exactly; otherwise
                                               `arith.common_scale` first)
    Pad, constant mode, value v              → Pad with the integer p = (v − b)/a
                                               (negative pads: a Slice first)
    Pad, edge / reflect / wrap mode          → one Gather per padded axis
    Expand                                   → [Reshape] → Expand
    Tile(repeats r)                          → Reshape (d → 1, d) → Expand (r, d) → Reshape (r·d)

Every move is exact: X moves, and a, b (float64 arrays broadcastable to X) move the same
way along every axis where they vary — sliced, gathered, tiled or concatenated with the
data — so real = a·X + b holds element by element afterwards. The padded elements of
Pad get the integer p with a·p + b = v exactly (a, b edge-padded), so spikes padded
with 0 stay spikes; a v that is no integer of the grid is an error, never a rounding.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from hqc.errors import ModelError
from hqc.intops.base import prod
from hqc.ir import Node
from hqc.lowering.affine import Sym, arr, compact, frac, reshape_aff
from hqc.lowering.rules import rule

if TYPE_CHECKING:
    from hqc.lowering.lowerer import Lowerer

FULL_RESHAPE_LIMIT = 1 << 22  # elements of a per-element affine array a reshape may build

SliceSpec = tuple[int, int, int, int]  # axis, start, end (−1: through 0), step (normalized)


# --------------------------------------------------------------------------- helpers
def _axis(lw: Lowerer, node: Node, ax: int, rank: int) -> int:
    if not -rank <= ax < rank:
        raise lw.unsupported(node, f"axis {ax} outside the rank {rank} of its input")
    return ax % rank


def _ints(lw: Lowerer, node: Node, slot: int, attr: str, what: str) -> list[int] | None:
    """An int list given as constant input `slot` (newer opsets) or as attribute `attr`
    (older ones); None when neither is present."""
    if slot < len(node.inputs) and node.inputs[slot]:
        c = lw.const(node, slot)
        if c is None:
            raise lw.unsupported(node, f"its {what} (input {slot}) are computed at run time; "
                                       "constant ones are needed")
        return [int(v) for v in np.asarray(c).reshape(-1)]
    if attr and attr in node.attrs:
        return [int(v) for v in np.asarray(node.attrs[attr]).reshape(-1)]
    return None


def _view_arrays(s: Sym) -> tuple[np.ndarray, np.ndarray]:
    rank = len(s.shape)
    return arr(s.a, rank), arr(s.b, rank)


def _check_shape(lw: Lowerer, node: Node, slot: int, shape: tuple[int, ...]) -> None:
    """The shape a rule computed must be the frontend's (shape inference) one."""
    known = lw.src.shape(node.outputs[slot])
    if known is not None and all(isinstance(d, int) for d in known) and tuple(known) != tuple(shape):
        raise lw.unsupported(node, f"output {slot} has shape {list(known)}, the ONNX semantics give "
                                   f"{list(shape)}")


def _used(lw: Lowerer, t: str) -> bool:
    return bool(t) and (bool(lw.src.consumers(t)) or t in lw.src.outputs)


def _varying(a: np.ndarray) -> set[int]:
    """The axes along which the affine array a takes more than one value."""
    return {d for d, n in enumerate(compact(a).shape) if n > 1}


def _take(a: np.ndarray, ax: int, idx: np.ndarray) -> np.ndarray:
    """The affine array a of a tensor gathered with `idx` along `ax`."""
    if a.shape[ax] == 1:
        return a.reshape(a.shape[:ax] + (1,) * idx.ndim + a.shape[ax + 1:])
    return np.take(a, idx, axis=ax)


# --------------------------------------------------------------------------- reshapes
@rule("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def reshape_like(lw: Lowerer, node: Node) -> None:
    """Every form (axes as input or attribute, Squeeze without axes, Flatten's axis) is
    read from the output's static shape."""
    s = lw.sym_of(node, 0)
    out_shape = lw.shape(node.outputs[0])
    if prod(out_shape) != prod(s.shape):
        raise lw.unsupported(node, f"reshape {list(s.shape)} → {list(out_shape)} changes the size")
    try:
        a = reshape_aff(s.a, s.shape, out_shape, node.name)
        b = reshape_aff(s.b, s.shape, out_shape, node.name)
    except ModelError:
        a, b = (_reshape_full(lw, node, v, s.shape, out_shape) for v in _view_arrays(s))
    t = lw.emit("Reshape", [s.t], node.outputs[0], {"shape": list(out_shape)}, out_shape)
    lw.put(node, t, a, b, s.layer)


def _reshape_full(lw: Lowerer, node: Node, a: np.ndarray, in_shape: tuple[int, ...],
                  out_shape: tuple[int, ...]) -> np.ndarray:
    """An affine array spread over several axes (or split by the reshape), reshaped
    element by element: exact, as large as the tensor before `compact`."""
    size = prod(in_shape)
    if size > FULL_RESHAPE_LIMIT:
        raise lw.unsupported(node, f"reshape {list(in_shape)} → {list(out_shape)} of a tensor whose scale "
                                   f"varies over several axes ({size} elements, limit {FULL_RESHAPE_LIMIT})")
    return compact(np.broadcast_to(a, in_shape).reshape(out_shape))


@rule("Identity", "Dropout")
def identity(lw: Lowerer, node: Node) -> None:
    lw.sym[node.outputs[0]] = lw.sym_of(node, 0)


@rule("Transpose")
def transpose(lw: Lowerer, node: Node) -> None:
    s = lw.sym_of(node, 0)
    perm = list(node.attrs.get("perm", list(reversed(range(len(s.shape))))))
    out_shape = tuple(s.shape[p] for p in perm)
    t = lw.emit("Transpose", [s.t], node.outputs[0], {"perm": perm}, out_shape)
    lw.put(node, t, s.a.transpose(perm), s.b.transpose(perm), s.layer)


# --------------------------------------------------------------------------- slicing
def _normalize(lw: Lowerer, node: Node, ax: int, dim: int, start: int, end: int, step: int) -> SliceSpec:
    """ONNX Slice's index rules → (axis, start, end, step) with range(start, end, step) the
    indices taken (end −1 with a negative step: through index 0)."""
    if step == 0:
        raise lw.unsupported(node, f"step 0 on axis {ax}")
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    if not range(start, end, step):
        raise lw.unsupported(node, f"slice {start}:{end}:{step} of axis {ax} (size {dim}) is empty")
    return ax, start, end, step


def _put_slice(lw: Lowerer, node: Node, s: Sym, specs: list[SliceSpec], slot: int) -> None:
    """Record output `slot` as s sliced by `specs` (a Slice op unless it takes everything)."""
    specs = [sp for sp in specs if (sp[1], sp[2], sp[3]) != (0, s.shape[sp[0]], 1)]
    shape = list(s.shape)
    for ax, start, end, step in specs:
        shape[ax] = len(range(start, end, step))
    _check_shape(lw, node, slot, tuple(shape))
    if not specs:
        lw.sym[node.outputs[slot]] = s
        return
    attrs = {k: [sp[i] for sp in specs] for i, k in enumerate(("axes", "starts", "ends", "steps"))}
    t = lw.emit("Slice", [s.t], node.outputs[slot], attrs, tuple(shape))
    a, b = _view_arrays(s)
    for ax, start, end, step in specs:
        sl = (slice(None),) * ax + (slice(start, None if end < 0 else end, step),)
        a = a if a.shape[ax] == 1 else a[sl]
        b = b if b.shape[ax] == 1 else b[sl]
    lw.put(node, t, compact(a), compact(b), s.layer, slot)


@rule("Slice")
def slice_(lw: Lowerer, node: Node) -> None:
    """Slice-10+ (starts, ends, axes, steps as inputs) and Slice-1 (attributes)."""
    s = lw.sym_of(node, 0)
    rank = len(s.shape)
    starts = _ints(lw, node, 1, "starts", "starts")
    ends = _ints(lw, node, 2, "ends", "ends")
    if starts is None or ends is None or len(starts) != len(ends):
        raise lw.unsupported(node, "starts and ends of equal length are needed")
    axes = _ints(lw, node, 3, "axes", "axes")
    axes = list(range(len(starts))) if axes is None else axes
    steps = _ints(lw, node, 4, "", "steps") or [1] * len(starts)
    if not len(axes) == len(starts) == len(steps):
        raise lw.unsupported(node, "axes, starts, ends and steps of different lengths")
    axes = [_axis(lw, node, ax, rank) for ax in axes]
    if len(set(axes)) != len(axes):
        raise lw.unsupported(node, f"axis repeated in {axes}")
    specs = [_normalize(lw, node, ax, s.shape[ax], st, en, k)
             for ax, st, en, k in zip(axes, starts, ends, steps, strict=True)]
    _put_slice(lw, node, s, specs, 0)


@rule("Split")
def split(lw: Lowerer, node: Node) -> None:
    """Split → one Slice per used output; sizes from the `split` input (opset 13+), the
    `split` attribute, `num_outputs` (opset 18: ceil-sized parts, the last smaller) or
    equal parts."""
    s = lw.sym_of(node, 0)
    rank = len(s.shape)
    ax = _axis(lw, node, int(node.attrs.get("axis", 0)), rank)
    dim, n = s.shape[ax], len(node.outputs)
    sizes = _ints(lw, node, 1, "split", "split sizes")
    if sizes is None:
        if "num_outputs" in node.attrs:
            part = -(-dim // int(node.attrs["num_outputs"]))
            sizes = [min(part, dim - i * part) for i in range(n)]
        elif dim % n == 0:
            sizes = [dim // n] * n
        else:
            raise lw.unsupported(node, f"axis {ax} of size {dim} does not split into {n} equal parts")
    if len(sizes) != n or sum(sizes) != dim or min(sizes) < 0:
        raise lw.unsupported(node, f"split sizes {sizes} do not cut axis {ax} of size {dim} into {n} outputs")
    off = 0
    for k, size in enumerate(sizes):
        if _used(lw, node.outputs[k]):
            if size == 0:
                raise lw.unsupported(node, f"output {k} is empty")
            _put_slice(lw, node, s, [(ax, off, off + size, 1)], k)
        off += size


@rule("Gather")
def gather(lw: Lowerer, node: Node) -> None:
    """Gather with constant indices (negative ones count from the end) → Gather."""
    s = lw.sym_of(node, 0)
    idx = lw.const(node, 1)
    if idx is None:
        raise lw.unsupported(node, "Gather with indices computed at run time (constant indices only)")
    rank = len(s.shape)
    ax = _axis(lw, node, int(node.attrs.get("axis", 0)), rank)
    dim = s.shape[ax]
    idx = np.asarray(idx).astype(np.int64)
    if idx.size == 0:
        raise lw.unsupported(node, "Gather with no indices")
    if idx.min() < -dim or idx.max() >= dim:
        raise lw.unsupported(node, f"index outside [-{dim}, {dim - 1}] on axis {ax}")
    idx = np.where(idx < 0, idx + dim, idx)
    shape = s.shape[:ax] + idx.shape + s.shape[ax + 1:]
    _check_shape(lw, node, 0, shape)
    if idx.ndim == 1 and np.array_equal(idx, np.arange(dim)):
        lw.sym[node.outputs[0]] = s
        return
    t = lw.emit("Gather", [s.t], node.outputs[0], {"axis": ax, "indices": idx}, shape)
    a, b = _view_arrays(s)
    lw.put(node, t, compact(_take(a, ax, idx)), compact(_take(b, ax, idx)), s.layer)


# --------------------------------------------------------------------------- concat
def _concat_arrays(arrs: list[np.ndarray], sizes: list[int], ax: int) -> np.ndarray:
    """The affine array of the concatenation of tensors with arrays `arrs` (same rank)."""
    rank = arrs[0].ndim
    common = [max(a.shape[d] for a in arrs) for d in range(rank)]
    parts = []
    for a, n in zip(arrs, sizes, strict=True):
        common[ax] = n
        parts.append(np.broadcast_to(a, tuple(common)))
    return compact(np.concatenate(parts, axis=ax))


def _concat_exact(arrs: list[np.ndarray], sizes: list[int], ax: int) -> bool:
    """Concatenating the arrays as they are keeps the view simple: the result varies only
    along axes where some input already varies, or only along the concatenation axis."""
    got = _varying(_concat_arrays(arrs, sizes, ax))
    had = set().union(*(_varying(a) for a in arrs))
    return got <= had or got <= {ax}


@rule("Concat")
def concat(lw: Lowerer, node: Node) -> None:
    """Concat of integer tensors → Concat; the views' a, b are concatenated exactly when
    they agree off the concatenation axis, else the inputs are first put on a common
    scale (hqc.lowering.arith.common_scale)."""
    from hqc.lowering.arith import common_scale

    syms = [lw.sym_of(node, i) for i, t in enumerate(node.inputs) if t]
    rank = len(syms[0].shape)
    if "axis" not in node.attrs:
        raise lw.unsupported(node, "Concat without an axis")
    ax = _axis(lw, node, int(node.attrs["axis"]), rank)
    for s in syms[1:]:
        if len(s.shape) != rank or any(s.shape[d] != syms[0].shape[d] for d in range(rank) if d != ax):
            raise lw.unsupported(node, f"inputs of shapes {[list(x.shape) for x in syms]} do not concatenate "
                                       f"along axis {ax}")
    if len(syms) == 1:
        lw.sym[node.outputs[0]] = syms[0]
        return
    sizes = [s.shape[ax] for s in syms]
    views = [_view_arrays(s) for s in syms]
    if not (_concat_exact([v[0] for v in views], sizes, ax) and _concat_exact([v[1] for v in views], sizes, ax)):
        syms = common_scale(lw, node, syms, ax)
        views = [_view_arrays(s) for s in syms]
    shape = tuple(sum(sizes) if d == ax else syms[0].shape[d] for d in range(rank))
    _check_shape(lw, node, 0, shape)
    t = lw.emit("Concat", [s.t for s in syms], node.outputs[0], {"axis": ax}, shape)
    a = _concat_arrays([v[0] for v in views], sizes, ax)
    b = _concat_arrays([v[1] for v in views], sizes, ax)
    layers = {s.layer for s in syms}
    lw.put(node, t, a, b, layers.pop() if len(layers) == 1 else None)


# --------------------------------------------------------------------------- padding
PAD_INDEX_MODES = {"edge": "edge", "reflect": "reflect", "wrap": "wrap"}  # ONNX mode → numpy np.pad mode


@rule("Pad")
def pad(lw: Lowerer, node: Node) -> None:
    """Pad-11+ (pads, constant_value, axes as inputs) and Pad-2 (pads, value attributes):
    negative pads crop (a Slice), constant mode → Pad with the integer (v − b)/a,
    edge/reflect/wrap → one Gather per axis."""
    s = lw.sym_of(node, 0)
    rank = len(s.shape)
    mode = node.attrs.get("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    pads = _ints(lw, node, 1, "pads", "pads")
    axes = _ints(lw, node, 3, "", "axes")
    axes = list(range(rank)) if axes is None else [_axis(lw, node, ax, rank) for ax in axes]
    if pads is None or len(pads) != 2 * len(axes) or len(set(axes)) != len(axes):
        raise lw.unsupported(node, f"pads {pads} do not give a begin and an end for each of the axes {axes}")
    begins, ends = [0] * rank, [0] * rank
    for i, ax in enumerate(axes):
        begins[ax], ends[ax] = pads[i], pads[i + len(axes)]
    crop = [(ax, max(0, -begins[ax]), s.shape[ax] + min(0, ends[ax]), 1)
            for ax in range(rank) if begins[ax] < 0 or ends[ax] < 0]
    # crop first, then pad: the same as ONNX's pad-then-crop while some data remains on
    # each axis (an edge is the data's own); reflect and wrap would mirror other elements
    for ax, start, end, _ in crop:
        if end <= start:
            raise lw.unsupported(node, f"negative pads remove every element of axis {ax} (the output would "
                                       "hold only padding)")
    if crop and mode in ("reflect", "wrap"):
        raise lw.unsupported(node, f"negative pads in {mode} mode")
    begins, ends = [max(0, p) for p in begins], [max(0, p) for p in ends]
    if crop:
        s = _crop(lw, node, s, crop)
    shape = tuple(d + p + q for d, p, q in zip(s.shape, begins, ends, strict=True))
    _check_shape(lw, node, 0, shape)
    if not any(begins + ends):
        lw.sym[node.outputs[0]] = s
        return
    if mode == "constant":
        _pad_constant(lw, node, s, begins, ends, shape)
    elif mode in PAD_INDEX_MODES:
        _pad_by_gather(lw, node, s, begins, ends, mode)
    else:
        raise lw.unsupported(node, f"Pad mode {mode!r} (constant, edge, reflect and wrap are supported)")


def _crop(lw: Lowerer, node: Node, s: Sym, crop: list[SliceSpec]) -> Sym:
    shape = list(s.shape)
    for ax, start, end, _ in crop:
        shape[ax] = end - start
    attrs = {k: [sp[i] for sp in crop] for i, k in enumerate(("axes", "starts", "ends", "steps"))}
    t = lw.emit("Slice", [s.t], node.outputs[0] + "_crop", attrs, tuple(shape))
    a, b = _view_arrays(s)
    for ax, start, end, _ in crop:
        a = a if a.shape[ax] == 1 else a.take(range(start, end), axis=ax)
        b = b if b.shape[ax] == 1 else b.take(range(start, end), axis=ax)
    lo, hi = lw.bound(t)
    return Sym(t, compact(a), compact(b), tuple(shape), lo, hi, s.layer)


def _pad_value(lw: Lowerer, node: Node) -> float:
    if len(node.inputs) > 2 and node.inputs[2]:
        c = lw.const(node, 2)
        if c is None:
            raise lw.unsupported(node, "a pad value computed at run time")
        return float(np.asarray(c).reshape(-1)[0])
    return float(node.attrs.get("value", 0.0))


def _pad_constant(lw: Lowerer, node: Node, s: Sym, begins: list[int], ends: list[int],
                  shape: tuple[int, ...]) -> None:
    """Padded elements: a·p + b = v with one integer p; a, b edge-padded where they vary."""
    v = _pad_value(lw, node)
    a, b = _view_arrays(s)
    rank = len(s.shape)
    width = [(begins[d], ends[d]) for d in range(rank)]
    a = np.pad(a, [w if a.shape[d] > 1 else (0, 0) for d, w in enumerate(width)], mode="edge")
    b = np.pad(b, [w if b.shape[d] > 1 else (0, 0) for d, w in enumerate(width)], mode="edge")
    p = _pad_integer(lw, node, v, a, b, s.shape, begins, ends, shape)
    t = lw.emit("Pad", [s.t], node.outputs[0], {"pads": begins + ends, "value": p}, shape)
    lw.put(node, t, compact(a), compact(b), s.layer)


def _pad_integer(lw: Lowerer, node: Node, v: float, a: np.ndarray, b: np.ndarray, in_shape: tuple[int, ...],
                 begins: list[int], ends: list[int], shape: tuple[int, ...]) -> int:
    """The one integer p with a·p + b = v at every padded element (a, b the padded arrays)."""
    rank = len(shape)
    padded = [bool(begins[d] or ends[d]) for d in range(rank)]
    # the padded region over the axes that matter: the padded ones and those where a, b vary
    grid = tuple(shape[d] if padded[d] else max(a.shape[d], b.shape[d]) for d in range(rank))
    inside = np.ones(grid, bool)
    for d in range(rank):
        if padded[d]:
            keep = np.zeros(shape[d], bool)
            keep[begins[d]: begins[d] + in_shape[d]] = True
            inside &= keep.reshape((1,) * d + (-1,) + (1,) * (rank - d - 1))
    pairs = np.unique(np.stack([np.broadcast_to(a, grid)[~inside], np.broadcast_to(b, grid)[~inside]], 1), axis=0)
    vf = frac(v)
    found: set[Fraction] = set()
    for av, bv in pairs:
        if av == 0:
            if frac(bv) != vf:
                raise lw.unsupported(node, f"the pad value {v:g} differs from the constant {bv:g} of a channel "
                                           "with scale 0")
            continue
        found.add((vf - frac(bv)) / frac(av))
    bad = sorted(q for q in found if q.denominator != 1)
    if bad:
        raise lw.unsupported(node, f"the pad value {v:g} is not on the integer grid of its input: (v − b)/a = "
                                   f"{float(bad[0]):g} is not an integer")
    if len(found) > 1:
        p0, p1 = sorted(found)[:2]
        raise lw.unsupported(node, f"the pad value {v:g} is the integer {int(p0)} in some padded elements and "
                                   f"{int(p1)} in others (their scales differ); one integer pad value is needed")
    return int(found.pop()) if found else 0


def _pad_by_gather(lw: Lowerer, node: Node, s: Sym, begins: list[int], ends: list[int], mode: str) -> None:
    a, b = _view_arrays(s)
    t = s.t
    shape = list(s.shape)
    last = max(d for d in range(len(shape)) if begins[d] or ends[d])
    for d in range(len(shape)):
        if not (begins[d] or ends[d]):
            continue
        if mode == "reflect" and max(begins[d], ends[d]) >= shape[d]:
            raise lw.unsupported(node, f"reflect padding of {max(begins[d], ends[d])} on axis {d} of size {shape[d]}")
        idx = np.pad(np.arange(shape[d]), (begins[d], ends[d]), mode=PAD_INDEX_MODES[mode])
        shape[d] = len(idx)
        base = node.outputs[0] if d == last else node.outputs[0] + f"_pad{d}"
        t = lw.emit("Gather", [t], base, {"axis": d, "indices": idx.astype(np.int64)}, tuple(shape))
        a, b = _take(a, d, idx), _take(b, d, idx)
    lw.put(node, t, compact(a), compact(b), s.layer)


# --------------------------------------------------------------------------- broadcasting
def _raise_rank(lw: Lowerer, node: Node, s: Sym, rank: int) -> tuple[str, np.ndarray, np.ndarray]:
    """X with leading size-1 axes up to `rank` (a Reshape, an alias in C), and its a, b."""
    a, b = _view_arrays(s)
    k = rank - len(s.shape)
    if k == 0:
        return s.t, a, b
    shape = (1,) * k + tuple(s.shape)
    t = lw.emit("Reshape", [s.t], node.outputs[0] + "_rank", {"shape": list(shape)}, shape)
    return t, a.reshape((1,) * k + a.shape), b.reshape((1,) * k + b.shape)


@rule("Expand")
def expand(lw: Lowerer, node: Node) -> None:
    """Expand (numpy broadcasting of X to the shape) → [Reshape] → Expand; a, b unchanged
    (they are constant along every axis of size 1 of X)."""
    s = lw.sym_of(node, 0)
    target = _ints(lw, node, 1, "", "shape")
    if target is None:
        raise lw.unsupported(node, "Expand without a shape")
    try:
        shape = tuple(int(d) for d in np.broadcast_shapes(s.shape, tuple(target)))
    except ValueError:
        raise lw.unsupported(node, f"shape {list(s.shape)} does not broadcast to {target}") from None
    _check_shape(lw, node, 0, shape)
    t, a, b = _raise_rank(lw, node, s, len(shape))
    if shape != tuple(lw.out.shape(t)):
        t = lw.emit("Expand", [t], node.outputs[0], {"shape": list(shape)}, shape)
    lw.put(node, t, compact(a), compact(b), s.layer)


@rule("Tile")
def tile(lw: Lowerer, node: Node) -> None:
    """Tile(repeats r) = Reshape (each tiled axis d of size n > 1 → (1, n)) → Expand
    ((r, n)) → Reshape (r·n); a, b tiled along the axes where they vary."""
    s = lw.sym_of(node, 0)
    reps = _ints(lw, node, 1, "", "repeats")
    rank = len(s.shape)
    if reps is None or len(reps) != rank or min(reps) < 1:
        raise lw.unsupported(node, f"repeats {reps} for an input of rank {rank} (one repeat ≥ 1 per axis)")
    shape = tuple(n * r for n, r in zip(s.shape, reps, strict=True))
    _check_shape(lw, node, 0, shape)
    a, b = _view_arrays(s)
    if shape == s.shape:
        lw.sym[node.outputs[0]] = s
        return
    split, wide = [], []
    for n, r in zip(s.shape, reps, strict=True):
        if r > 1 and n > 1:
            split += [1, n]
            wide += [r, n]
        else:
            split.append(n)
            wide.append(n * r)
    t = s.t
    if tuple(split) != s.shape:
        t = lw.emit("Reshape", [t], node.outputs[0] + "_split", {"shape": split}, tuple(split))
    t = lw.emit("Expand", [t], node.outputs[0] + ("_wide" if tuple(wide) != shape else ""),
                {"shape": wide}, tuple(wide))
    if tuple(wide) != shape:
        t = lw.emit("Reshape", [t], node.outputs[0], {"shape": list(shape)}, shape)
    a = np.tile(a, [r if a.shape[d] > 1 else 1 for d, r in enumerate(reps)])
    b = np.tile(b, [r if b.shape[d] > 1 else 1 for d, r in enumerate(reps)])
    lw.put(node, t, compact(a), compact(b), s.layer)
