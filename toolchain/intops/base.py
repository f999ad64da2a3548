"""The contract of one integer op: attributes, bounds, numpy semantics, ONNX form, C.

An op of the lowered IR (domain `ai.hqc.int`) is one `IntOp` subclass, registered once
with `@register`. Everything a back end needs sits in that one class:

    attrs     name → kind ("int", "ints", "str", "array"; a trailing "?" = optional),
              checked by `check` (plus the op's own `validate`)
    bounds    interval arithmetic: the integer range of every output from the ranges of
              the inputs — the range covers every partial sum the kernels form (each term's
              interval holds 0), so a C type chosen from it never overflows
    ref       the numpy semantics on int64 arrays with a leading group axis (G, *shape);
              this *defines* the op, and the two other back ends must equal it bit for bit
    onnx      its form in model.int.onnx (standard ONNX that onnxruntime runs)
    c         its C99 kernel

So adding an op is one class; the numpy reference (`hqc.intref`), the ONNX writer
(`hqc.int_onnx`) and the C emitter (`hqc.ckernels`) only dispatch through the registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hqc.errors import ModelError
from hqc.ir import Graph, Node

if TYPE_CHECKING:
    from hqc.intops.cgen import CEmitter
    from hqc.intops.onnxgen import OnnxBuilder

INT_DOMAIN = "ai.hqc.int"
INT64_SAFE = 2**62  # every tensor bound stays below this (int64 with headroom)

Interval = tuple[int, int]

_KINDS = {
    "int": lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool),
    "ints": lambda v: isinstance(v, (list, tuple, np.ndarray)) and all(isinstance(x, (int, np.integer)) for x in np.asarray(v).reshape(-1).tolist()),
    "str": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, np.ndarray),
}


class IntOp(ABC):
    """One op of the integer dialect; subclasses set `name`, `attrs`, `arity` and
    implement `bounds`, `ref`, `onnx` and `c`."""

    name: ClassVar[str] = ""
    attrs: ClassVar[dict[str, str]] = {}
    arity: ClassVar[tuple[int, int | None]] = (1, 1)  # min and max inputs (None: any)
    outputs: ClassVar[tuple[int, int]] = (1, 1)  # min and max outputs

    # ------------------------------------------------------------------ checks
    def check(self, node: Node) -> None:
        """Raise ModelError when the node's inputs or attributes break the op's contract."""
        lo, hi = self.arity
        n = len(node.inputs)
        if n < lo or (hi is not None and n > hi):
            raise self.error(node, f"{n} inputs (expected {lo}..{'' if hi is None else hi})")
        olo, ohi = self.outputs
        if not olo <= len(node.outputs) <= ohi:
            raise self.error(node, f"{len(node.outputs)} outputs (expected {olo}..{ohi})")
        for key, kind in self.attrs.items():
            optional = kind.endswith("?")
            kind = kind.rstrip("?")
            if key not in node.attrs:
                if not optional:
                    raise self.error(node, f"attribute {key!r} is missing")
                continue
            if not _KINDS[kind](node.attrs[key]):
                raise self.error(node, f"attribute {key!r} is not of kind {kind}")
        unknown = sorted(set(node.attrs) - set(self.attrs))
        if unknown:
            raise self.error(node, f"unknown attribute {unknown[0]!r}")
        self.validate(node)

    def validate(self, node: Node) -> None:
        """Op-specific checks beyond the attribute kinds (default: none)."""
        return None

    def error(self, node: Node, why: str) -> ModelError:
        return ModelError(f"{INT_DOMAIN}::{self.name} node {node.name!r}: {why}")

    # ------------------------------------------------------------------ semantics
    @abstractmethod
    def bounds(self, node: Node, ins: list[Interval], g: Graph) -> list[Interval]:
        """Integer range of each output, from the input ranges."""

    @abstractmethod
    def ref(self, node: Node, xs: list[np.ndarray], engine: str) -> np.ndarray | tuple[np.ndarray, ...]:
        """numpy semantics: int64 inputs (G, *shape) → output(s) (G, *shape)."""

    @abstractmethod
    def onnx(self, b: OnnxBuilder, g: Graph, node: Node) -> None:
        """Append the op's standard-ONNX form to `b`, producing node.outputs."""

    @abstractmethod
    def c(self, e: CEmitter, node: Node) -> None:
        """Emit the op's C kernel into `e`."""


OPS: dict[str, IntOp] = {}


def register(cls: type[IntOp]) -> type[IntOp]:
    """Class decorator: add one instance of the op to the registry (names are unique)."""
    if not cls.name or cls.name in OPS:
        raise RuntimeError(f"integer op {cls.name!r} registered twice or without a name")
    OPS[cls.name] = cls()
    return cls


def op_of(node: Node) -> IntOp:
    """The registered op of a lowered node; ModelError for anything else."""
    op = OPS.get(node.op) if node.domain == INT_DOMAIN else None
    if op is None:
        raise ModelError(f"unknown integer op {node.domain}::{node.op} (node {node.name!r})")
    return op


def prod(xs: Any) -> int:
    n = 1
    for v in xs:
        n *= int(v)
    return n


def hull(*ivs: Interval) -> Interval:
    """Smallest interval holding all of `ivs`."""
    return min(i[0] for i in ivs), max(i[1] for i in ivs)


def with_zero(iv: Interval) -> Interval:
    """The interval widened to hold 0 (a partial sum may be any prefix of the terms)."""
    return min(iv[0], 0), max(iv[1], 0)


def times(iv: Interval, c: int) -> Interval:
    """{x·c : x ∈ iv}."""
    a, b = iv[0] * c, iv[1] * c
    return min(a, b), max(a, b)


def mul(x: Interval, y: Interval) -> Interval:
    """{a·b : a ∈ x, b ∈ y}."""
    c = [x[0] * y[0], x[0] * y[1], x[1] * y[0], x[1] * y[1]]
    return min(c), max(c)


def weighted_sum_bounds(w: np.ndarray, x: Interval) -> Interval:
    """Range of Σ_i w[o, i]·x_i over every output row o and every prefix of the sum, x_i ∈ x.

    w: integer weights (O, ...) — each row's positive and negative parts reach their
    extremes at the ends of the (0-widened) input interval."""
    flat = np.asarray(w).reshape(np.asarray(w).shape[0], -1).astype(object)
    xlo, xhi = with_zero(x)
    pos = np.where(flat > 0, flat, 0)
    neg = np.where(flat < 0, flat, 0)
    hi_c = (pos * xhi + neg * xlo).sum(axis=1)
    lo_c = (pos * xlo + neg * xhi).sum(axis=1)
    return int(min(lo_c)), int(max(hi_c))


def propagate_bounds(g: Graph, input_range: Interval) -> dict[str, Interval]:
    """Every tensor's integer range, recomputed from the declared input range by each op's
    interval arithmetic in topological order (independently of what the lowering stored)."""
    out: dict[str, Interval] = {g.inputs[0]: (int(input_range[0]), int(input_range[1]))}
    for node in g.nodes():
        op = op_of(node)
        ivs = op.bounds(node, [out[t] for t in node.inputs], g)
        for t, iv in zip(node.outputs, ivs, strict=False):
            out[t] = (int(iv[0]), int(iv[1]))
    return out


def check_lowered(g: Graph) -> None:
    """Check a lowered graph against the dialect: every node is a registered op whose
    inputs and attributes fit its declaration, and every stored bound equals the bound the
    ops prove from the input range (so the C types chosen from them are safe).
    Raises ModelError naming the first node or tensor that does not."""
    bounds = g.meta.get("bounds")
    if not bounds or g.inputs[0] not in bounds:
        raise ModelError("lowered graph without integer bounds")
    for node in g.nodes():
        op_of(node).check(node)
    proved = propagate_bounds(g, bounds[g.inputs[0]])
    for t, iv in proved.items():
        if tuple(bounds.get(t, ())) != iv:
            raise ModelError(f"tensor {t!r}: stored bound {bounds.get(t)} differs from the proven {list(iv)}")
        if max(abs(iv[0]), abs(iv[1])) >= INT64_SAFE:
            raise ModelError(f"tensor {t!r}: proven range {iv[0]}..{iv[1]} exceeds int64")
