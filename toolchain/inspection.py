"""What hqc finds in a model: the `hqc inspect --json` document (schema hqc.inspect/1).

    Frontend (hqc.pipeline.run_frontend) --inspect_dict--> {model, input, layers, neurons, totals}
"""

from __future__ import annotations

from typing import Any

INSPECT_SCHEMA = "hqc.inspect/1"


def inspect_dict(fe: Any) -> dict[str, Any]:
    """The `hqc inspect --json` document (schema hqc.inspect/1, see docs/cli.md)."""
    layers = [
        {
            "name": layer.name,
            "kind": layer.kind,
            "group": layer.group,
            "weight_shape": list(layer.weight_shape),
            "params": layer.params,
            "macs": layer.macs,
            "input_kind": layer.input_kind,
            "onnx_nodes": list(layer.nodes),
        }
        for layer in fe.layers
    ]
    neurons = [{"name": name, "shape": list(shape), **p.describe()} for name, p, shape in fe.neurons]
    for n in neurons:
        if n["tau"] == float("inf"):
            n["tau"] = None
    return {
        "schema": INSPECT_SCHEMA,
        "model": str(fe.graph.meta.get("source", "")),
        "input": {"name": fe.graph.inputs[0], "shape": list(fe.graph.shape(fe.graph.inputs[0]) or [])},
        "onnx_nodes": fe.onnx_nodes,
        "ir_nodes": len(fe.graph),
        "import_seconds": round(fe.import_seconds, 4),
        "layers": layers,
        "neurons": neurons,
        "totals": {
            "layers": len(layers),
            "params": sum(x["params"] for x in layers),
            "macs": sum(x["macs"] for x in layers),
            "neurons": len(neurons),
        },
    }
