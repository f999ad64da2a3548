"""annotate-layers (analysis): graph → the weight layers, as `LayerInfo` records.

A weight layer is a Conv (1-D/2-D), Gemm, or MatMul with a constant operand. Nodes that
share one weight constant (snnTorch runs a layer once per time step) are one layer.

name:   `<module>` from an initializer named `<module>.weight`; else the torch module
        recorded by the exporter (TorchScript node name, dynamo name scopes); else the
        initializer name. Duplicates get a `#k` suffix.
group:  head      — no LIF downstream of the layer (its output reaches the logits as is);
        by name   — first match of: sps/patch/embed/stem/tokenizer/rpe → tokenizer;
                    attn/attention/q_/k_/v_/qkv/proj → attention; mlp/fc1/fc2/ffn → mlp;
        by place  — before the first activation-by-activation MatMul (the attention
                    product) → tokenizer; producing an operand of such a MatMul within a
                    few reshapes → attention; others → mlp when the model has attention,
                    else other.
macs:   per inference of one sample, all time steps: Σ over its nodes of output elements ×
        fan-in, divided by the export batch size.
input:  spikes   — the data input comes (through reshapes, slicing, max-pool) from LIF
                   outputs only;
        integers — sums of spikes (residual Add of spikes/integers, spike×spike MatMul);
        real     — anything else (the model input, BN outputs, means, scaled values).
Never mutates the graph. Registered as the analysis "annotate-layers": callers in the
pipeline read it through `hqc.passes.analysis(graph, "annotate-layers")` (cached).
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np

from hqc.errors import ModelError
from hqc.ir import Graph, Node, module_path
from hqc.layers import LayerInfo
from hqc.layout import detect_layout
from hqc.passes.base import register_analysis

PASSTHROUGH = frozenset(
    {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Slice", "Gather", "Split", "Identity", "MaxPool", "Expand", "Tile"}
)
_RANK = {"spikes": 0, "integers": 1, "real": 2}
_GROUP_WORDS = (
    ("head", re.compile(r"(^|[._/])(head|classifier)([._/]|$)")),
    ("tokenizer", re.compile(r"(sps|patch|embed|stem|tokenizer|rpe)")),
    ("attention", re.compile(r"(attn|attention|(^|[._/])(q|k|v|qkv|proj)(_|[._/]|$))")),
    ("mlp", re.compile(r"(mlp|fc1|fc2|ffn|feed_?forward)")),
)


def _weight_slot(graph: Graph, node: Node) -> int | None:
    if node.op in ("Conv", "Gemm"):
        return 1 if len(node.inputs) > 1 and graph.is_const(node.inputs[1]) else None
    if node.op == "MatMul":
        if graph.is_const(node.inputs[1]) and not graph.is_const(node.inputs[0]):
            return 1
        if graph.is_const(node.inputs[0]) and not graph.is_const(node.inputs[1]):
            return 0
    return None


def value_kinds(graph: Graph):
    """Returns kind(tensor) -> 'spikes' | 'integers' | 'real' (memoized)."""

    @cache
    def kind(t: str) -> str:
        if graph.is_const(t):
            c = graph.const(t)
            return "spikes" if c is not None and np.isin(c, (0, 1)).all() else "real"
        p = graph.producer(t)
        if p is None:
            return "real"
        if p.op == "LIF":
            return "spikes" if t == p.outputs[0] else "real"  # output 1 is the membrane
        if p.op in PASSTHROUGH:
            return kind(p.inputs[0])
        if p.op == "Concat":
            return max((kind(i) for i in p.inputs if i), key=_RANK.__getitem__)
        if p.op in ("Add", "MatMul") and not graph.is_const(p.inputs[0]) and not graph.is_const(p.inputs[1]):
            ks = {kind(p.inputs[0]), kind(p.inputs[1])}
            return "integers" if ks <= {"spikes", "integers"} else "real"
        return "real"

    return kind


def _has_lif_downstream(graph: Graph, node: Node) -> bool:
    seen, stack = set(), [node.name]
    while stack:
        nid = stack.pop()
        for succ in graph.g.successors(nid):
            if succ in seen:
                continue
            if graph.node(succ).op == "LIF":
                return True
            seen.add(succ)
            stack.append(succ)
    return False


def _name(graph: Graph, node: Node, weight: str) -> str:
    if weight.endswith(".weight"):
        return weight[: -len(".weight")]
    m = module_path(node)
    return m or weight


def _dynamic_matmuls(graph: Graph, order: list[str]) -> list[str]:
    return [
        n
        for n in order
        if graph.node(n).op == "MatMul"
        and not graph.is_const(graph.node(n).inputs[0])
        and not graph.is_const(graph.node(n).inputs[1])
    ]


def _feeds_matmul(graph: Graph, node: Node, targets: set[str], hops: int = 12) -> bool:
    frontier, seen = [node.name], set()
    for _ in range(hops):
        nxt = []
        for nid in frontier:
            for s in graph.g.successors(nid):
                if s in targets:
                    return True
                if s not in seen and graph.node(s).op not in ("Conv", "Gemm", "MatMul"):
                    seen.add(s)
                    nxt.append(s)
        frontier = nxt
    return False


@register_analysis("annotate-layers")
def annotate_layers(graph: Graph) -> list[LayerInfo]:
    """The weight layers of the graph in topological order of their first node."""
    order = graph.topo_order()
    pos = {n: i for i, n in enumerate(order)}
    kind_of = value_kinds(graph)
    by_weight: dict[str, list[Node]] = {}
    for nid in order:
        node = graph.node(nid)
        slot = _weight_slot(graph, node)
        if slot is None:
            continue
        by_weight.setdefault(node.inputs[slot], []).append(node)
    if not by_weight:
        return []
    in_shape = graph.shape(graph.inputs[0]) or (1,)
    batch = _export_batch(graph)
    dyn = _dynamic_matmuls(graph, order)
    first_dyn = pos[dyn[0]] if dyn else None
    dyn_set = set(dyn)
    layers: list[LayerInfo] = []
    used: dict[str, int] = {}
    for weight, nodes in by_weight.items():
        n0 = nodes[0]
        w = graph.const(weight)
        slot = _weight_slot(graph, n0)
        if n0.op == "Conv":
            kind = "conv1d" if w.ndim == 3 else "conv2d" if w.ndim == 4 else None
            if kind is None:
                raise ModelError(f"node {n0.name!r}: {w.ndim - 2}-D convolution is not supported")
            wshape = tuple(int(d) for d in w.shape)
            fan_in = int(np.prod(w.shape[1:]))
        else:
            if w.ndim != 2:
                raise ModelError(f"node {n0.name!r}: weight {weight!r} of rank {w.ndim} is not supported")
            kind = "linear"
            if n0.op == "Gemm" and n0.attrs.get("transB", 0):
                wshape = (int(w.shape[0]), int(w.shape[1]))
            elif slot == 0:
                wshape = (int(w.shape[0]), int(w.shape[1]))  # W @ x: W is (out, in)
            else:
                wshape = (int(w.shape[1]), int(w.shape[0]))
            fan_in = wshape[1]
        total = 0
        for n in nodes:
            out = graph.shape(n.outputs[0])
            if out is None or any(d is None for d in out):
                raise ModelError(f"node {n.name!r}: output shape unknown; cannot count MACs")
            if n.op == "MatMul" and slot == 0:
                total += int(np.prod(out)) * fan_in
            else:
                total += int(np.prod(out)) * fan_in
        macs = total // batch
        data_in = n0.inputs[1 - slot] if n0.op == "MatMul" else n0.inputs[0]
        name = _name(graph, n0, weight)
        if name in used:
            used[name] += 1
            name = f"{name}#{used[name]}"
        else:
            used[name] = 0
        group = _group(graph, n0, name, pos, first_dyn, dyn_set)
        bias = n0.inputs[2] if len(n0.inputs) > 2 and n0.inputs[2] and n0.op in ("Conv", "Gemm") else None
        layers.append(
            LayerInfo(
                name=name,
                kind=kind,
                group=group,
                weight_shape=wshape,
                params=int(w.size),
                macs=int(macs),
                input_kind=kind_of(data_in),  # type: ignore[arg-type]
                nodes=tuple(n.name for n in nodes),
                weight=weight,
                bias=bias,
            )
        )
    del in_shape
    return layers


def _export_batch(graph: Graph) -> int:
    shp = graph.shape(graph.inputs[0])
    try:
        layout = detect_layout(graph)
    except ModelError:
        layout = "B"
    return int(shp[layout.index("B")]) if shp else 1


def _group(graph: Graph, node: Node, name: str, pos: dict[str, int], first_dyn: int | None, dyn: set[str]) -> str:
    if not _has_lif_downstream(graph, node):
        return "head"
    low = name.lower()
    for group, rx in _GROUP_WORDS:
        if group != "head" and rx.search(low):
            return group
    if first_dyn is None:
        return "other"
    if pos[node.name] < first_dyn and not _feeds_matmul(graph, node, dyn):
        return "tokenizer"
    if _feeds_matmul(graph, node, dyn):
        return "attention"
    return "mlp"


def weight_transposed(graph: Graph, layer: LayerInfo) -> bool:
    """True when the stored weight is (d_in, d_out): MatMul x·W, Gemm with transB=0."""
    node = graph.node(layer.nodes[0])
    if node.op == "Gemm":
        return not node.attrs.get("transB", 0)
    if node.op == "MatMul":
        return node.inputs[1] == layer.weight
    return False
