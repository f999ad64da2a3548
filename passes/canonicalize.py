"""canonicalize: remove no-ops, fold constant (shape) arithmetic, infer static shapes.

Rewrites:
    Identity(x) → x;  Dropout(x) → x   (when its mask output is unused)
    op(c1, …, cn) → constant            (all inputs constant, numpy implementation known,
                                         result ≤ FOLD_LIMIT elements)
    Shape(x) → constant                 (x has a static shape)
Then every tensor gets a static shape and dtype (see `hqc.shapes`). Dead nodes are dropped.

Pre: an imported graph. Post: no Identity/Dropout/Constant/Shape nodes; all tensors typed.
Idempotent: a second run finds nothing to do and reports modified=False.
"""

from __future__ import annotations

import logging

import numpy as np

from hqc.ir import Graph
from hqc.numpy_ops import IMPLS, evaluate
from hqc.passes.base import Context, Pass, PassResult, register
from hqc.shapes import infer_shapes

log = logging.getLogger(__name__)

FOLD_LIMIT = 1 << 22


def _remove_noops(graph: Graph) -> int:
    n = 0
    for node in list(graph.nodes()):
        if node.op not in ("Identity", "Dropout"):
            continue
        if node.op == "Dropout" and len(node.outputs) > 1 and node.outputs[1] and graph.consumers(node.outputs[1]):
            continue
        src, dst = node.inputs[0], node.outputs[0]
        if dst in graph.outputs and graph.producer(src) is None and src not in graph.constants:
            continue
        graph.remove_node(node.name)
        if dst in graph.outputs and src in graph.inputs:
            continue
        graph.replace_uses(dst, src)
        if dst in graph.values and src in graph.values and graph.values[src].shape is None:
            graph.values[src] = graph.values[dst]
        n += 1
    return n


def fold_constants(graph: Graph) -> int:
    """Fold nodes whose inputs are all constants (and Shape of statically shaped tensors)."""
    n = 0
    for node in list(graph.nodes()):
        if node.domain or node.op not in IMPLS:
            continue
        if node.op == "Shape":
            shp = graph.shape(node.inputs[0])
            if shp is None or any(d is None for d in shp):
                continue
            vals = evaluate("Shape", node.attrs, [np.zeros(shp, np.uint8)])
        else:
            if not all((not t) or graph.is_const(t) for t in node.inputs):
                continue
            try:
                vals = evaluate(node.op, node.attrs, [graph.const(t) if t else None for t in node.inputs])
            except (ValueError, TypeError, IndexError, ArithmeticError, NotImplementedError) as exc:
                # numpy's op refuses these inputs: the node stays for the backends (folding is
                # an optimization, not a requirement), and the log says why
                log.debug("not folded: %s %s (%s: %s)", node.op, node.name, type(exc).__name__, exc)
                continue
        if any(np.asarray(v).size > FOLD_LIMIT for v in vals):
            continue
        graph.remove_node(node.name)
        for t, v in zip(node.outputs, vals, strict=False):
            if t:
                graph.add_const(t, np.asarray(v))
        n += 1
    return n


@register
class Canonicalize(Pass):
    name = "canonicalize"

    def run(self, graph: Graph, ctx: Context) -> PassResult:
        removed = _remove_noops(graph)
        folded = 0
        shaped = False
        for _ in range(8):  # bounded fixed point: folding enables shapes enables folding
            step = fold_constants(graph)
            folded += step
            shaped |= infer_shapes(graph, strict=False)
            if not step:
                break
        shaped |= infer_shapes(graph)
        folded += fold_constants(graph)
        dead = graph.remove_dead()
        modified = bool(removed or folded or dead or shaped)
        return PassResult(graph, modified, {"noops_removed": removed, "folded": folded, "dead": dead, "nodes": len(graph)})
