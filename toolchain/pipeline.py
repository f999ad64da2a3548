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


def sample_shape(graph: Graph, input_layout: str | None = None) -> tuple[int, ...]:
    """Per-sample data shape (T, C, H, W) the model expects, from its input and layout."""
    from hqc.layout import detect_layout

    shp = [int(d) for d in graph.shape(graph.inputs[0]) or []]
    layout = (input_layout or detect_layout(graph)).upper()
    b = layout.index("B")
    shp.pop(b)
    if layout.startswith("TB"):
        pass  # remaining order is (T, C, H, W) already
    return tuple(shp)


def layer_input_tensors(graph: Graph, layer: LayerInfo) -> list[str]:
    """The data-input tensor of each node of a layer."""
    out = []
    for nid in layer.nodes:
        node = graph.node(nid)
        if node.op == "MatMul" and graph.is_const(node.inputs[0]):
            out.append(node.inputs[1])
        else:
            out.append(node.inputs[0])
    return out


def measure_firing_rates(
    graph: Graph,
    layers: list[LayerInfo],
    data_path: str,
    input_layout: str | None = None,
    split: str = "val",
    limit: int = 256,
    batch_size: int = 64,
) -> dict[str, float]:
    """Mean input firing rate (fraction of ones) of every layer whose input is spikes,
    measured with the float model on up to `limit` samples of `split` (train if absent)."""
    import numpy as np
    import torch

    from hqc.backend import TorchModel
    from hqc.data import load_data

    ds = load_data(data_path, sample_shape(graph, input_layout))
    sp = ds.splits.get(split) or ds.train
    model = TorchModel(graph, input_layout).eval()
    spiking = [layer for layer in layers if layer.input_kind == "spikes"]
    names = sorted({t for layer in spiking for t in layer_input_tensors(graph, layer)})
    if not names:
        return {}
    sums = dict.fromkeys(names, 0.0)
    counts = dict.fromkeys(names, 0)
    x = sp.x[:limit]
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            outs = model.forward_all(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])), names)
            for n, o in zip(names, outs, strict=True):
                sums[n] += float(o.double().sum())
                counts[n] += o.numel()
    rates = {}
    for layer in spiking:
        ts = layer_input_tensors(graph, layer)
        rates[layer.name] = sum(sums[t] for t in ts) / max(1, sum(counts[t] for t in ts))
    return rates
