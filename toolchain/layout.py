"""Where the model input keeps its batch and time axes."""

from __future__ import annotations

from hqc.errors import ModelError
from hqc.ir import Graph


def detect_layout(graph: Graph, T: int | None = None) -> str:
    """Guess where the model input keeps batch (B) and time (T): 'BT' or 'TB' (or 'B')."""
    shp = graph.shape(graph.inputs[0])
    if shp is None:
        raise ModelError("the model input has no static shape")
    if T is None:
        ts = {graph.shape(n.inputs[0])[n.attrs.get("time_axis", 0)] for n in graph.nodes() if n.op == "LIF"}
        T = ts.pop() if len(ts) == 1 else None
    if len(shp) >= 2 and T is not None:
        if shp[0] == T and shp[1] != T:
            return "TB"
        if shp[1] == T and shp[0] != T:
            return "BT"
        if shp[0] == shp[1] == T:
            raise ModelError(
                f"cannot tell the batch axis from the time axis of input shape {list(shp)}; pass --input-layout BT or TB"
            )
    return "B"


def per_step_output(graph: Graph, tensor: str, layout: str | None = None) -> bool:
    """Whether a graph output holds one result per time step, time first: (T, B, …) of a
    TB model (SpikingJelly's Spikformer, SEW-ResNet and VGG return per-step logits and
    leave the mean over T to the caller). hqc's class scores are then the mean over T."""
    lay = (layout or graph.meta.get("input_layout") or detect_layout(graph)).upper()
    shp = graph.shape(tensor) or ()
    inp = graph.shape(graph.inputs[0]) or ()
    if not lay.startswith("TB") or len(shp) < 2 or len(inp) < 2:
        return False
    T, b0 = inp[0], inp[1]
    return shp[0] == T and shp[1] == b0 and T != b0
