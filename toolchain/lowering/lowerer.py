"""The lowering driver: walks the frontend IR in order and applies one rule per op.

A rule is a function `rule(lw, node)` registered for one or more frontend ops with
`@rule("Op", ...)` (hqc.lowering.rules) in a module of its family (tensor, arith, layers, neurons); it
reads the affine views of the node's inputs (`lw.sym_of`), emits integer ops
(`lw.emit`, which checks each op against its declaration in hqc.intops and bounds its
output by interval arithmetic) and records the affine view of the node's output
(`lw.sym[...]`). A frontend op without a rule, or a rule that rejects the node, is a
ModelError naming the node, its op and why — never a float path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hqc.choices import QuantChoice
from hqc.errors import ModelError, PlanError
from hqc.intops import INT64_SAFE, INT_DOMAIN, OPS
from hqc.ir import Graph, Node, Value
from hqc.layers import LayerInfo
from hqc.layout import per_step_output
from hqc.lowering.affine import Sym, arr
from hqc.lowering.neurons import fold_logits
from hqc.lowering.rules import rules
from hqc.lowering.weights import LayerCodes, layer_codes, layer_weight, learned_scale

log = logging.getLogger(__name__)

@dataclass
class LoweredModel:
    """The result of lowering: the integer IR and what the reports need."""

    graph: Graph
    layers: list[dict[str, Any]]
    neurons: list[dict[str, Any]]
    logits: dict[str, Any]
    input: dict[str, Any]
    tensor_map: dict[str, str] = field(default_factory=dict)  # frontend LIF output → lowered


class Lowerer:
    """State of one lowering run (see the module docstring)."""

    def __init__(self, graph: Graph, layers: list[LayerInfo], plan: dict[str, QuantChoice],
                 input_range: tuple[int, int], resolution_bits: int, logit_bits: int) -> None:
        self.src = graph
        self.layers = layers
        self.plan = plan
        self.input_range = (int(input_range[0]), int(input_range[1]))
        self.resolution_bits = int(resolution_bits)
        self.logit_bits = int(logit_bits)
        self.by_node: dict[str, LayerInfo] = {n: layer for layer in layers for n in layer.nodes}
        self.out = Graph(name=(graph.name or "model") + ".int", opset=17)
        self.out.meta["bounds"] = {}
        self.sym: dict[str, Sym] = {}
        self.codes: dict[str, LayerCodes] = {}
        self.layer_recs: dict[str, dict[str, Any]] = {}
        self.neuron_recs: list[dict[str, Any]] = []
        self.tensor_map: dict[str, str] = {}
        missing = [layer.name for layer in layers if layer.name not in plan]
        if missing:
            raise PlanError(f"plan has no choice for layers: {', '.join(missing)}")

    # ---------------------------------------------------------------- helpers for rules
    def shape(self, t: str) -> tuple[int, ...]:
        s = self.src.shape(t)
        if s is None or any(not isinstance(d, int) for d in s):
            p = self.src.producer(t)
            raise ModelError(f"tensor {t!r} (node {p.name if p else '?'!r}) has no static shape")
        return tuple(int(d) for d in s)

    def bound(self, t: str) -> tuple[int, int]:
        return self.out.meta["bounds"][t]

    def emit(self, op: str, inputs: list[str], base: str | list[str], attrs: dict[str, Any],
             shape: tuple[int, ...], name: str | None = None) -> Any:
        """Add one integer op; its output bounds come from the op's interval arithmetic.
        `base`: the output's name base (returns its tensor), or a list of bases, one per
        output of a multi-output op (returns the list of tensors; all of `shape`)."""
        bases = [base] if isinstance(base, str) else list(base)
        outs = [self.out.fresh(b) for b in bases]
        node = self.out.add_node(op, inputs, outs, attrs, name=name or outs[0], domain=INT_DOMAIN)
        for t in outs:
            self.out.values[t] = Value(tuple(shape), "int64")
        iop = OPS[op]
        iop.check(node)
        ivs = iop.bounds(node, [self.bound(i) for i in inputs], self.out)
        for t, b, (lo, hi) in zip(outs, bases, ivs, strict=True):
            if max(abs(lo), abs(hi)) >= INT64_SAFE:
                raise ModelError(f"integer range of {b!r} exceeds int64 ({lo}..{hi})")
            self.out.meta["bounds"][t] = (int(lo), int(hi))
        return outs[0] if isinstance(base, str) else outs

    def sym_of(self, node: Node, slot: int) -> Sym:
        t = node.inputs[slot]
        if t not in self.sym:
            if self.src.is_const(t):
                raise ModelError(f"node {node.name!r} ({node.op}): constant operand in slot {slot} is not supported here")
            raise ModelError(f"node {node.name!r} ({node.op}): input {t!r} has no integer form")
        return self.sym[t]

    def put(self, node: Node, t: str, a: np.ndarray, b: np.ndarray, layer: str | None = None, slot: int = 0) -> Sym:
        """Record output `slot` of the frontend node as the view a·t + b (bounds of t)."""
        lo, hi = self.bound(t)
        s = Sym(t, a, b, tuple(self.out.shape(t)), lo, hi, layer)
        self.sym[node.outputs[slot]] = s
        return s

    def const(self, node: Node, slot: int) -> np.ndarray | None:
        if slot >= len(node.inputs) or not node.inputs[slot]:
            return None
        return self.src.const(node.inputs[slot])

    def unsupported(self, node: Node, why: str) -> ModelError:
        return ModelError(f"lower-int: node {node.name!r} ({node.op}): {why}")

    def layer_of(self, node: Node) -> LayerInfo | None:
        return self.by_node.get(node.name)

    def codes_of(self, layer: LayerInfo, input_bound: int) -> LayerCodes:
        if layer.name not in self.codes:
            w = layer_weight(self.src, layer)
            choice = self.plan[layer.name]  # learned scales (graph.meta) when given, else recomputed
            self.codes[layer.name] = layer_codes(w, choice, input_bound, learned_scale(self.src, layer, choice))
        return self.codes[layer.name]

    def _time_mean(self, s: Sym, name: str) -> Sym:
        """The mean over axis 0 (time) of a per-step output: ReduceSum, a → a / T."""
        if s.a.shape[0] != 1 or s.b.shape[0] != 1:
            raise ModelError(f"graph output {name!r}: its scale varies over time")
        T = s.shape[0]
        t = self.emit("ReduceSum", [s.t], name + "_sum_t", {"axes": [0], "keepdims": 0}, s.shape[1:])
        lo, hi = self.bound(t)
        return Sym(t, s.a[0] / T, s.b[0], s.shape[1:], lo, hi, s.layer)

    # ---------------------------------------------------------------- driver
    def run(self) -> LoweredModel:
        table = rules()
        g = self.src
        if len(g.inputs) != 1:
            raise ModelError(f"the model has {len(g.inputs)} inputs; lowering supports one")
        x = g.inputs[0]
        shape = self.shape(x)
        self.out.inputs = [x]
        self.out.values[x] = Value(shape, "int64")
        lo, hi = self.input_range
        self.out.meta["bounds"][x] = (lo, hi)
        rank = len(shape)
        self.sym[x] = Sym(x, arr(1.0, rank), arr(0.0, rank), shape, lo, hi)
        for node in g.nodes():
            op = "LIF" if node.op == "LIF" and node.domain else node.op
            handler = table.get(op) if (not node.domain or op == "LIF") else None
            if handler is None:
                raise self.unsupported(node, "operator not supported by the integer lowering")
            handler(self, node)
        outs = []
        logits: dict[str, Any] = {}
        for t in g.outputs:
            s = self.sym.get(t)
            if s is None:
                raise ModelError(f"graph output {t!r} has no integer form")
            per_step = per_step_output(g, t)
            if per_step:  # per-step logits (T, B, K): the class scores are their mean over T
                s = self._time_mean(s, t)
            attrs, logits = fold_logits(s, self.logit_bits, t)
            logits["mean_over_time"] = per_step
            o = self.emit("Requant", [s.t], "logits", attrs, s.shape)
            logits["tensor"] = o
            outs.append(o)
        self.out.outputs = outs
        for layer in self.layers:
            if layer.name not in self.layer_recs:
                raise ModelError(f"layer {layer.name!r} was not lowered (its nodes are not on the path to the output)")
        recs = [self.layer_recs[layer.name] for layer in self.layers]
        self.out.meta["lowered"] = True
        inp = {"name": x, "shape": list(shape), "dtype": "int64", "range": [lo, hi]}
        return LoweredModel(self.out, recs, self.neuron_recs, logits, inp, self.tensor_map)
