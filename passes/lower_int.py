"""lower-int: the frontend IR + a plan → an integer-only IR (domain `ai.hqc.int`).

Every tensor of the model is tracked as an *affine view of an integer tensor*:
real = a · X + b, with X int64 and a, b float64 arrays broadcastable to X (per channel
or scalar). One rule per frontend op (hqc.lowering: tensor, arith, layers, neurons)
rewrites it into ops of the integer dialect (hqc.intops), each bounded by interval
arithmetic over the declared input range; docs/lowering.md has the table of rules and
the rounding choices.

Pre: the frontend ran (canonicalize, recognize-neurons); shapes static; `plan` holds a
choice for every layer of `annotate_layers(graph)`. Post: a new Graph whose nodes are all
in `ai.hqc.int`, every tensor int64, graph.meta["lowering"] holding per-layer and
per-neuron records and graph.meta["bounds"] an integer interval for every tensor.
Running the pass on a lowered graph returns it unchanged.
"""

from __future__ import annotations

import logging

from hqc.choices import QuantChoice
from hqc.errors import ModelError
from hqc.intops import INT_DOMAIN
from hqc.ir import Graph
from hqc.layers import LayerInfo
from hqc.lowering.lowerer import LoweredModel, Lowerer
from hqc.lowering.weights import LayerCodes, layer_codes, layer_weight, packed_bytes
from hqc.passes.annotate_layers import weight_transposed
from hqc.passes.base import Context, Pass, PassResult, register

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_INPUT_RANGE", "DEFAULT_LOGIT_BITS", "DEFAULT_RESOLUTION_BITS", "INT_DOMAIN", "LayerCodes",
           "LowerInt", "LoweredModel", "layer_codes", "layer_weight", "lower_graph", "packed_bytes",
           "weight_transposed"]

DEFAULT_RESOLUTION_BITS = 16
DEFAULT_LOGIT_BITS = 16
DEFAULT_INPUT_RANGE = (0, 255)


def lower_graph(
    graph: Graph,
    layers: list[LayerInfo],
    plan: dict[str, QuantChoice],
    input_range: tuple[int, int] = DEFAULT_INPUT_RANGE,
    resolution_bits: int = DEFAULT_RESOLUTION_BITS,
    logit_bits: int = DEFAULT_LOGIT_BITS,
) -> LoweredModel:
    """Frontend IR + layers + plan → LoweredModel (integer IR and its records).

    Pre: `graph` after the frontend (LIF nodes, static shapes); `plan` has a choice for
    every layer; the model input holds integers in `input_range`.
    Post: see the module docstring. Raises ModelError naming the node for anything the
    integer lowering cannot express, PlanError for an incomplete plan.
    """
    if input_range[0] > input_range[1]:
        raise ModelError(f"input range {list(input_range)} is empty")
    if not 0 <= resolution_bits <= 40:
        raise ModelError(f"resolution_bits {resolution_bits} outside 0..40")
    if not 1 <= logit_bits <= 40:
        raise ModelError(f"logit_bits {logit_bits} outside 1..40")
    return Lowerer(graph, layers, plan, input_range, resolution_bits, logit_bits).run()


@register
class LowerInt(Pass):
    """The pass form: ctx.options needs `layers` and `plan`; optional `input_range`,
    `resolution_bits`, `logit_bits`. Stats carry the per-layer and per-neuron records."""

    name = "lower-int"

    def run(self, graph: Graph, ctx: Context) -> PassResult:
        if graph.meta.get("lowered"):
            return PassResult(graph, False, {})
        opts = ctx.options
        lm = lower_graph(
            graph,
            list(opts["layers"]),
            dict(opts["plan"]),
            tuple(opts.get("input_range", DEFAULT_INPUT_RANGE)),
            int(opts.get("resolution_bits", DEFAULT_RESOLUTION_BITS)),
            int(opts.get("logit_bits", DEFAULT_LOGIT_BITS)),
        )
        lm.graph.meta["lowering"] = {"layers": lm.layers, "neurons": lm.neurons, "logits": lm.logits, "input": lm.input}
        return PassResult(lm.graph, True, {"layers": len(lm.layers), "neurons": len(lm.neurons)})
