"""The hqc IR: a dataflow graph of ops over named tensors, on a networkx MultiDiGraph.

A node is an op (`op`, `domain`, `attrs`, ordered `inputs` and `outputs` tensor names).
An edge producer → consumer exists once per consuming input slot (key = slot index), so
`Mul(x, x)` keeps both of its edges. Constants (initializers, folded values) live in
`Graph.constants` as numpy arrays and are not nodes; graph inputs are not nodes either.
Every tensor has a `Value` record (shape, dtype) when known.

Node order comes only from `Graph.topo_order()`, a deterministic topological sort
(ties broken by node id), so everything derived from the IR is byte-stable.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from hqc.errors import ModelError


@dataclass
class Value:
    """Static type of a tensor: shape (None for an unknown dim or rank) and numpy dtype."""

    shape: tuple[int | None, ...] | None = None
    dtype: str | None = None

    @property
    def static(self) -> bool:
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)


@dataclass
class Node:
    """One op. `attrs` holds python scalars, lists, strings and numpy arrays."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    domain: str = ""
    meta: dict[str, str] = field(default_factory=dict)


class Graph:
    """A model: nodes, tensors, constants, graph inputs/outputs and the opset."""

    def __init__(self, name: str = "model", opset: int = 17) -> None:
        self.name = name
        self.opset = opset
        self.g = nx.MultiDiGraph()
        self.values: dict[str, Value] = {}
        self.constants: dict[str, np.ndarray] = {}
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.meta: dict[str, Any] = {}
        self._producer: dict[str, str] = {}
        self._consumers: dict[str, list[str]] = {}
        self._uid = 0
        self._topo: list[str] | None = None

    # ----------------------------------------------------------------- queries
    def node(self, nid: str) -> Node:
        return self.g.nodes[nid]["node"]

    def nodes(self) -> Iterator[Node]:
        """Nodes in deterministic topological order."""
        for nid in self.topo_order():
            yield self.node(nid)

    def __len__(self) -> int:
        return self.g.number_of_nodes()

    def topo_order(self) -> list[str]:
        """Deterministic topological order (ties by node id); cached until the next edit."""
        if self._topo is None:
            try:
                self._topo = list(nx.lexicographical_topological_sort(self.g))
            except nx.NetworkXUnfeasible as exc:
                raise ModelError("graph has a cycle") from exc
        return list(self._topo)

    def producer(self, tensor: str) -> Node | None:
        nid = self._producer.get(tensor)
        return None if nid is None else self.node(nid)

    def consumers(self, tensor: str) -> list[Node]:
        return [self.node(n) for n in dict.fromkeys(self._consumers.get(tensor, []))]

    def is_const(self, tensor: str) -> bool:
        return tensor in self.constants

    def const(self, tensor: str) -> np.ndarray | None:
        return self.constants.get(tensor)

    def shape(self, tensor: str) -> tuple[int | None, ...] | None:
        if tensor in self.constants:
            return tuple(self.constants[tensor].shape)
        v = self.values.get(tensor)
        return None if v is None else v.shape

    def dtype(self, tensor: str) -> str | None:
        if tensor in self.constants:
            return str(self.constants[tensor].dtype)
        v = self.values.get(tensor)
        return None if v is None else v.dtype

    def ops(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self.nodes():
            counts[n.op] = counts.get(n.op, 0) + 1
        return dict(sorted(counts.items()))

    # ----------------------------------------------------------------- mutation
    def fresh(self, base: str) -> str:
        """A tensor/node name not yet used in the graph, derived from `base`."""
        while True:
            self._uid += 1
            name = f"{base}__{self._uid}"
            if (
                name not in self.values
                and name not in self.constants
                and name not in self.g
                and name not in self._producer
            ):
                return name

    def add_const(self, name: str, array: np.ndarray) -> str:
        self.constants[name] = np.asarray(array)
        self.values.pop(name, None)
        return name

    def add_node(
        self,
        op: str,
        inputs: Iterable[str],
        outputs: Iterable[str],
        attrs: dict[str, Any] | None = None,
        name: str | None = None,
        domain: str = "",
        meta: dict[str, str] | None = None,
    ) -> Node:
        self._topo = None
        nid = name if name and name not in self.g else self.fresh(name or op)
        node = Node(nid, op, list(inputs), list(outputs), dict(attrs or {}), domain, dict(meta or {}))
        self.g.add_node(nid, node=node)
        for t in node.outputs:
            if t and t in self._producer:
                raise ModelError(f"tensor {t!r} has two producers: {self._producer[t]!r} and {nid!r}")
            if t:
                self._producer[t] = nid
                self.values.setdefault(t, Value())
                for c in self._consumers.get(t, []):
                    self._link_consumer(c)
        self._link_consumer(nid)
        return node

    def _link_consumer(self, nid: str) -> None:
        node = self.node(nid)
        for u, v, k in list(self.g.in_edges(nid, keys=True)):
            self.g.remove_edge(u, v, k)
        for slot, t in enumerate(node.inputs):
            if not t:
                continue
            lst = self._consumers.setdefault(t, [])
            if nid not in lst:
                lst.append(nid)
            src = self._producer.get(t)
            if src is not None:
                self.g.add_edge(src, nid, key=slot, tensor=t)

    def remove_node(self, nid: str) -> None:
        self._topo = None
        node = self.node(nid)
        for t in node.inputs:
            lst = self._consumers.get(t)
            if lst and nid in lst:
                lst.remove(nid)
        for t in node.outputs:
            if self._producer.get(t) == nid:
                del self._producer[t]
        self.g.remove_node(nid)

    def set_inputs(self, nid: str, inputs: list[str]) -> None:
        self._topo = None
        node = self.node(nid)
        for t in node.inputs:
            lst = self._consumers.get(t)
            if lst and nid in lst:
                lst.remove(nid)
        node.inputs = list(inputs)
        self._link_consumer(nid)

    def replace_uses(self, old: str, new: str) -> None:
        """Every consumer of tensor `old` (and the graph outputs) reads `new` instead."""
        for c in list(dict.fromkeys(self._consumers.get(old, []))):
            n = self.node(c)
            self.set_inputs(c, [new if t == old else t for t in n.inputs])
        self.outputs = [new if t == old else t for t in self.outputs]

    def remove_dead(self) -> int:
        """Drop nodes whose outputs nobody reads, and unused constants; returns nodes removed."""
        live: set[str] = set()
        stack = [self._producer[t] for t in self.outputs if t in self._producer]
        while stack:
            nid = stack.pop()
            if nid in live:
                continue
            live.add(nid)
            for t in self.node(nid).inputs:
                p = self._producer.get(t)
                if p is not None and p not in live:
                    stack.append(p)
        dead = [n for n in self.g.nodes if n not in live]
        for n in dead:
            self.remove_node(n)
        used = {t for n in self.g.nodes for t in self.node(n).inputs} | set(self.outputs)
        for c in [c for c in self.constants if c not in used]:
            del self.constants[c]
        for v in [v for v in self.values if v not in used and v not in self._producer and v not in self.inputs]:
            del self.values[v]
        return len(dead)

    def copy(self) -> Graph:
        return copy.deepcopy(self)


def _collapse(parts: list[str]) -> str | None:
    """['blocks', 'blocks.0', 'attn'] → 'blocks.0.attn' (scopes may repeat the parent)."""
    path: list[str] = []
    for part in parts:
        if not part:
            continue
        if path and part.startswith(path[-1] + "."):
            path[-1] = part
        else:
            path.append(part)
    return ".".join(path) or None


def module_path(node: Node) -> str | None:
    """The torch module that produced a node, from exporter metadata or node names.

    dynamo: metadata `pkg.torch.onnx.name_scopes` = "['', 'blocks', 'blocks.0', 'op']";
    TorchScript: node names "/blocks/blocks.0/Op". Returns "blocks.0" or None.
    """
    scope = node.meta.get("pkg.torch.onnx.name_scopes")
    if scope:
        try:
            parts = ast.literal_eval(scope)
        except (ValueError, SyntaxError):
            parts = None
        if isinstance(parts, list) and len(parts) > 2:
            return _collapse([str(p) for p in parts[1:-1]])
    if node.name.startswith("/") and node.name.count("/") >= 2:
        return _collapse(node.name.strip("/").split("/")[:-1])
    return None


def verify(graph: Graph) -> list[str]:
    """Lint the IR; returns the list of problems (empty when the graph is well formed).

    Checks: acyclic; every node input is a constant, a graph input or produced by a node;
    every graph output is produced or constant; edges mirror the inputs slot by slot;
    no tensor produced twice.
    """
    problems: list[str] = []
    if not nx.is_directed_acyclic_graph(graph.g):
        problems.append("graph has a cycle")
    known = set(graph.constants) | set(graph.inputs)
    produced: dict[str, str] = {}
    for nid in graph.g.nodes:
        node = graph.node(nid)
        if node.name != nid:
            problems.append(f"node {nid!r} carries name {node.name!r}")
        for t in node.outputs:
            if not t:
                continue
            if t in produced:
                problems.append(f"tensor {t!r} produced by {produced[t]!r} and {nid!r}")
            produced[t] = nid
    for nid in graph.g.nodes:
        node = graph.node(nid)
        expected = []
        for slot, t in enumerate(node.inputs):
            if not t:
                continue
            if t not in known and t not in produced:
                problems.append(f"node {nid!r} reads undefined tensor {t!r}")
            if t in produced:
                expected.append((produced[t], slot))
        actual = sorted((u, k) for u, _, k in graph.g.in_edges(nid, keys=True))
        if sorted(expected) != actual:
            problems.append(f"node {nid!r}: edges {actual} do not mirror inputs {sorted(expected)}")
    for t in graph.outputs:
        if t not in produced and t not in known:
            problems.append(f"graph output {t!r} is not produced")
    return problems


def check(graph: Graph, where: str = "") -> None:
    """Raise (internal invariant) when `verify` finds problems."""
    problems = verify(graph)
    if problems:
        head = f"IR invalid{' after ' + where if where else ''}: "
        raise ModelError(head + "; ".join(problems[:5]))
