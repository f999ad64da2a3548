"""The pipeline: a plain tuple of pass names, and the frontend entry points.

    import → canonicalize → recognize-neurons → annotate-layers (analysis)
           → insert-quant-choices → search → finetune → lower-int → verify → emit
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from hqc.errors import ModelError
from hqc.ir import Graph
from hqc.layers import LayerInfo
from hqc.lif import LIFParams
from hqc.onnx_io import import_model
from hqc.passes import Context, run_passes
from hqc.passes import canonicalize as _canonicalize  # noqa: F401  (registers the pass)
from hqc.passes import recognize_neurons as _recognize  # noqa: F401
from hqc.passes.annotate_layers import annotate_layers

log = logging.getLogger(__name__)

FRONTEND: tuple[str, ...] = (
    "canonicalize",
    "recognize-neurons",
)


@dataclass
class Frontend:
    """What the frontend knows of a model: the IR, its layers and neurons, timings."""

    graph: Graph
    layers: list[LayerInfo]
    neurons: list[tuple[str, LIFParams, tuple[int, ...]]]
    records: list[dict] = field(default_factory=list)
    import_seconds: float = 0.0
    onnx_nodes: int = 0


def neurons_of(graph: Graph) -> list[tuple[str, LIFParams, tuple[int, ...]]]:
    out = []
    for n in graph.nodes():
        if n.op == "LIF":
            out.append((n.name, LIFParams.from_attrs(n.attrs), tuple(graph.shape(n.inputs[0]) or ())))
    return out


def run_frontend(model_path: str | Path, input_layout: str | None = None) -> Frontend:
    """Import an ONNX model, canonicalize it, lift its neurons, annotate its layers."""
    t0 = time.perf_counter()
    graph = import_model(model_path)
    onnx_nodes = len(graph)
    graph, records = run_passes(graph, FRONTEND, Context(options={"input_layout": input_layout}))
    layers = annotate_layers(graph)
    if not layers:
        raise ModelError(f"{model_path}: the model has no weight layers (Conv, Gemm or MatMul with a constant weight)")
    graph.meta["input_layout"] = input_layout
    seconds = time.perf_counter() - t0
    return Frontend(graph, layers, neurons_of(graph), records, seconds, onnx_nodes)


def load_and_analyze(model_path: str, input_layout: str | None = None) -> tuple[Graph, list[LayerInfo]]:
    """ONNX file → (IR after the frontend passes, weight layers)."""
    fe = run_frontend(model_path, input_layout)
    return fe.graph, fe.layers
